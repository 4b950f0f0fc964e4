"""Search space: study YAML -> Optuna distributions, and sampled values -> trial changes."""

from __future__ import annotations

from typing import Any

from ablate.study.search_schema import (
    CROP_PARAM,
    Categorical,
    IntRange,
    LogUniform,
    ParamSpec,
    SearchSpec,
    Uniform,
    parse_crop,
)

TRICK_PREFIX = "tricks."


def distribution(spec: ParamSpec) -> Any:
    import optuna.distributions as d

    if isinstance(spec, LogUniform):
        return d.FloatDistribution(spec.loguniform[0], spec.loguniform[1], log=True)
    if isinstance(spec, Uniform):
        return d.FloatDistribution(spec.uniform[0], spec.uniform[1], step=spec.step)
    if isinstance(spec, IntRange):
        return d.IntDistribution(spec.int[0], spec.int[1], step=spec.step, log=spec.log)
    if isinstance(spec, Categorical):
        return d.CategoricalDistribution(spec.categorical)
    raise TypeError(f"unknown parameter spec {spec!r}")


def search_space(search: SearchSpec) -> dict[str, Any]:
    return {name: distribution(spec) for name, spec in search.params.items()}


def split_params(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Sampled values -> (config overrides, {trick: {param: value}}); a searched crop is
    neither (`searched_crop`)."""
    overrides: dict[str, Any] = {}
    tricks: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key == CROP_PARAM:
            continue
        if key.startswith(TRICK_PREFIX):
            trick, _, param = key[len(TRICK_PREFIX) :].partition(".")
            tricks.setdefault(trick, {})[param] = value
        else:
            overrides[key] = value
    return overrides, tricks


def searched_crop(values: dict[str, Any]) -> tuple[int, int] | None:
    """The training crop (height, width) a trial's sampled values ask for, if the crop is searched."""
    return parse_crop(values[CROP_PARAM]) if CROP_PARAM in values else None


def snippet_doc(values: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values as study keys an `include:` merges: `overrides`, `trick_params`
    and, for a searched crop, `budget.crop`."""
    overrides, tricks = split_params(values)
    doc: dict[str, Any] = {}
    if overrides:
        doc["overrides"] = overrides
    if tricks:
        doc["trick_params"] = tricks
    crop = searched_crop(values)
    if crop is not None:
        doc["budget"] = {"crop": list(crop)}
    return doc
