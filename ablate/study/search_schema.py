"""The `search:` block of a study file (used by `ablate tune`): what to tune, against which
objectives and constraints, how to sample and prune, how long."""

from __future__ import annotations

import builtins
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

Direction = Literal["maximize", "minimize"]

# A search parameter that is not a config key: the trial's `budget.crop`, which sets the crop
# wherever the study's would (each RandomCrop's crop_size, the data preprocessor's pad size, the
# tricks' context and the cost estimate).
CROP_PARAM = "budget.crop"
_CROP_TEXT = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
_BOUND = re.compile(r"^\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_bound(text: str) -> tuple[str, float]:
    """`"<= 60"` -> ("<=", 60.0); the comparison a constraint keeps a metric within."""
    match = _BOUND.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a bound; write one of '<= 60', '>= 40', '< 60', '> 40'")
    return match.group(1), float(match.group(2))


def violation(op: str, bound: float, value: float) -> float:
    """Optuna's constraint value: <= 0 exactly when `value op bound` holds. A strict bound is
    compared against its nearest float inside, so `< 60` rejects 60 itself."""
    if op == "<=":
        return value - bound
    if op == "<":
        return value - math.nextafter(bound, -math.inf)
    if op == ">=":
        return bound - value
    return math.nextafter(bound, math.inf) - value


def _checked_bound(text: str) -> str:
    parse_bound(text)
    return text


def parse_crop(value: Any) -> tuple[int, int]:
    """A searched crop value -> (height, width): an int is a square side, "HxW" a rectangle."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    match = _CROP_TEXT.match(value) if isinstance(value, str) else None
    if match is None or min(int(match.group(1)), int(match.group(2))) <= 0:
        raise ValueError(f"{CROP_PARAM} values are a positive int (square side) or 'HxW' text, not {value!r}")
    return int(match.group(1)), int(match.group(2))


def _field_error(loc: tuple[str, ...], message: str, value: Any) -> ValidationError:
    """A cross-field rule reported at the field it is about (`search.<field>`), not at `search`."""
    return ValidationError.from_exception_data(
        "SearchSpec", [InitErrorDetails(type=PydanticCustomError("search_rule", message), loc=loc, input=value)]
    )


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
    step: float | None = Field(None, gt=0)

    @field_validator("uniform")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError("uniform needs low < high")
        return v


class IntRange(_Strict):
    int: tuple[int, int]
    step: builtins.int = Field(1, ge=1)  # `int` in this class body is the field above
    log: bool = False

    @field_validator("int")
    @classmethod
    def _ordered(cls, v: tuple[builtins.int, builtins.int]) -> tuple[builtins.int, builtins.int]:
        if not v[0] < v[1]:
            raise ValueError("int needs low < high")
        return v


class Categorical(_Strict):
    categorical: list[float | int | str | bool | None] = Field(min_length=1)


ParamSpec = LogUniform | Uniform | IntRange | Categorical


class SamplerSpec(_Strict):
    type: Literal["tpe", "random", "grid"] = "tpe"
    seed: int | None = 0
    n_startup_trials: int = Field(default=4, ge=0, description="TPE: random trials before modelling")


class PrunerSpec(_Strict):
    type: Literal["median", "successive_halving", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(default=2, ge=0, description="median: trials that are never pruned")
    n_warmup_steps: int = Field(default=0, ge=0, description="median: iterations before pruning can start")
    min_resource: int | None = Field(default=None, ge=1, description="halving/hyperband: iterations")
    reduction_factor: int = Field(default=3, ge=2)


class SearchSpec(_Strict):
    """Keys are dotted config paths, `tricks.<trick>.<param>` or `budget.crop`; values are
    distributions. One objective (`metric`/`direction`, or `objectives` with one entry) is a
    single-objective search, as before; several `objectives` make it multi-objective (a Pareto
    front, no pruning). Read the objectives through `objective_names` and `directions`."""

    params: dict[str, ParamSpec] = Field(min_length=1)
    recipe: list[Any] = Field(default_factory=list, description="tricks every search trial uses")
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    n_trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0, description="seconds; stop asking for trials after")
    metric: str = "mIoU"
    direction: Direction = "maximize"
    objectives: dict[str, Direction] | None = Field(
        None, min_length=1, description="metric -> maximize|minimize, in order; replaces metric/direction"
    )
    constraints: dict[str, Annotated[str, AfterValidator(_checked_bound)]] = Field(
        default_factory=dict, description="metric -> bound such as '<= 60'; trials outside are infeasible"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_pruner_by_default_with_several_objectives(cls, data: Any) -> Any:
        """Optuna prunes single-objective studies only: several objectives default to no pruner."""
        if (
            isinstance(data, dict)
            and isinstance(data.get("objectives"), dict)
            and len(data["objectives"]) > 1
            and "pruner" not in data
        ):
            return {**data, "pruner": {"type": "none"}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpec:
        if self.sampler.type == "grid":
            bad = [k for k, v in self.params.items() if not isinstance(v, Categorical)]
            if bad:
                raise ValueError(f"grid sampling needs categorical values; not: {', '.join(bad)}")
        if self.objectives is not None:
            both = sorted({"metric", "direction"} & self.model_fields_set)
            if both:
                raise _field_error(
                    ("objectives",),
                    f"objectives replaces {' and '.join(both)}; give one or the other "
                    "(one objective is objectives: {mIoU: maximize})",
                    self.objectives,
                )
            if any(not name.strip() for name in self.objectives):
                raise _field_error(("objectives",), "metric names must not be empty", self.objectives)
        if self.multi_objective and self.pruner.type != "none":
            raise _field_error(
                ("pruner",),
                "Optuna's pruners are single-objective; set pruner: {type: none} (the "
                "default with several objectives) or search one objective",
                self.pruner.type,
            )
        if CROP_PARAM in self.params:
            _check_crop_spec(self.params[CROP_PARAM])
        return self

    @property
    def objective_names(self) -> list[str]:
        return list(self.objectives) if self.objectives else [self.metric]

    @property
    def directions(self) -> list[Direction]:
        return list(self.objectives.values()) if self.objectives else [self.direction]

    @property
    def multi_objective(self) -> bool:
        return len(self.objective_names) > 1

    @property
    def bounds(self) -> dict[str, tuple[str, float]]:
        """Each constraint parsed: metric -> (comparison, bound)."""
        return {name: parse_bound(text) for name, text in self.constraints.items()}


def _check_crop_spec(spec: ParamSpec) -> None:
    if isinstance(spec, Categorical):
        for value in spec.categorical:
            try:
                parse_crop(value)
            except ValueError as exc:
                raise _field_error(("params", CROP_PARAM), str(exc), value) from None
    elif not (isinstance(spec, IntRange) and spec.int[0] >= 1):
        raise _field_error(
            ("params", CROP_PARAM),
            f"{CROP_PARAM} takes {{int: [low, high]}} with low >= 1 (a square "
            "side) or {categorical: [...]} of sides and 'HxW' texts",
            None,
        )
