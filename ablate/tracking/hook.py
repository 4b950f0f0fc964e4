"""mmengine hooks that write into one trial's MLflow run.

They write to an explicit run id through `MlflowClient` (no global active run), so many trials
can log from many processes into one store; the run id is part of the trial's dumped
`config.py`, so a plain `Runner.from_cfg(cfg).train()` of that file logs to the same run.
Without a run id a tracked hook does its work and logs nothing; so does every process of a DDP
trial but rank 0 (each still runs the hook, so collective operations inside it stay matched).
"""

from __future__ import annotations

import math
from typing import Any

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.tracking import tags as T
from ablate.tracking.store import RunStore

PER_CLASS_FILE = "per_class_iou.json"


def numbers(values: dict | None) -> dict[str, float]:
    """The scalar entries of a loss or metric dict, as floats."""
    out: dict[str, float] = {}
    for key, value in (values or {}).items():
        try:
            out[key] = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


class TrackedHook(Hook):
    """Base of the hooks that log to the trial's run, through the process's store for its URI."""

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id

    @property
    def tracked(self) -> bool:
        """Whether this process writes to the run: only rank 0 of a DDP trial does."""
        return bool(self.tracking_uri and self.run_id) and is_main_process()

    @property
    def store(self) -> RunStore:
        return RunStore.open(str(self.tracking_uri))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.tracked and metrics:
            self.store.log_metrics(str(self.run_id), metrics, step=step)

    def log_tags(self, values: dict[str, str]) -> None:
        if self.tracked:
            self.store.log_tags(str(self.run_id), values)

    def log_artifacts(self, folder: str, artifact_path: str) -> None:
        if self.tracked:
            self.store.log_folder(str(self.run_id), folder, artifact_path)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        if self.tracked:
            self.store.log_file(str(self.run_id), path, artifact_path)

    def log_final_evaluation(self, metrics: dict[str, float], step: int, how: str) -> None:
        """The final evaluation: its numbers as the run's last values and the per-class table."""
        self.log_metrics(metrics, step)
        if not self.tracked:
            return
        per_class = {
            k.split(".", 1)[1]: (None if math.isnan(v) else v) for k, v in metrics.items() if k.startswith("IoU.")
        }
        self.store.log_dict(str(self.run_id), per_class, PER_CLASS_FILE)
        self.log_tags({T.FINAL_EVAL: how})


@HOOKS.register_module()
class MLflowTrialHook(TrackedHook):
    """Logs loss/lr every `interval` iterations and every evaluation's metrics to `run_id`."""

    priority = "VERY_LOW"

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None, interval: int = 50) -> None:
        super().__init__(tracking_uri, run_id)
        self.interval = interval
        self.best_miou: float | None = None

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        if not (self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)):
            return
        record = numbers(outputs)
        # The lr this iteration trained with (RuntimeInfoHook records it before the step;
        # the optimizer already holds the next one).
        history = runner.message_hub.log_scalars.get("train/lr")
        if history is not None:
            record["lr"] = float(history.current())
        self.log_metrics(record, step=runner.iter + 1)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        values = numbers(metrics)
        if not values:
            return
        miou = values.get("mIoU")
        if miou is not None and (self.best_miou is None or miou > self.best_miou):
            self.best_miou = miou
            values["best_mIoU"] = miou
        if runner.iter >= runner.max_iters:
            self.log_final_evaluation(values, runner.iter, "single_scale")
        else:
            self.log_metrics(values, step=runner.iter)
