"""The one loop that runs a scheduler against a dispatcher: `ablate run` and `ablate tune` use it.

Slots are filled with the scheduler's ready trials, ended attempts go back to the scheduler, and
whatever it reports as final goes to `on_result`. A search adds trials as it goes through
`feed`; a study hands them all in at once. On an interrupt or any other exception the trials in
flight are cancelled through the dispatcher before it is closed.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence

from ablate.dispatch.protocol import Dispatcher, EventSink, RunContext, StartSink
from ablate.dispatch.scheduler import Priority, Report, Scheduler, critical_path_costs
from ablate.trial.spec import TrialResult, TrialSpec

Feed = Callable[[int], Sequence[TrialSpec]]


def drive(
    trials: Iterable[TrialSpec],
    dispatcher: Dispatcher,
    context: RunContext,
    *,
    retries: int = 0,
    on_start: Optional[StartSink] = None,
    on_result: Optional[EventSink] = None,
    feed: Optional[Feed] = None,
    poll_s: float = 1.0,
    priority: Priority = critical_path_costs,
) -> list[TrialResult]:
    """Run `trials` (and whatever `feed(free_slots)` returns, until it returns nothing) to their
    final results, one per name, in the order they were handed in.

    A failed attempt is retried `retries` times; a trial's failure is a FAILED result, never an
    exception. The dispatcher is opened only when there is something to run, and always closed.
    """
    scheduler = Scheduler(trials, retries=retries, priority=priority)

    def report(reports: Iterable[Report]) -> None:
        if on_result is not None:
            for spec, result in reports:
                on_result(spec, result)

    feeding = feed is not None
    if scheduler.done and not feeding:
        return scheduler.results()
    slots = max(1, dispatcher.open())
    try:
        while True:
            free = slots - len(scheduler.running) - scheduler.waiting
            if feed is not None and feeding and free > 0:
                new = feed(free)
                feeding = bool(new)
                report(scheduler.add(new))
            for spec in scheduler.ready()[: slots - len(scheduler.running)]:
                attempt = scheduler.started(spec.trial_id)
                if on_start is not None:
                    on_start(spec, attempt)
                dispatcher.submit(spec, context, attempt)
            if not scheduler.running:
                if feeding:
                    continue  # what was fed is already answered: ask for more
                if not scheduler.done:  # cycles are refused on add, so this is a bug
                    raise RuntimeError("trials remain but none can start")
                break
            for completion in dispatcher.poll(poll_s):
                report(scheduler.finished(completion.spec.trial_id, completion.result).reports)
    except BaseException:
        for trial_id in scheduler.running:
            dispatcher.cancel(trial_id)
        raise
    finally:
        dispatcher.close()
    return scheduler.results()
