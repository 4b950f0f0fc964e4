"""An mmengine hook that streams a trial's training and evaluation numbers into its MLflow run.

It writes to an explicit run id through `MlflowClient` (no global active run), so many trials can
log from many processes into one store without stepping on each other.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.tracking.store import client, log_metrics


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss: the trial is failed rather than left to diverge."""


def _scalar(value: Any) -> Optional[float]:
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None


def _numbers(values: Optional[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (values or {}).items():
        number = _scalar(value)
        if number is not None:
            out[key] = number
    return out


@HOOKS.register_module()
class MLflowTrialHook(Hook):
    """Logs loss/lr every `interval` iterations and every evaluation's metrics to `run_id`."""

    priority = "VERY_LOW"

    def __init__(self, tracking_uri: str, run_id: str, interval: int = 50) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.interval = interval
        self.last_metrics: dict[str, float] = {}
        self.best_miou: Optional[float] = None
        self._client: Any = None

    def before_run(self, runner: Any) -> None:
        self._client = client(self.tracking_uri)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Optional[dict] = None
    ) -> None:
        losses = _numbers(outputs)
        loss = losses.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(f"non-finite loss ({loss}) at iteration {runner.iter + 1}")
        if not (self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)):
            return
        record = dict(losses)
        # The lr this iteration trained with (RuntimeInfoHook records it before the step;
        # the optimizer already holds the next one).
        history = runner.message_hub.log_scalars.get("train/lr")
        if history is not None:
            record["lr"] = float(history.current())
        log_metrics(self._client, self.run_id, record, step=runner.iter + 1)

    def after_val_epoch(self, runner: Any, metrics: Optional[dict[str, float]] = None) -> None:
        numbers = _numbers(metrics)
        if not numbers:
            return
        self.last_metrics = numbers
        miou = numbers.get("mIoU")
        if miou is not None and (self.best_miou is None or miou > self.best_miou):
            self.best_miou = miou
            numbers = {**numbers, "best_mIoU": miou}
        log_metrics(self._client, self.run_id, numbers, step=runner.iter)
