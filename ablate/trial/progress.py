"""A trial's live progress as a small JSON file in its work dir.

The driver reads these to draw its table: no extra channel between workers and driver is needed,
and the file survives a driver restart.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

PROGRESS_FILE = "progress.json"


def read_progress(work_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((work_dir / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}


@HOOKS.register_module()
class ProgressFileHook(Hook):
    """Writes {iter, max_iters, mIoU, eta_s} every `interval` iterations and after evaluation."""

    priority = "VERY_LOW"

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval
        self.state: dict[str, Any] = {}
        self._start: Optional[float] = None
        self._start_iter = 0

    def _write(self, runner: Any) -> None:
        path = Path(runner.work_dir) / PROGRESS_FILE
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, path)

    def before_train(self, runner: Any) -> None:
        self.state = {**read_progress(Path(runner.work_dir)), **self.state}  # keeps the device
        self._start, self._start_iter = time.time(), runner.iter
        self.state.update(iter=runner.iter, max_iters=runner.max_iters, phase="train")
        self._write(runner)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        done = runner.iter + 1
        if not (self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)):
            return
        rate = (time.time() - (self._start or time.time())) / max(done - self._start_iter, 1)
        self.state.update(iter=done, max_iters=runner.max_iters, eta_s=round(rate * (runner.max_iters - done), 1),
                          phase="train")
        self._write(runner)

    def before_val(self, runner: Any) -> None:
        self.state["phase"] = "eval"
        self._write(runner)

    def after_val_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        if metrics and "mIoU" in metrics:
            self.state["mIoU"] = float(metrics["mIoU"])
        self.state["phase"] = "train"
        self._write(runner)
