"""`best.pth` into the tracking store, for trials that load it on other machines."""

from __future__ import annotations

from typing import Any

from mmengine.registry import HOOKS

from ablate.hooks.checkpoint import name_best
from ablate.tracking.checkpoints import log_checkpoint
from ablate.tracking.hook import TrackedHook


@HOOKS.register_module()
class StoredCheckpointHook(TrackedHook):
    """After training, on the process that saved it (rank 0 of a DDP trial): log `best.pth` as the
    run's `checkpoints/best.pth` artifact with its SHA-256 (`ablate.tracking.checkpoints`). Only
    trials others load get this hook; it names the file itself (`name_best`), whichever of the two
    hooks runs first."""

    def after_train(self, runner: Any) -> None:
        from mmengine.dist import is_main_process

        if not (self.tracked and is_main_process()):
            return
        best = name_best(runner)
        if not best.is_file():
            raise FileNotFoundError(f"{best}: no best checkpoint to store, and later trials load it")
        log_checkpoint(self.store, str(self.run_id), best)
