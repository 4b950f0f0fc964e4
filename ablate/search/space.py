"""Search space: study YAML -> Optuna distributions, and sampled values -> trial changes."""

from __future__ import annotations

from typing import Any

from ablate.study.search_schema import Categorical, IntRange, LogUniform, ParamSpec, SearchSpec, Uniform

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
    """Sampled values -> (config overrides, {trick: {param: value}})."""
    overrides: dict[str, Any] = {}
    tricks: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key.startswith(TRICK_PREFIX):
            trick, _, param = key[len(TRICK_PREFIX):].partition(".")
            tricks.setdefault(trick, {})[param] = value
        else:
            overrides[key] = value
    return overrides, tricks
