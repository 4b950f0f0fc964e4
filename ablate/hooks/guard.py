"""Stop a trial whose loss is no longer a number instead of letting it train on garbage."""

from __future__ import annotations

import math
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss: the trial is failed rather than left to diverge."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    priority = "HIGHEST"

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        loss = (outputs or {}).get("loss")
        if loss is None:
            return
        value = float(loss.item() if hasattr(loss, "item") else loss)
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite loss ({value}) at iteration {runner.iter + 1}")
