"""The one loop that runs a scheduler against a dispatcher: `ablate run` and `ablate tune` use it.

What the dispatcher has free is filled with the scheduler's picks (`Scheduler.pick`: priority
order, a reservation for a waiting multi-GPU trial), ended attempts go back to the scheduler,
and whatever it reports as final goes to `on_result`. A search adds trials as it goes through
`feed`; a study hands them all in at once. On an interrupt or any other exception the trials in
flight are cancelled through the dispatcher before it is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ablate.dispatch.protocol import Capacity, Dispatcher, EventSink, Resources, RunContext, StartSink
from ablate.dispatch.scheduler import Priority, Report, Scheduler, widest_first
from ablate.errors import AblateError
from ablate.trial.spec import TrialResult, TrialSpec

Feed = Callable[[int], Sequence[TrialSpec]]


class CapacityError(AblateError):
    """A trial needs more than the whole pool has: it could never start."""


def _check_fits(specs: Iterable[TrialSpec], dispatcher: Dispatcher, capacity: Capacity) -> None:
    for spec in specs:
        need = dispatcher.demand(spec)
        if not need.fits(capacity.total):
            raise CapacityError(
                f"trial {spec.name} needs {need} ({spec.workers} worker{'s' if spec.workers != 1 else ''}), but the "
                f"dispatcher has {capacity.total} in all; lower resources.gpus_per_trial / workers_per_trial / "
                "cpus_per_trial, or run on a larger Ray cluster (--address)"
            )


def drive(
    trials: Iterable[TrialSpec],
    dispatcher: Dispatcher,
    context: RunContext,
    *,
    retries: int = 0,
    on_start: StartSink | None = None,
    on_result: EventSink | None = None,
    feed: Feed | None = None,
    poll_s: float = 1.0,
    priority: Priority = widest_first,
) -> list[TrialResult]:
    """Run `trials` (and whatever `feed(free_slots)` returns, until it returns nothing) to their
    final results, one per name, in the order they were handed in.

    A failed attempt is retried `retries` times; a trial's failure is a FAILED result, never an
    exception. The dispatcher is opened only when there is something to run, and always closed.
    """
    trials = list(trials)
    scheduler = Scheduler(trials, retries=retries, priority=priority)

    def report(reports: Iterable[Report]) -> None:
        if on_result is not None:
            for spec, result in reports:
                on_result(spec, result)

    feeding = feed is not None
    if scheduler.done and not feeding:
        return scheduler.results()
    capacity = dispatcher.open()
    holding: dict[str, Resources] = {}  # what each running trial holds
    fed: Resources | None = None  # the demand of the last trial a search handed in
    try:
        _check_fits(trials, dispatcher, capacity)
        while True:
            free = capacity.total
            for held in holding.values():
                free = free - held
            room = None if capacity.trials is None else capacity.trials - len(scheduler.running)
            if feed is not None and feeding and scheduler.waiting == 0 and (room is None or room > 0):
                # as many more as fit, judged by the last one fed (a search's trials are all alike)
                limits = [n for n in (None if fed is None else fed.times_in(free), room) if n is not None]
                wanted = min(limits) if limits else 1
                if wanted > 0:  # with nothing running it always is: every trial fed fits the whole pool
                    new = feed(wanted)
                    feeding = bool(new)
                    _check_fits(new, dispatcher, capacity)
                    fed = dispatcher.demand(new[-1]) if new else fed
                    report(scheduler.add(new))
            for spec in scheduler.pick(free, dispatcher.demand, room):
                attempt = scheduler.started(spec.trial_id)
                holding[spec.trial_id] = dispatcher.demand(spec)
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
                holding.pop(completion.spec.trial_id, None)
                report(scheduler.finished(completion.spec.trial_id, completion.result).reports)
    except BaseException:
        for trial_id in scheduler.running:
            dispatcher.cancel(trial_id)
        raise
    finally:
        dispatcher.close()
    return scheduler.results()
