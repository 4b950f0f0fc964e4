"""A test-only mmengine hook imported by a trial's config: which images each rank trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

SAMPLES = "samples.rank{rank}.txt"


@HOOKS.register_module(force=True)
class SampleProbeHook(Hook):
    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        from mmengine.dist import get_rank

        names = [Path(sample.img_path).name for sample in data_batch["data_samples"]]
        with open(Path(runner.work_dir) / SAMPLES.format(rank=get_rank()), "a") as handle:
            handle.write(" ".join(names) + "\n")
