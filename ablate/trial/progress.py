"""A trial's live progress as a small JSON file in its work dir.

The driver reads these to draw its table: no extra channel between workers and driver is needed,
and the file survives a driver restart. Besides the training iteration it names the current phase
(`train`, `val`, `tta`, `test`) and that phase's own counter, so a long evaluation shows
`tta 12/50` rather than a training counter that sits at its end for minutes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.trial.progress_file import PHASE_INFO, read_progress, write_progress

MIN_WRITE_S = 1.0  # evaluation batches can be fast: at most one write a second for counters


def _with_precision(runner: Any, device: str) -> str:
    """`cuda:0 bf16`, `cpu fp32 (bf16 requested)`: what the board shows; plain fp32 adds nothing."""
    from ablate.config.precision import FP32, runner_precision

    precision = runner_precision(runner)
    if precision.fallback or precision.effective != FP32:
        return f"{device} {precision.describe()}"
    return device


def _batches(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


@HOOKS.register_module()
class ProgressFileHook(Hook):
    """Writes {iter, max_iters, eta_s, mIoU, phase, phase_done, phase_total} as the trial runs."""

    priority = "VERY_LOW"

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval
        self.state: dict[str, Any] = {}
        self._start: float | None = None
        self._start_iter = 0
        self._last_write = 0.0

    def _write(self, runner: Any, force: bool = True) -> None:
        now = time.time()
        if force or now - self._last_write >= MIN_WRITE_S:
            self._last_write = now
            write_progress(Path(runner.work_dir), self.state)

    def _phase(self, runner: Any, phase: str, total: int | None) -> None:
        self.state.update(phase=phase, phase_done=0, phase_total=total)
        self._write(runner)

    def before_train(self, runner: Any) -> None:
        fresh = not self.state
        self.state = {**read_progress(Path(runner.work_dir)), **self.state}  # keeps the device
        if fresh and self.state.get("device"):
            self.state["device"] = _with_precision(runner, self.state["device"])
        self._start, self._start_iter = time.time(), runner.iter
        self.state.update(iter=runner.iter, max_iters=runner.max_iters)
        self._phase(runner, "train", runner.max_iters)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        done = runner.iter + 1
        if not (self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)):
            return
        rate = (time.time() - (self._start or time.time())) / max(done - self._start_iter, 1)
        self.state.update(
            iter=done,
            max_iters=runner.max_iters,
            eta_s=round(rate * (runner.max_iters - done), 1),
            phase="train",
            phase_done=done,
            phase_total=runner.max_iters,
        )
        self._write(runner)

    def before_val_epoch(self, runner: Any) -> None:
        self._phase(runner, "val", _batches(runner.val_dataloader))

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.state["phase_done"] = batch_idx + 1
        self._write(runner, force=False)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if metrics and "mIoU" in metrics:
            self.state["mIoU"] = float(metrics["mIoU"])
        self.state.update(phase="train", phase_done=runner.iter, phase_total=runner.max_iters)
        self._write(runner)

    def before_test_epoch(self, runner: Any) -> None:
        info = runner.message_hub.get_info(PHASE_INFO) or {}
        loop: Any = getattr(runner, "_test_loop", None)  # a runner without a test loop has None
        total = info.get("total") or (_batches(loop.dataloader) if hasattr(loop, "dataloader") else None)
        self._phase(runner, info.get("phase", "test"), total)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.state["phase_done"] = batch_idx + 1
        self._write(runner, force=False)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if metrics and "mIoU" in metrics:
            self.state["mIoU"] = float(metrics["mIoU"])
        self.state["phase"] = "done"
        self._write(runner)
