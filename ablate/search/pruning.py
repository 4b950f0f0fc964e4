"""The mmengine hook through which a training trial reports to Optuna and can be pruned."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.errors import TrialPruned
from ablate.search.pruners import build_pruner


@HOOKS.register_module()
class OptunaPruningHook(Hook):
    """After each evaluation: report the metric at the current iteration, stop if pruned."""

    # After MLflowTrialHook and ProgressFileHook (VERY_LOW): the evaluation that prunes a
    # trial is recorded before the trial stops.
    priority = "LOWEST"

    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_id: int,
        metric: str = "mIoU",
        pruner: dict[str, Any] | None = None,
        iters: int = 1,
    ) -> None:
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

        study = optuna.load_study(
            study_name=self.study_name, storage=self.storage, pruner=build_pruner(self.pruner, self.iters)
        )
        self._trial = optuna.trial.Trial(study, self.trial_id)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not metrics or self.metric not in metrics or runner.iter >= runner.max_iters:
            return
        self._trial.report(float(metrics[self.metric]), step=runner.iter)
        if self._trial.should_prune():
            raise TrialPruned(f"pruned at iteration {runner.iter} ({self.metric}={metrics[self.metric]:.2f})")
