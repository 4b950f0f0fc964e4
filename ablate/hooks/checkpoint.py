"""`best.pth`: the stable name under which later trials find a trial's best weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

BEST_CHECKPOINT = "best.pth"


def link_or_copy(source: Path, target: Path) -> None:
    """Atomically make `target` the same file as `source` (hard link, else a copy)."""
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


@HOOKS.register_module()
class BestCheckpointHook(Hook):
    """After training: `best.pth` = the checkpoint CheckpointHook kept as best, else the last one."""

    priority = "LOW"

    def after_train(self, runner: Any) -> None:
        if not is_main_process():  # checkpoints are saved by rank 0 of a DDP trial only
            return
        work_dir = Path(runner.work_dir)
        best = runner.message_hub.get_info("best_ckpt")
        source = Path(best) if best else work_dir / f"iter_{runner.max_iters}.pth"
        if source.exists():
            link_or_copy(source, work_dir / BEST_CHECKPOINT)
