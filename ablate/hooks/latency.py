"""Measured latency of the trained model, logged once per run next to its FLOPs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.registry import HOOKS

from ablate.analysis.latency import Budget, cached_latency
from ablate.config.precision import trained_precision
from ablate.tracking import tags as T
from ablate.tracking.hook import TrackedHook
from ablate.util.text import one_line


@HOOKS.register_module()
class LatencyHook(TrackedHook):
    """After training and the final evaluation (it runs last): batch-1 inference of the final
    model at the dataset's image size, on the trial's own device and in the precision it trained
    in. Logs `latency_ms` (median), `latency_p90_ms` and `fps`, and tags the device
    (`ablate.latency_device`). Timed once per model config, size, device and precision, then read
    from the cache (`ablate.analysis.cached_latency`); for a distilled student only the student
    runs (its teacher is not part of the module tree).

    A measurement that fails (say, out of memory at full size) does not fail a trained trial: the
    reason goes to the log and the `ablate.latency_error` tag, and the latency stays blank."""

    priority = "LOWEST"

    def __init__(
        self,
        image_size: Sequence[int],
        tracking_uri: str | None = None,
        run_id: str | None = None,
        max_s: float = Budget.max_s,
    ) -> None:
        super().__init__(tracking_uri, run_id)
        self.height, self.width = (int(v) for v in image_size)
        self.budget = Budget(max_s=max_s)

    def after_train(self, runner: Any) -> None:
        from mmengine.dist import is_main_process
        from mmengine.model import is_model_wrapper

        if not is_main_process():  # timed once per trial, by rank 0 of a DDP trial
            return

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        precision = trained_precision(runner.optim_wrapper)
        try:
            result = cached_latency(runner.cfg, model, self.height, self.width, precision, self.budget)
        except Exception as exc:  # the trained model and its numbers stand without a latency
            problem = one_line(exc)
            runner.logger.warning(f"latency not measured: {problem}")
            self.log_tags({T.LATENCY_ERROR: problem})
            return
        self.log_metrics(result.metrics(), step=runner.iter)
        self.log_tags({T.LATENCY_DEVICE: result.device})
        runner.logger.info(
            f"latency at {self.height}x{self.width}, batch 1, {result.precision} on {result.device}: median "
            f"{result.median_ms:.2f} ms, p90 {result.p90_ms:.2f} ms, {result.fps:.1f} images/s ({result.passes} passes)"
        )
