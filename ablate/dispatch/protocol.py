"""The dispatcher seam: a pool of slots that trains the trials it is handed.

A dispatcher places and runs trials (in this process, as Ray tasks, ...); it never decides which
trial goes next, whether a failure is retried or what happens to dependents. That is the
scheduler's job (`ablate.dispatch.scheduler`), written once for every dispatcher, so `ablate run`,
`ablate tune` and the packing benchmark all order and retry trials the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

from ablate.trial.spec import TrialResult, TrialSpec

EventSink = Callable[[TrialSpec, TrialResult], None]
StartSink = Callable[[TrialSpec, int], None]


@dataclass(frozen=True)
class RunContext:
    """Where trials report: the tracking store, the study's experiment and the parent run."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: Optional[str] = None


@dataclass(frozen=True)
class Completion:
    """One attempt of one trial has ended; `result` is FAILED when the attempt crashed."""

    spec: TrialSpec
    result: TrialResult
    attempt: int


Trainable = Callable[[TrialSpec, RunContext, int], TrialResult]


@runtime_checkable
class Dispatcher(Protocol):
    """A pool of slots. `submit` is only called while a slot is free; `poll` hands back ended
    attempts (never raising for a trial's failure: that is a FAILED result)."""

    def open(self) -> int:
        """Acquire the resources; return how many trials can run at once (at least 1)."""
        ...

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        """Start (or queue) one attempt of a trial; `attempt` counts from 1."""
        ...

    def poll(self, timeout: Optional[float] = None) -> list[Completion]:
        """Attempts that ended within `timeout` seconds (None: wait for at least one); [] when idle."""
        ...

    def cancel(self, trial_id: str) -> None:
        """Stop a submitted trial; no completion is reported for it."""
        ...

    def close(self) -> None:
        """Release what `open` acquired; trials still in flight are stopped."""
        ...
