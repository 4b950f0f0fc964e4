"""The precision a trial trains in, recorded where a user looks: run tags, training log, board."""

from __future__ import annotations

from typing import Any

from mmengine.registry import HOOKS

from ablate.config.precision import runner_precision
from ablate.tracking import tags as T
from ablate.tracking.hook import TrackedHook


@HOOKS.register_module()
class PrecisionHook(TrackedHook):
    """Tags `ablate.amp` (asked for), `ablate.precision` (trained in) and, when the two differ,
    `ablate.amp_fallback` (why); a fallback is also a warning in the training log and shows in
    the board's device column (`ProgressFileHook`), so a bf16 study run on a CPU never passes for a
    bf16 result."""

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None) -> None:
        super().__init__(tracking_uri, run_id)

    def before_run(self, runner: Any) -> None:
        precision = runner_precision(runner)
        values = {T.AMP: precision.requested, T.PRECISION: precision.effective}
        if precision.fallback:
            values[T.AMP_FALLBACK] = precision.fallback
            runner.logger.warning(f"budget.amp is {precision.requested}, but {precision.fallback}")
        self.log_tags(values)
