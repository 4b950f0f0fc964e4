"""How fast a trial trained, in the terms the time model of `ablate plan` uses.

A trial's wall time is modelled as `fixed + iterations x s_per_iter + validations x val_s`:
`s_per_iter` is the wall time of one training iteration (data loading, step and every hook
included) from the end of the first iteration to the end of the last, without the validation
runs in between; `val_s` is the mean wall time of one validation run. Everything else (building
the model, the first iteration's warm-up, the final evaluation, latency timing, writing the
record) is what `fixed` stands for, recovered from the run's duration by `ablate.study.estimate`.
Logged once, after training, with the device it trained on (`ablate.device_kind`).
"""

from __future__ import annotations

import time
from typing import Any

from mmengine.registry import HOOKS

from ablate.tracking import tags as T
from ablate.tracking.hook import TrackedHook

S_PER_ITER, VAL_S, VAL_RUNS, TIMED_ITERS = "s_per_iter", "val_s", "val_runs", "timed_iters"


@HOOKS.register_module()
class SpeedHook(TrackedHook):
    """Seconds per training iteration and per validation run, and the device kind."""

    priority = "VERY_LOW"

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None) -> None:
        super().__init__(tracking_uri, run_id)
        self._last: float | None = None
        self._iters = 0
        self._steady_s = 0.0  # iterations after the first
        self._first_s = 0.0
        self._val_started: float | None = None
        self._val_since_last = 0.0
        self._val_s = 0.0
        self._val_runs = 0

    def before_train(self, runner: Any) -> None:
        self._last = time.perf_counter()
        self._iters, self._steady_s, self._first_s = 0, 0.0, 0.0
        self._val_s, self._val_runs, self._val_since_last = 0.0, 0, 0.0

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        now = time.perf_counter()
        if self._last is None:
            self._last = now
            return
        spent = now - self._last - self._val_since_last
        self._last, self._val_since_last = now, 0.0
        self._iters += 1
        if self._iters == 1:
            self._first_s = spent
        else:
            self._steady_s += spent

    def before_val(self, runner: Any) -> None:
        self._val_started = time.perf_counter()

    def after_val(self, runner: Any) -> None:
        if self._val_started is None:
            return
        spent = time.perf_counter() - self._val_started
        self._val_started = None
        if self._last is None:  # a validation outside training (e.g. `Runner.val()`)
            return
        self._val_s += spent
        self._val_runs += 1
        self._val_since_last += spent

    def after_train(self, runner: Any) -> None:
        if self._iters == 0:  # nothing trained in this process (a resume of a finished trial)
            return
        from ablate.analysis.latency import device_label

        per_iter = self._steady_s / (self._iters - 1) if self._iters > 1 else self._first_s
        self.log_metrics(
            {
                S_PER_ITER: round(per_iter, 6),
                VAL_S: round(self._val_s / self._val_runs, 4) if self._val_runs else 0.0,
                VAL_RUNS: float(self._val_runs),
                TIMED_ITERS: float(self._iters),
            },
            step=runner.iter,
        )
        model = runner.model
        device = next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu"
        self.log_tags({T.DEVICE_KIND: device_label(device)})
