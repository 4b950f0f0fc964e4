"""The `search:` block of a study file (used by `ablate tune`): what to tune, how to sample and prune, how long."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogUniform(_Strict):
    loguniform: tuple[float, float]

    @field_validator("loguniform")
    @classmethod
    def _positive(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1]:
            raise ValueError("loguniform needs 0 < low < high")
        return v


class Uniform(_Strict):
    uniform: tuple[float, float]
    step: Optional[float] = Field(None, gt=0)

    @field_validator("uniform")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError("uniform needs low < high")
        return v


class IntRange(_Strict):
    int: tuple[int, int]
    step: int = Field(1, ge=1)
    log: bool = False

    @field_validator("int")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not v[0] < v[1]:
            raise ValueError("int needs low < high")
        return v


class Categorical(_Strict):
    categorical: list[Union[float, int, str, bool, None]] = Field(min_length=1)


ParamSpec = Union[LogUniform, Uniform, IntRange, Categorical]


class SamplerSpec(_Strict):
    type: Literal["tpe", "random", "grid"] = "tpe"
    seed: Optional[int] = 0
    n_startup_trials: int = Field(4, ge=0, description="TPE: random trials before modelling")


class PrunerSpec(_Strict):
    type: Literal["median", "successive_halving", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="median: trials that are never pruned")
    n_warmup_steps: int = Field(0, ge=0, description="median: iterations before pruning can start")
    min_resource: Optional[int] = Field(None, ge=1, description="halving/hyperband: iterations")
    reduction_factor: int = Field(3, ge=2)


class SearchSpec(_Strict):
    """Keys are dotted config paths or `tricks.<trick>.<param>`; values are distributions."""

    params: dict[str, ParamSpec] = Field(min_length=1)
    recipe: list[Any] = Field(default_factory=list, description="tricks every search trial uses")
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    n_trials: int = Field(20, ge=1)
    timeout: Optional[float] = Field(None, gt=0, description="seconds; stop asking for trials after")
    metric: str = "mIoU"
    direction: Literal["maximize", "minimize"] = "maximize"

    @model_validator(mode="after")
    def _grid_is_categorical(self) -> "SearchSpec":
        if self.sampler.type == "grid":
            bad = [k for k, v in self.params.items() if not isinstance(v, Categorical)]
            if bad:
                raise ValueError(f"grid sampling needs categorical values; not: {', '.join(bad)}")
        return self
