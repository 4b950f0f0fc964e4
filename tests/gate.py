"""A hook that holds a trial at a chosen iteration until the test lets it go, so a test can kill or
interrupt a driver at a known point of training instead of racing it (a fast GPU would finish the
whole trial between two polls)."""

from __future__ import annotations

import time
from pathlib import Path

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

REACHED, RELEASED = "reached", "released"


@HOOKS.register_module(force=True)
class GateHook(Hook):
    """Before iteration `at` (checkpoints and validations of the earlier iterations written), touch
    `<folder>/reached` and wait until `<folder>/released` exists. Once released, a resumed trial
    passes straight through."""

    def __init__(self, folder: str, at: int, wait_s: float = 600.0) -> None:
        self.folder, self.at, self.wait_s = Path(folder), at, wait_s

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:  # noqa: ANN001
        if runner.iter != self.at or (self.folder / RELEASED).exists():
            return
        (self.folder / REACHED).touch()
        deadline = time.monotonic() + self.wait_s
        while not (self.folder / RELEASED).exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def gate_overrides(folder: Path, at: int) -> dict:
    """Trial overrides that put the gate into a trial's config."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"+custom_imports": {"imports": ["tests.gate"], "allow_failed_imports": False},
            "+custom_hooks": [{"type": "GateHook", "folder": str(folder), "at": at}]}


def wait_for(path: Path, alive=lambda: True, timeout_s: float = 300.0) -> None:  # noqa: ANN001
    """Until `path` exists (bounded); fails early once `alive()` says the process behind it ended."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert alive(), f"the process ended before {path.name} appeared"
        assert time.monotonic() < deadline, f"no {path} within {timeout_s:g} s"
        time.sleep(0.1)


@HOOKS.register_module(force=True)
class BarrierHook(Hook):
    """Before training, each trial checks in under `folder` and waits until `parties` trials have:
    trials that pass it provably trained at the same time, however fast each one is."""

    def __init__(self, folder: str, parties: int, wait_s: float = 600.0) -> None:
        self.folder, self.parties, self.wait_s = Path(folder), parties, wait_s

    def before_train(self, runner) -> None:  # noqa: ANN001
        (self.folder / Path(runner.work_dir).name).touch()
        deadline = time.monotonic() + self.wait_s
        while len(list(self.folder.iterdir())) < self.parties and time.monotonic() < deadline:
            time.sleep(0.05)


def barrier_overrides(folder: Path, parties: int) -> dict:
    """Study overrides that make `parties` trials wait for each other before training."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"+custom_imports": {"imports": ["tests.gate"], "allow_failed_imports": False},
            "+custom_hooks": [{"type": "BarrierHook", "folder": str(folder), "parties": parties}]}
