"""The dispatcher seam: something that takes trial specs and gives back results.

The study driver depends only on this interface; how trials are placed on devices (in-process,
Ray across GPUs) is the implementation's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from ablate.trial.spec import TrialResult, TrialSpec, TrialState

EventSink = Callable[[TrialSpec, TrialResult], None]


@dataclass(frozen=True)
class RunContext:
    """Where trials report: the tracking store, the study's experiment and the parent run."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: Optional[str] = None


def order_by_dependencies(trials: Sequence[TrialSpec]) -> list[TrialSpec]:
    """Trials whose checkpoints others load come first; otherwise the given order is kept."""
    pending = list(trials)
    ids = {t.trial_id for t in trials}
    done: set[str] = set()
    ordered: list[TrialSpec] = []
    while pending:
        ready = [t for t in pending if all(d in done or d not in ids for d in t.depends_on)]
        if not ready:
            raise ValueError("circular dependency between trials: " + ", ".join(t.name for t in pending))
        for trial in ready:
            ordered.append(trial)
            done.add(trial.trial_id)
            pending.remove(trial)
    return ordered


class Dispatcher(Protocol):
    def run(
        self, trials: Sequence[TrialSpec], context: RunContext, on_result: Optional[EventSink] = None
    ) -> list[TrialResult]:
        """Run every trial; a trial's failure is a FAILED result, never an exception."""
        ...


class SequentialDispatcher:
    """Trials one after another in this process: the simplest correct dispatcher."""

    def run(
        self, trials: Sequence[TrialSpec], context: RunContext, on_result: Optional[EventSink] = None
    ) -> list[TrialResult]:
        from ablate.trial.execute import execute_trial

        results: list[TrialResult] = []
        failed: set[str] = set()
        for spec in order_by_dependencies(trials):
            blocked = [d for d in spec.depends_on if d in failed]
            if blocked:
                result = TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FAILED,
                                     error=f"dependency {blocked[0]} failed")
            else:
                result = execute_trial(spec, context.tracking_uri, context.experiment_id, context.parent_run_id)
            if result.state is TrialState.FAILED:
                failed.add(spec.trial_id)
            results.append(result)
            if on_result is not None:
                on_result(spec, result)
        return results
