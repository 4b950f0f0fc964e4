"""`best.pth`: the stable name under which later trials find a trial's best weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.tracking.checkpoints import BEST_CHECKPOINT
from ablate.util.files import atomic_link


@HOOKS.register_module()
class BestCheckpointHook(Hook):
    """After training: `best.pth` = the checkpoint CheckpointHook kept as best, else the last one."""

    priority = "LOW"

    def after_train(self, runner: Any) -> None:
        if is_main_process():  # checkpoints are saved by rank 0 of a DDP trial only
            name_best(runner)


def name_best(runner: Any) -> Path:
    """Make `best.pth` the checkpoint CheckpointHook kept as best, else the last one; idempotent,
    so every hook that needs the file calls it rather than counting on running after another."""
    work_dir = Path(runner.work_dir)
    best = runner.message_hub.get_info("best_ckpt")
    source = Path(best) if best else work_dir / f"iter_{runner.max_iters}.pth"
    if source.exists():
        atomic_link(source, work_dir / BEST_CHECKPOINT)
    return work_dir / BEST_CHECKPOINT
