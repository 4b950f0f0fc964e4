"""Keep the BN running statistics of a DDP trial's workers identical where SyncBN cannot run."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SyncNormStatsHook(Hook):
    """After every training iteration, every floating-point buffer (the BN running means and
    variances) becomes the mean over the workers.

    Added by `ablate.config.distributed.fit_to_world` on CPU workers only. It runs before the
    checkpoint hook, so the saved weights are exactly what every worker then evaluates with.
    """

    priority = "ABOVE_NORMAL"

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        stats = [b for b in runner.model.buffers() if torch.is_floating_point(b)]
        for buffer in stats:
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(dist.get_world_size())
