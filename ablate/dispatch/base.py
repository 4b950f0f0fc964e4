"""The dispatcher seam: something that takes trial specs and gives back results.

The study driver depends only on this interface; how trials are placed on devices (in-process,
Ray across GPUs) is the implementation's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from ablate.trial.spec import TrialResult, TrialSpec

EventSink = Callable[[TrialSpec, TrialResult], None]


@dataclass(frozen=True)
class RunContext:
    """Where trials report: the tracking store, the study's experiment and the parent run."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: Optional[str] = None


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
        for spec in trials:
            result = execute_trial(spec, context.tracking_uri, context.experiment_id, context.parent_run_id)
            results.append(result)
            if on_result is not None:
                on_result(spec, result)
        return results
