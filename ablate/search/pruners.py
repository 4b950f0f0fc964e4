"""The Optuna pruner a `search.pruner` block describes; the driver and the workers build the same one."""

from __future__ import annotations

from typing import Any


def build_pruner(spec: dict[str, Any], iters: int) -> Any:
    """The Optuna pruner a `search.pruner` block describes (driver and workers build the same)."""
    import optuna

    kind = spec.get("type", "median")
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec.get("min_resource") or "auto", reduction_factor=spec.get("reduction_factor", 3)
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.get("min_resource") or 1,
            max_resource=iters,
            reduction_factor=spec.get("reduction_factor", 3),
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.get("n_startup_trials", 2), n_warmup_steps=spec.get("n_warmup_steps", 0)
    )
