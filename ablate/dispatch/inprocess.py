"""Trials one at a time in this process: no Ray, nothing to start, tracebacks where you are.

`--dispatcher local` and the library default. One trial at a time; a submitted trial trains when
the driver polls, so an interrupt lands in the training itself and the scheduler above decides
everything else exactly as it does for Ray. A trial of several workers (DDP) needs the Ray
dispatcher: it is refused here before anything runs.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque

from ablate.dispatch.protocol import Capacity, Completion, Resources, RunContext, Trainable
from ablate.errors import AblateError
from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.util.text import one_line

ONE_TRIAL = Resources(gpus=0.0, cpus=1.0)


class NeedsWorkersError(AblateError):
    """A multi-worker (DDP) trial was handed to the in-process dispatcher."""


def refuse_workers(who: str, workers: int) -> None:
    """The one line `--dispatcher local` answers a DDP trial with (exit 2); `who`: "trial x"."""
    if workers > 1:
        raise NeedsWorkersError(
            f"{who} trains as {workers} DDP workers (resources.gpus_per_trial / workers_per_trial above 1), "
            "which only the Ray dispatcher runs: use --dispatcher ray, or resources of 1 for --dispatcher local"
        )


def train_here(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Train on this process's device (the first GPU mmengine finds, else the CPU)."""
    from ablate.tracking import tags
    from ablate.trial.train import train_trial

    return train_trial(
        spec,
        context.tracking_uri,
        context.experiment_id,
        context.parent_run_id,
        extra_tags={tags.ATTEMPT: str(attempt)},
    )


class InProcessDispatcher:
    """One slot, trained in the calling process on `poll`."""

    def __init__(self, trainable: Trainable | None = None) -> None:
        self.trainable = trainable or train_here
        self._queue: deque[tuple[TrialSpec, RunContext, int]] = deque()

    def open(self) -> Capacity:
        self._queue.clear()
        return Capacity(ONE_TRIAL, trials=1)

    def demand(self, spec: TrialSpec) -> Resources:
        refuse_workers(f"trial {spec.name}", spec.workers)
        return ONE_TRIAL

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        self._queue.append((spec, context, attempt))

    def poll(self, timeout: float | None = None) -> list[Completion]:
        """Train the next queued trial to its end (`timeout` cannot cut a trial short here)."""
        if not self._queue:
            return []
        spec, context, attempt = self._queue.popleft()
        try:
            # mmengine logs every trial to stdout as well as to the trial's log file; stdout is the
            # command's own (tables, --json), as it is when a Ray worker trains.
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                result = self.trainable(spec, context, attempt)
        except Exception as exc:  # the trial's own failures are results; this is anything else
            result = TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FAILED, error=one_line(exc))
        return [Completion(spec, result, attempt)]

    def cancel(self, trial_id: str) -> None:
        self._queue = deque(item for item in self._queue if item[0].trial_id != trial_id)

    def close(self) -> None:
        self._queue.clear()
