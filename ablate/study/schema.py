"""The study file, as pydantic models: every field typed, unknown keys refused."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class TrialEntry(_Strict):
    """One explicit trial: a name and dotted-key overrides of the base config."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
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
    overrides: dict[str, Any] = Field(default_factory=dict)


class StudySpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: str = Field(description="mmseg config file the trials start from")
    data: DataSpec
    budget: BudgetSpec = BudgetSpec()
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every trial")
    trials: list[TrialEntry] = Field(min_length=1)
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)

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
        """The study as the named profile sees it (fields the profile sets win)."""
        profile = self.profiles[name]
        update: dict[str, Any] = {}
        if profile.base is not None:
            update["base"] = profile.base
        if profile.seeds is not None:
            update["seeds"] = profile.seeds
        if profile.data is not None:
            merged_data = {**self.data.model_dump(), **profile.data.model_dump(exclude_unset=True)}
            update["data"] = DataSpec(**merged_data)
        if profile.budget is not None:
            merged = {**self.budget.model_dump(), **profile.budget.model_dump(exclude_unset=True)}
            update["budget"] = BudgetSpec(**merged)
        if profile.overrides:
            update["overrides"] = {**self.overrides, **profile.overrides}
        return self.model_copy(update=update)
