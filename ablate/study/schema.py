"""The study file, as pydantic models: every field typed, unknown keys refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from ablate.study.search_schema import SearchSpec
from ablate.study.slurm_schema import SlurmSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthSpec(_Strict):
    """Generate the synthetic road-scene set at `data.root` when it does not exist yet (KITTI
    layout by default; `format: ade20k` or `voc` for a config on those datasets' layouts)."""

    train: int = Field(150, ge=1)
    test: int = Field(50, ge=1)
    height: int = Field(375, ge=32)
    width: int = Field(1242, ge=32)
    seed: int = 0
    domain: str = Field("kitti", pattern="^(kitti|city)$")
    format: str = Field("kitti", pattern="^(kitti|ade20k|voc)$")


class DataSpec(_Strict):
    root: str
    synth: SynthSpec | None = None
    # (w, h) the images are resized to before cropping / testing; defaults to the config's.
    image_scale: tuple[int, int] | None = None


# `budget.amp`: what a trial trains in on a GPU (see `ablate.config.precision`).
Precision = Literal["bf16", "fp16", "off"]


def _yaml_off(value: Any) -> Any:
    """YAML 1.1 reads a bare `off` as False: that is the user's "off"."""
    return "off" if value is False else value


class BudgetSpec(_Strict):
    iters: int = Field(default=20000, ge=1)
    val_interval: int | None = Field(default=None, ge=1, description="defaults to iters")
    batch_size: int = Field(
        default=2, ge=1, description="per GPU (per worker): a trial of N workers steps on N x batch_size"
    )
    crop: tuple[int, int] | None = Field(default=None, description="(h, w); defaults to the config's")
    log_interval: int = Field(default=50, ge=1)
    workers: int = Field(default=2, ge=0)
    amp: Precision = Field(default="off", description="mixed precision on an accelerator; fp32 (recorded) without one")
    compile: bool = Field(default=False, description="torch.compile the training step (mmengine's `compile`)")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_off(cls, v: Any) -> Any:
        return _yaml_off(v)

    @model_validator(mode="after")
    def _interval_fits(self) -> BudgetSpec:
        if self.val_interval is not None and self.val_interval > self.iters:
            raise ValueError(f"val_interval ({self.val_interval}) exceeds iters ({self.iters})")
        return self

    @field_validator("crop")
    @classmethod
    def _crop_positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and min(v) < 16:
            raise ValueError("crop sides must be at least 16 pixels")
        return v


def _one_placement(gpus: float | None, workers: int | None) -> None:
    if gpus is not None and gpus > 1 and gpus != int(gpus):
        raise ValueError(
            f"gpus_per_trial above 1 is a number of DDP workers, one GPU each: {gpus:g} is not "
            "whole (fractions below 1 share a GPU)"
        )
    if (gpus or 0) > 1 and (workers or 1) > 1:
        raise ValueError(
            "set gpus_per_trial (N GPUs: N DDP workers, one GPU each) or workers_per_trial "
            "(N CPU workers), not both above 1"
        )


_PLACEMENT = {"gpus_per_trial", "workers_per_trial"}


class TrialResources(_Strict):
    """A trial entry's own placement (a zoo's 4-GPU B5 beside 1-GPU B0 rows); replaces the
    study's gpus_per_trial / workers_per_trial when it sets either."""

    gpus_per_trial: float | None = Field(None, ge=0)
    workers_per_trial: int | None = Field(None, ge=1)
    cpus_per_trial: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_placement(self) -> TrialResources:
        _one_placement(self.gpus_per_trial, self.workers_per_trial)
        return self


class ResourcesSpec(_Strict):
    """How trials are placed: Ray resources per trial, parallelism cap, retries.

    A trial with N > 1 workers trains as one DDP job (Ray Train, SyncBN kept); `budget.batch_size`
    is per worker, so it trains with N x batch_size images per step."""

    gpus_per_trial: float = Field(
        default=1.0,
        ge=0,
        description="fractions share a GPU; a whole N > 1 trains each trial as N DDP workers, one GPU each",
    )
    workers_per_trial: int = Field(
        default=1,
        ge=1,
        description="N > 1: each trial trains as N CPU workers (DDP on gloo), for machines without GPUs and CI",
    )
    cpus_per_trial: float | None = Field(
        default=None,
        gt=0,
        description="per process (each worker): default 1 with GPUs or CPU workers, all CPUs for one CPU process",
    )
    max_concurrent: int | None = Field(default=None, ge=1)
    retries: int = Field(default=1, ge=0, description="extra attempts for a failed trial")

    @model_validator(mode="after")
    def _one_placement(self) -> ResourcesSpec:
        _one_placement(self.gpus_per_trial, self.workers_per_trial)
        return self

    def placement(self, entry: TrialResources | None = None) -> tuple[int, float, float | None]:
        """(workers, GPUs per worker, CPUs per worker or None for the dispatcher's default) of a
        trial, with its entry's own `resources` if it has any."""
        gpus, workers, cpus = self.gpus_per_trial, self.workers_per_trial, self.cpus_per_trial
        if entry is not None:
            if entry.gpus_per_trial is not None or entry.workers_per_trial is not None:
                gpus = 1.0 if entry.gpus_per_trial is None else entry.gpus_per_trial
                workers = entry.workers_per_trial or 1
            cpus = cpus if entry.cpus_per_trial is None else entry.cpus_per_trial
        if workers > 1:
            return workers, 0.0, cpus
        if gpus > 1:
            return int(gpus), 1.0, cpus
        return 1, gpus, cpus


class AutoSeeds(_Strict):
    """`seeds: {auto: {...}}`: seeds are added one round at a time until every ladder (or
    leave-one-out) delta's 95% interval is narrower than `ci_width` mIoU points, or `max` seeds ran.

    The seeds are `start`, `start + 1`, ...: the first round trains `min` of them, each later
    round one more (trials of earlier rounds are reused by their trial ids)."""

    min: int = Field(2, ge=2, description="seeds of the first round (an interval needs two)")
    max: int = Field(8, ge=2, description="seeds at most")
    ci_width: float = Field(0.5, gt=0, description="stop once every delta's 95% interval is narrower (mIoU points)")
    start: int = Field(0, ge=0, description="the first seed value")

    @model_validator(mode="after")
    def _min_below_max(self) -> AutoSeeds:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) exceeds max ({self.max})")
        return self

    def first(self, count: int) -> list[int]:
        """The first `count` seed values."""
        return list(range(self.start, self.start + count))


class SeedsAuto(_Strict):
    auto: AutoSeeds


_SEED_LIST: TypeAdapter[list[int]] = TypeAdapter(list[int])
SeedsField = list[int] | SeedsAuto


def _seeds(value: Any) -> Any:
    """A list of seeds or `{auto: {...}}`, with problems named by their own path (`seeds.auto.min`),
    not by pydantic's names for the two shapes."""
    if isinstance(value, (dict, SeedsAuto)):
        return SeedsAuto.model_validate(value)
    seeds = _SEED_LIST.validate_python(value)
    if not seeds:
        raise ValueError("give at least one seed, or {auto: {min, max, ci_width}}")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    return seeds


class TrialEntry(_Strict):
    """One explicit trial: a name and dotted-key overrides of the base config."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
    overrides: dict[str, Any] = Field(default_factory=dict)
    resources: TrialResources | None = None  # its own GPUs / workers (else the study's)


# A trick in a list: `poly_lr`, or `{ohem: {thresh: 0.6}}` (parameters checked by the trick).
TrickItem = str | dict[str, dict[str, Any] | None]


class PretrainEntry(_Strict):
    """A checkpoint later trials `transfer` from: a file, or a trial trained first."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
    checkpoint: str | None = None
    base: str | None = None
    data: DataSpec | None = None
    budget: PartialBudgetSpec | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    resources: TrialResources | None = None  # its own GPUs / workers (else the study's)
    tricks: list[TrickItem] = Field(default_factory=list)
    seed: int = 0

    @model_validator(mode="after")
    def _file_or_training(self) -> PretrainEntry:
        trains = self.base or self.data or self.budget or self.overrides or self.tricks
        if self.checkpoint is not None and trains:
            raise ValueError("a pretrain entry is either a 'checkpoint' file or a training (base/data/budget/...)")
        return self


class ZooEntry(_Strict):
    """One row of the model table: a config, and what it starts from."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+*-]+$")
    config: str
    encoder: str | None = Field(None, description="ImageNet encoder checkpoint (backbone init_cfg)")
    decoder: str | None = Field(None, description="pretrain entry or checkpoint for the whole model")
    overrides: dict[str, Any] = Field(default_factory=dict)
    resources: TrialResources | None = None  # its own GPUs / workers (else the study's)


class PartialDataSpec(_Strict):
    root: str | None = None
    synth: SynthSpec | None = None
    image_scale: tuple[int, int] | None = None


class PartialBudgetSpec(_Strict):
    iters: int | None = Field(None, ge=1)
    val_interval: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    crop: tuple[int, int] | None = None
    log_interval: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=0)
    amp: Precision | None = None
    compile: bool | None = None

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_off(cls, v: Any) -> Any:
        return _yaml_off(v)


class ProfileSpec(_Strict):
    """Named overrides so one study runs at paper scale or small on a CPU (`--profile demo`)."""

    base: str | None = None
    data: PartialDataSpec | None = None
    budget: PartialBudgetSpec | None = None
    seeds: SeedsField | None = None
    resources: ResourcesSpec | None = None
    search: SearchSpec | None = None
    slurm: SlurmSpec | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    zoo: list[ZooEntry] | None = None  # e.g. a few small models for a CPU demo
    pretrain: list[PretrainEntry] | None = None
    encoder: str | None = None

    @field_validator("seeds", mode="wrap")
    @classmethod
    def _seeds_shape(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return None if v is None else _seeds(v)


class StudySpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: str = Field(description="mmseg config file the trials start from")
    data: DataSpec
    budget: BudgetSpec = BudgetSpec()
    resources: ResourcesSpec = ResourcesSpec()
    seeds: SeedsField = Field(default_factory=lambda: [0], description="a list, or {auto: {min, max, ci_width}}")
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every trial")
    encoder: str | None = Field(None, description="ImageNet encoder checkpoint for the base model")
    trials: list[TrialEntry] = Field(default_factory=list)
    ladder: list[TrickItem] = Field(default_factory=list, description="rung k = base + tricks 1..k")
    recipe: list[TrickItem] = Field(default_factory=list, description="tricks applied to zoo models")
    mode: Literal["leave_one_out"] | None = None
    zoo: list[ZooEntry] = Field(default_factory=list)
    pretrain: list[PretrainEntry] = Field(default_factory=list)
    reference: dict[str, float] = Field(default_factory=dict, description="paper mIoU by trial name")
    trick_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="parameters that win wherever the trick appears (e.g. tuned values)"
    )
    search: SearchSpec | None = None
    slurm: SlurmSpec | None = Field(None, description="sbatch options of each trial's job (--dispatcher slurm)")
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_trials(self) -> StudySpec:
        if self.mode == "leave_one_out" and not self.recipe:
            raise ValueError("mode: leave_one_out needs a non-empty 'recipe'")
        if not (self.trials or self.ladder or self.zoo or self.mode or self.search):
            raise ValueError("a study needs at least one of: trials, ladder, zoo, recipe with mode, or search")
        if self.auto_seeds is not None and not (self.ladder or self.mode == "leave_one_out"):
            raise ValueError(
                "seeds.auto needs a `ladder:` or a `recipe:` with `mode: leave_one_out` (the intervals "
                "of their deltas decide when to stop); list the seeds instead"
            )
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

    @field_validator("seeds", mode="wrap")
    @classmethod
    def _seeds_shape(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _seeds(v)

    @property
    def auto_seeds(self) -> AutoSeeds | None:
        """The rule of `seeds: {auto: ...}`; None for a list of seeds."""
        return self.seeds.auto if isinstance(self.seeds, SeedsAuto) else None

    @property
    def seed_list(self) -> list[int]:
        """The seeds a run starts with: the listed ones, or the first round of `seeds: auto`."""
        auto = self.auto_seeds
        return auto.first(auto.min) if auto is not None else list(self.seeds)  # type: ignore[arg-type]

    def with_profile(self, name: str) -> StudySpec:
        """The study as the named profile sees it, validated again as a whole.

        `data`, `budget`, `resources`, `slurm` and `overrides` merge key by key (the profile's keys win; a
        profile's gpus_per_trial or workers_per_trial replaces the study's placement as a whole);
        `base`, `seeds`, `search`, `zoo` and `pretrain` replace the study's; `encoder: null`
        removes the encoder. Raises pydantic's ValidationError when the merged study is invalid
        (e.g. a profile's `iters` below the study's `val_interval`).
        """
        profile = self.profiles[name]
        # exclude_unset all along: which fields a file set must survive (pretrain budgets merge later)
        doc = self.model_dump(exclude_unset=True)
        for key in ("data", "budget", "resources", "slurm"):
            part = getattr(profile, key)
            if part is not None:
                theirs, mine = doc.get(key, {}), part.model_dump(exclude_unset=True)
                if key == "resources" and _PLACEMENT & mine.keys():  # a placement replaces the study's whole
                    theirs = {k: v for k, v in theirs.items() if k not in _PLACEMENT}
                doc[key] = {**theirs, **mine}
        doc["overrides"] = {**self.overrides, **profile.overrides}
        for key in ("base", "seeds", "search"):
            if getattr(profile, key) is not None:
                value = getattr(profile, key)
                doc[key] = value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
        for key in ("zoo", "pretrain", "encoder"):
            if key in profile.model_fields_set:  # `encoder: null` in a profile removes it
                value = getattr(profile, key)
                doc[key] = [e.model_dump(exclude_unset=True) for e in value] if isinstance(value, list) else value
                if doc[key] is None and key != "encoder":
                    doc[key] = []
        return StudySpec.model_validate(doc)


PretrainEntry.model_rebuild()
