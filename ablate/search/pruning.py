"""The mmengine hook through which a training trial reports to Optuna and can be pruned."""

from __future__ import annotations

from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.errors import TrialPruned


def build_pruner(spec: dict[str, Any], iters: int) -> Any:
    """The Optuna pruner a `search.pruner` block describes (driver and workers build the same)."""
    import optuna

    kind = spec.get("type", "median")
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=spec.get("min_resource") or "auto",
                                                      reduction_factor=spec.get("reduction_factor", 3))
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=spec.get("min_resource") or 1, max_resource=iters,
                                              reduction_factor=spec.get("reduction_factor", 3))
    return optuna.pruners.MedianPruner(n_startup_trials=spec.get("n_startup_trials", 2),
                                       n_warmup_steps=spec.get("n_warmup_steps", 0))


@HOOKS.register_module()
class OptunaPruningHook(Hook):
    """After each evaluation: report the metric at the current iteration, stop if pruned."""

    # After MLflowTrialHook and ProgressFileHook (VERY_LOW): the evaluation that prunes a
    # trial is recorded before the trial stops.
    priority = "LOWEST"

    def __init__(self, storage: str, study_name: str, trial_id: int, metric: str = "mIoU",
                 pruner: Optional[dict[str, Any]] = None, iters: int = 1) -> None:
        # Optuna keeps no pruner in its storage: the worker rebuilds the driver's.
        self.pruner = pruner or {}
        self.iters = iters
        self.storage = storage
        self.study_name = study_name
        self.trial_id = trial_id
        self.metric = metric
        self._trial: Any = None

    def before_run(self, runner: Any) -> None:
        import optuna

        study = optuna.load_study(study_name=self.study_name, storage=self.storage,
                                  pruner=build_pruner(self.pruner, self.iters))
        self._trial = optuna.trial.Trial(study, self.trial_id)

    def after_val_epoch(self, runner: Any, metrics: Optional[dict[str, float]] = None) -> None:
        if not metrics or self.metric not in metrics or runner.iter >= runner.max_iters:
            return
        self._trial.report(float(metrics[self.metric]), step=runner.iter)
        if self._trial.should_prune():
            raise TrialPruned(f"pruned at iteration {runner.iter} ({self.metric}={metrics[self.metric]:.2f})")
