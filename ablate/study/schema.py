"""The study file, as pydantic models: every field typed, unknown keys refused."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ablate.study.search_schema import SearchSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthSpec(_Strict):
    """Generate the synthetic KITTI-like set at `data.root` when it does not exist yet."""

    train: int = Field(150, ge=1)
    test: int = Field(50, ge=1)
    height: int = Field(375, ge=32)
    width: int = Field(1242, ge=32)
    seed: int = 0
    domain: str = Field("kitti", pattern="^(kitti|city)$")


class DataSpec(_Strict):
    root: str
    synth: Optional[SynthSpec] = None
    # (w, h) the images are resized to before cropping / testing; defaults to the config's.
    image_scale: Optional[tuple[int, int]] = None


class BudgetSpec(_Strict):
    iters: int = Field(20000, ge=1)
    val_interval: Optional[int] = Field(None, ge=1, description="defaults to iters")
    batch_size: int = Field(2, ge=1)
    crop: Optional[tuple[int, int]] = Field(None, description="(h, w); defaults to the config's")
    log_interval: int = Field(50, ge=1)
    workers: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _interval_fits(self) -> "BudgetSpec":
        if self.val_interval is not None and self.val_interval > self.iters:
            raise ValueError(f"val_interval ({self.val_interval}) exceeds iters ({self.iters})")
        return self

    @field_validator("crop")
    @classmethod
    def _crop_positive(cls, v: Optional[tuple[int, int]]) -> Optional[tuple[int, int]]:
        if v is not None and min(v) < 16:
            raise ValueError("crop sides must be at least 16 pixels")
        return v


class ResourcesSpec(_Strict):
    """How trials are placed: Ray resources per trial, parallelism cap, retries."""

    gpus_per_trial: float = Field(1.0, ge=0, description="fractions share a GPU")
    cpus_per_trial: Optional[float] = Field(None, gt=0, description="default 1 with GPUs, all CPUs without")
    max_concurrent: Optional[int] = Field(None, ge=1)
    retries: int = Field(1, ge=0, description="extra attempts for a failed trial")


class TrialEntry(_Strict):
    """One explicit trial: a name and dotted-key overrides of the base config."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
    overrides: dict[str, Any] = Field(default_factory=dict)


# A trick in a list: `poly_lr`, or `{ohem: {thresh: 0.6}}` (parameters checked by the trick).
TrickItem = Union[str, dict[str, Optional[dict[str, Any]]]]


class PretrainEntry(_Strict):
    """A checkpoint later trials `transfer` from: a file, or a trial trained first."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
    checkpoint: Optional[str] = None
    base: Optional[str] = None
    data: Optional[DataSpec] = None
    budget: Optional["PartialBudgetSpec"] = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    tricks: list[TrickItem] = Field(default_factory=list)
    seed: int = 0

    @model_validator(mode="after")
    def _file_or_training(self) -> "PretrainEntry":
        trains = self.base or self.data or self.budget or self.overrides or self.tricks
        if self.checkpoint is not None and trains:
            raise ValueError("a pretrain entry is either a 'checkpoint' file or a training (base/data/budget/...)")
        return self


class ZooEntry(_Strict):
    """One row of the model table: a config, and what it starts from."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+*-]+$")
    config: str
    encoder: Optional[str] = Field(None, description="ImageNet encoder checkpoint (backbone init_cfg)")
    decoder: Optional[str] = Field(None, description="pretrain entry or checkpoint for the whole model")
    overrides: dict[str, Any] = Field(default_factory=dict)


class PartialDataSpec(_Strict):
    root: Optional[str] = None
    synth: Optional[SynthSpec] = None
    image_scale: Optional[tuple[int, int]] = None


class PartialBudgetSpec(_Strict):
    iters: Optional[int] = Field(None, ge=1)
    val_interval: Optional[int] = Field(None, ge=1)
    batch_size: Optional[int] = Field(None, ge=1)
    crop: Optional[tuple[int, int]] = None
    log_interval: Optional[int] = Field(None, ge=1)
    workers: Optional[int] = Field(None, ge=0)


class ProfileSpec(_Strict):
    """Named overrides so one study runs at paper scale or small on a CPU (`--profile demo`)."""

    base: Optional[str] = None
    data: Optional[PartialDataSpec] = None
    budget: Optional[PartialBudgetSpec] = None
    seeds: Optional[list[int]] = None
    resources: Optional[ResourcesSpec] = None
    search: Optional[SearchSpec] = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    zoo: Optional[list[ZooEntry]] = None  # e.g. a few small models for a CPU demo
    pretrain: Optional[list[PretrainEntry]] = None
    encoder: Optional[str] = None


class StudySpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: str = Field(description="mmseg config file the trials start from")
    data: DataSpec
    budget: BudgetSpec = BudgetSpec()
    resources: ResourcesSpec = ResourcesSpec()
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every trial")
    encoder: Optional[str] = Field(None, description="ImageNet encoder checkpoint for the base model")
    trials: list[TrialEntry] = Field(default_factory=list)
    ladder: list[TrickItem] = Field(default_factory=list, description="rung k = base + tricks 1..k")
    recipe: list[TrickItem] = Field(default_factory=list, description="tricks applied to zoo models")
    mode: Optional[Literal["leave_one_out"]] = None
    zoo: list[ZooEntry] = Field(default_factory=list)
    pretrain: list[PretrainEntry] = Field(default_factory=list)
    reference: dict[str, float] = Field(default_factory=dict, description="paper mIoU by trial name")
    trick_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="parameters that win wherever the trick appears (e.g. tuned values)"
    )
    search: Optional[SearchSpec] = None
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_trials(self) -> "StudySpec":
        if self.mode == "leave_one_out" and not self.recipe:
            raise ValueError("mode: leave_one_out needs a non-empty 'recipe'")
        if not (self.trials or self.ladder or self.zoo or self.mode or self.search):
            raise ValueError("a study needs at least one of: trials, ladder, zoo, recipe with mode, or search")
        names = [e.name for e in self.zoo] + [e.name for e in self.pretrain]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate zoo/pretrain names: {', '.join(dupes)}")
        return self

    @field_validator("trials")
    @classmethod
    def _unique_names(cls, v: list[TrialEntry]) -> list[TrialEntry]:
        seen: set[str] = set()
        for entry in v:
            if entry.name in seen:
                raise ValueError(f"duplicate trial name '{entry.name}'")
            seen.add(entry.name)
        return v

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be distinct")
        return v

    def with_profile(self, name: str) -> "StudySpec":
        """The study as the named profile sees it, validated again as a whole.

        `data`, `budget`, `resources` and `overrides` merge key by key (the profile's keys win);
        `base`, `seeds`, `search`, `zoo` and `pretrain` replace the study's; `encoder: null`
        removes the encoder. Raises pydantic's ValidationError when the merged study is invalid
        (e.g. a profile's `iters` below the study's `val_interval`).
        """
        profile = self.profiles[name]
        # exclude_unset all along: which fields a file set must survive (pretrain budgets merge later)
        doc = self.model_dump(exclude_unset=True)
        for key in ("data", "budget", "resources"):
            part = getattr(profile, key)
            if part is not None:
                doc[key] = {**doc.get(key, {}), **part.model_dump(exclude_unset=True)}
        doc["overrides"] = {**self.overrides, **profile.overrides}
        for key in ("base", "seeds", "search"):
            if getattr(profile, key) is not None:
                value = getattr(profile, key)
                doc[key] = value.model_dump(exclude_unset=True) if key == "search" else value
        for key in ("zoo", "pretrain", "encoder"):
            if key in profile.model_fields_set:  # `encoder: null` in a profile removes it
                value = getattr(profile, key)
                doc[key] = [e.model_dump(exclude_unset=True) for e in value] if isinstance(value, list) else value
                if doc[key] is None and key != "encoder":
                    doc[key] = []
        return StudySpec.model_validate(doc)


PretrainEntry.model_rebuild()
