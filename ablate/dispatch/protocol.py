"""The dispatcher seam: a pool of GPUs and CPUs that trains the trials it is handed.

A dispatcher places and runs trials (in this process, as Ray tasks, ...); it never decides which
trial goes next, whether a failure is retried or what happens to dependents. That is the
scheduler's job (`ablate.dispatch.scheduler`), written once for every dispatcher, so `ablate run`,
`ablate tune` and the packing benchmark all order and retry trials the same way.

Trials differ in size (a 4-GPU DDP trial beside 1-GPU ones), so a dispatcher reports what it has
(`open`: a `Capacity`) and what each trial would hold (`demand`), and the driver starts only
trials that fit what is free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ablate.trial.spec import TrialResult, TrialSpec

_EPS = 1e-9


@dataclass(frozen=True)
class Resources:
    """GPUs and CPUs: what a dispatcher has, or what one trial holds while it runs."""

    gpus: float = 0.0
    cpus: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.gpus + other.gpus, self.cpus + other.cpus)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.gpus - other.gpus, self.cpus - other.cpus)

    def fits(self, free: Resources) -> bool:
        """Whether this demand fits in `free`; a kind it does not ask for never stands in the way
        (even where `free` is negative because it is promised to a waiting trial)."""
        return all(
            need <= _EPS or need <= have + _EPS for need, have in ((self.gpus, free.gpus), (self.cpus, free.cpus))
        )

    def times_in(self, free: Resources) -> int | None:
        """How many of this demand fit in `free` at once (None: it asks for nothing)."""
        counts = [
            int((have + _EPS) // need) for need, have in ((self.gpus, free.gpus), (self.cpus, free.cpus)) if need > _EPS
        ]
        return max(0, min(counts)) if counts else None

    def __str__(self) -> str:
        return f"{self.gpus:g} GPU{'s' if self.gpus != 1 else ''}, {self.cpus:g} CPU{'s' if self.cpus != 1 else ''}"


@dataclass(frozen=True)
class Capacity:
    """What a dispatcher can run at once: its GPUs and CPUs, and a cap on trials (None: none)."""

    total: Resources
    trials: int | None = None


EventSink = Callable[[TrialSpec, TrialResult], None]
StartSink = Callable[[TrialSpec, int], None]


@dataclass(frozen=True)
class RunContext:
    """Where trials report: the tracking store, the study's experiment and the parent run."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str | None = None


@dataclass(frozen=True)
class Completion:
    """One attempt of one trial has ended; `result` is FAILED when the attempt crashed."""

    spec: TrialSpec
    result: TrialResult
    attempt: int


Trainable = Callable[[TrialSpec, RunContext, int], TrialResult]


@runtime_checkable
class Dispatcher(Protocol):
    """A pool of GPUs and CPUs. `submit` is only called when the trial's `demand` fits what is
    free; `poll` hands back ended attempts (never raising for a trial's failure: that is a FAILED
    result)."""

    def open(self) -> Capacity:
        """Acquire the resources; return what can run at once."""
        ...

    def demand(self, spec: TrialSpec) -> Resources:
        """What one attempt of `spec` holds while it runs (its workers' GPUs and CPUs together)."""
        ...

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        """Start (or queue) one attempt of a trial; `attempt` counts from 1."""
        ...

    def poll(self, timeout: float | None = None) -> list[Completion]:
        """Attempts that ended within `timeout` seconds (None: wait for at least one); [] when idle."""
        ...

    def cancel(self, trial_id: str) -> None:
        """Stop a submitted trial; no completion is reported for it."""
        ...

    def close(self) -> None:
        """Release what `open` acquired; trials still in flight are stopped."""
        ...
