"""The mmengine hook through which a training trial reports to Optuna and can be pruned."""

from __future__ import annotations

from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class OptunaPruningHook(Hook):
    """After each evaluation: report the metric at the current iteration, stop if pruned."""

    priority = "LOW"

    def __init__(self, storage: str, study_name: str, trial_id: int, metric: str = "mIoU") -> None:
        self.storage = storage
        self.study_name = study_name
        self.trial_id = trial_id
        self.metric = metric
        self._trial: Any = None

    def before_run(self, runner: Any) -> None:
        import optuna

        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        self._trial = optuna.trial.Trial(study, self.trial_id)

    def after_val_epoch(self, runner: Any, metrics: Optional[dict[str, float]] = None) -> None:
        import optuna

        if not metrics or self.metric not in metrics or runner.iter >= runner.max_iters:
            return
        self._trial.report(float(metrics[self.metric]), step=runner.iter)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned at iteration {runner.iter} ({self.metric}={metrics[self.metric]:.2f})")
