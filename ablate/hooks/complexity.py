"""FLOPs and parameters of the trained model, logged once per run at the dataset's image size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ablate.analysis import cached_complexity
from ablate.tracking.hook import TrackedHook


@HOOKS.register_module()
class ComplexityHook(TrackedHook):
    """Counted on the runner's own model the first time a model config and size are seen, then
    read from the on-disk cache (`ablate.analysis.cached_complexity`): a study of many seeds of one
    model counts it once."""

    priority = "LOW"

    def __init__(self, image_size: Sequence[int], tracking_uri: str | None = None, run_id: str | None = None) -> None:
        super().__init__(tracking_uri, run_id)
        self.height, self.width = (int(v) for v in image_size)

    def before_train(self, runner: Any) -> None:
        if runner.iter > 0 or not is_main_process():  # logged before a resumed run's first iteration; by rank 0
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model  # DDP wraps it
        info = cached_complexity(runner.cfg, self.height, self.width, model=model)
        self.log_metrics({"flops_g": info.flops_g, "params_m": info.params_m}, step=0)
