"""mmengine hooks that record the machine a trial runs on: its software and its load.

`EnvironmentHook` tags the run with package versions, CUDA/cuDNN, the GPU model and the
determinism switches once the Runner has applied the config. `SystemMetricsHook` runs MLflow's
system-metrics monitor (CPU, memory, disk, network; per-GPU utilisation, memory and power through
NVML when `nvidia-ml-py` finds a GPU) for the trial's own run id while it trains.

Sampling follows the study's `budget.log_interval`: the first sample is taken after `min_seconds`,
then the interval becomes the wall time the first `log_interval` iterations took, clamped to
[`min_seconds`, `max_seconds`], so CPU/GPU load is sampled about as often as loss and lr are
logged. `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` (seconds) fixes the interval instead, and
`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=false` turns the monitor off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mmengine.registry import HOOKS

from ablate.tracking.environment import randomness_tags, torch_tags, version_tags
from ablate.tracking.hook import TrackedHook
from ablate.tracking.store import RunStore

log = logging.getLogger("ablate.tracking")


@HOOKS.register_module()
class EnvironmentHook(TrackedHook):
    """Versions, GPU model and determinism flags as tags, when training starts (again on resume:
    a resumed trial records what it finished with)."""

    priority = "VERY_LOW"

    def before_train(self, runner: Any) -> None:
        if not self.tracked:
            return
        try:
            device = next(runner.model.parameters()).device
        except StopIteration:
            device = None
        self.log_tags({**version_tags(), **torch_tags(device), **randomness_tags(runner.cfg.get("randomness"))})


def _monitor(run_id: str, tracking_uri: str, store: RunStore, seconds: float) -> Any:
    """MLflow's monitor, writing through ablate's lock-retrying store and keeping its last sample.

    MLflow's loop drops the sample it took just before being stopped; publishing it at `finish`
    gives even a trial shorter than one interval a reading.
    """
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # it announces every start and stop at INFO: one line per trial that says nothing about it
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)

    class Monitor(SystemMetricsMonitor):
        def finish(self) -> None:
            super().finish()
            if any(m.metrics for m in self.monitors):
                self.publish_metrics(self.aggregate_metrics())
                self.mlflow_logger.flush()

    monitor = Monitor(run_id, sampling_interval=seconds, resume_logging=True, tracking_uri=tracking_uri)
    monitor.mlflow_logger.client = store  # it calls `log_batch(run_id=..., metrics=...)` only
    return monitor


@HOOKS.register_module()
class SystemMetricsHook(TrackedHook):
    """`system/*` metrics for the trial's run while it trains; stopped after training or, through
    `stop_monitors`, when the trial fails or is pruned."""

    priority = "VERY_LOW"

    def __init__(
        self,
        tracking_uri: str | None = None,
        run_id: str | None = None,
        interval: int = 50,
        min_seconds: float = 1.0,
        max_seconds: float = 60.0,
    ) -> None:
        super().__init__(tracking_uri, run_id)
        self.interval = max(1, int(interval))
        self.min_seconds = float(min_seconds)
        self.max_seconds = max(float(max_seconds), self.min_seconds)
        self.monitor: Any = None
        self._fixed = False
        self._started: tuple[float, int] = (0.0, 0)

    def before_train(self, runner: Any) -> None:
        from mlflow.environment_variables import (
            MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING,
            MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL,
        )

        if not self.tracked or self.monitor is not None:
            return
        if MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.defined and not MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get():
            return
        self._fixed = MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL.defined
        try:
            self.monitor = _monitor(str(self.run_id), str(self.tracking_uri), self.store, self.min_seconds)
            self.monitor.start()
        except Exception as exc:  # a missing psutil or a broken NVML must not fail training
            log.warning("system metrics are not recorded: %s", exc)
            self.monitor = None
        self._started = (time.monotonic(), runner.iter)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        if self.monitor is None or self._fixed:
            return
        began, first_iter = self._started
        if runner.iter + 1 - first_iter >= self.interval:
            took = time.monotonic() - began
            self.monitor.sampling_interval = min(self.max_seconds, max(self.min_seconds, took))
            self._fixed = True

    def after_train(self, runner: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self.monitor is not None:
            monitor, self.monitor = self.monitor, None
            try:
                monitor.finish()
            except Exception as exc:  # the last load sample is not worth a trial
                log.warning("system metrics: the last sample was not logged: %s", exc)


def stop_monitors(runner: Any) -> None:
    """Stop the system-metrics monitor of a Runner whose training ended without `after_train`
    (an exception, a pruned trial), before its run is closed and possibly reopened for a retry."""
    for hook in getattr(runner, "hooks", ()):
        if isinstance(hook, SystemMetricsHook):
            hook.stop()
