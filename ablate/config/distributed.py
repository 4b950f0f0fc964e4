"""What a process of a multi-worker (DDP) trial adds to the trial's config, on its own device.

The planned config (and so the trial id) keeps SyncBN for a trial of several workers (see
`use_plain_bn`); this is the runtime part, applied by each worker just before it builds the
Runner, like the precision (`ablate.config.precision`): mmengine's `launcher` says the process
group exists, and on CPU workers (gloo) two things PyTorch does not run there are replaced:
* DDP is told not to pin the model to a GPU (`device_ids=None`);
* SyncBN (GPU-only in PyTorch) becomes BN, and `SyncNormStatsHook` averages the BN running
  statistics over the workers after every iteration, so every worker, the checkpoint and the
  evaluation hold the same statistics. Batch statistics stay per worker: not SyncBN's maths, and
  recorded as such (`ablate.sync_bn_fallback`).
"""

from __future__ import annotations

from typing import Any

from ablate.config import keys
from ablate.config.resolve import has_sync_bn, use_plain_bn

LAUNCHER = "pytorch"
NORM_STATS_HOOK = "SyncNormStatsHook"
CPU_FALLBACK = "SyncBN needs GPUs: CPU workers train with BN, running statistics averaged over the workers"


def fit_to_world(cfg: Any, world_size: int, cuda: bool) -> None:
    """In place, for one of `world_size` processes; `cuda`: whether this process trains on a GPU."""
    if world_size <= 1:
        return
    cfg.launcher = LAUNCHER
    if cuda:
        return
    wrapper = dict(cfg.get("model_wrapper_cfg") or {"type": "MMDistributedDataParallel"})
    wrapper["device_ids"] = None
    cfg.model_wrapper_cfg = wrapper
    if has_sync_bn(cfg):
        use_plain_bn(cfg)
        cfg.custom_hooks = [dict(type=NORM_STATS_HOOK), *(cfg.get("custom_hooks") or [])]
        cfg[keys.SYNC_BN_FALLBACK] = CPU_FALLBACK
