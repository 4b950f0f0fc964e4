"""Which trial runs next, and what a trial's end means for the others.

Dependency order, critical-path priority, packing trials of different sizes, retries,
"dependents of a failed trial fail unrun" and "identical trial ids train once" live here and
nowhere else. The class is pure bookkeeping (no Ray, no MLflow, no clock): `drive` runs it against
a real dispatcher for `ablate run` and `ablate tune`, and the packing benchmark runs it against a
simulated clock.

Packing trials of different sizes (`Scheduler.pick`, a 4-GPU DDP trial among 1-GPU ones):
* Ready trials are ordered widest first (most workers), then by critical path (`widest_first`,
  the default priority). A wide trial needs the machine nearly empty, which it is at the start;
  started later, the GPUs it waits for idle while the small trials holding the rest drain. (The
  packing benchmark measures this order against critical path alone on mixed sizes.)
* First fit in that order, with one reservation: the first ready trial that does not fit what is
  free is the head of the queue, and trials behind it may only start into what would still be
  free had the head started. So the GPUs the head waits for are never handed to smaller trials,
  which would delay it (and could starve it forever); smaller trials still fill resources the
  head does not need. Trial durations are not known here, so a smaller trial that would have
  ended in time is not let in either: the rule never guesses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter
from typing import Any, cast

from ablate.dispatch.protocol import Resources
from ablate.errors import AblateError
from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.util.graph import Cycle, prepared

Report = tuple[TrialSpec, TrialResult]
# trial id -> a value ordering ready trials, highest first (floats, or tuples compared in order)
Priority = Callable[[Sequence[TrialSpec]], Mapping[str, Any]]


class DependencyCycleError(AblateError):
    """Trials wait on each other in a circle, so none of them can ever start."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(
            "circular dependency between trials: "
            + " -> ".join(self.cycle)
            + " (each waits for the next's checkpoint); remove one of these transfers"
        )


@dataclass(frozen=True)
class Action:
    """What a trial's end means: run it again, or its final results (one per name that refers to
    it, then those of dependents that now fail unrun)."""

    retry: bool
    attempt: int
    reports: tuple[Report, ...] = ()


def critical_path_costs(trials: Sequence[TrialSpec]) -> dict[str, float]:
    """Each trial's cost plus the costliest chain of trials waiting on it.

    Sorting ready trials by this is longest-first for independent trials, and starts a
    pretraining whose dependents are long before an equally long trial nobody waits for.
    """
    costs = {t.trial_id: t.cost for t in trials}
    children: dict[str, list[str]] = {tid: [] for tid in costs}
    graph: dict[str, set[str]] = {tid: set() for tid in costs}
    for trial in trials:
        for dep in trial.depends_on:
            if dep in costs and dep != trial.trial_id:
                graph[trial.trial_id].add(dep)
                children[dep].append(trial.trial_id)
    sorter = _sorter(graph, {t.trial_id: t.name for t in trials})
    order: list[str] = []  # dependencies before dependents
    while sorter.is_active():
        batch = sorter.get_ready()
        order.extend(batch)
        sorter.done(*batch)
    chain: dict[str, float] = {}
    for tid in reversed(order):
        chain[tid] = costs[tid] + max((chain[c] for c in children[tid]), default=0.0)
    return chain


def widest_first(trials: Sequence[TrialSpec]) -> dict[str, tuple[int, float]]:
    """The default order: more workers first, then `critical_path_costs` (see the module docstring)."""
    chain = critical_path_costs(trials)
    return {t.trial_id: (t.workers, chain[t.trial_id]) for t in trials}


def _sorter(graph: Mapping[str, Iterable[str]], names: Mapping[str, str]) -> TopologicalSorter:
    """A prepared sorter; a cycle is named by trial names, in the order they wait on each other."""
    try:
        return prepared(graph)
    except Cycle as cycle:
        trial_ids = cast("list[str]", cycle.nodes)  # the nodes of `graph`
        raise DependencyCycleError([names.get(n, n) for n in trial_ids]) from None


def _renamed(result: TrialResult, spec: TrialSpec) -> TrialResult:
    if result.name == spec.name and result.seed == spec.seed:
        return result
    return dataclasses.replace(result, name=spec.name, seed=spec.seed)


class Scheduler:
    """The trial graph of one `ablate run` or `ablate tune`.

    `ready()` gives the trials that may start now, highest critical path first; `started()`
    records an attempt; `finished()` says whether to retry it and which final results to report.
    Specs sharing a trial id are one trial: it trains once (as the spec that is not a
    pretraining, which absorbs the others' tags and roles, their names as its aliases) and its
    result is handed to every name. A dependency the scheduler does not know (a trial finished in an earlier run) is
    taken as satisfied. `priority` is the ordering rule among ready trials (the packing
    benchmark compares others with the default, `widest_first`).
    """

    def __init__(self, trials: Iterable[TrialSpec] = (), retries: int = 0, priority: Priority = widest_first) -> None:
        self.retries = retries
        self.priority = priority
        self._names: list[TrialSpec] = []  # every spec handed in, in order (one per name)
        self._groups: dict[str, list[TrialSpec]] = {}  # trial id -> its specs, in order
        self._runner: dict[str, TrialSpec] = {}  # trial id -> the spec that trains
        self._index: dict[str, int] = {}  # trial id -> position of its first spec (ties)
        self._final: dict[str, TrialResult] = {}
        self._attempts: dict[str, int] = {}
        self._running: set[str] = set()
        self._pool: set[str] = set()  # released by the sorter, not running, not final
        self._priority: Mapping[str, float] = {}
        self._sorter: TopologicalSorter = TopologicalSorter()
        self._sorter.prepare()
        self.add(trials)  # nothing is final yet, so nothing to report

    # -- the graph ---------------------------------------------------------------------------
    def add(self, trials: Iterable[TrialSpec]) -> list[Report]:
        """Add trials (all at once for a study, a few at a time for a search).

        Returns results that are already final: a name for a trial id that already ended, and
        trials whose dependency already failed.
        """
        reports: list[Report] = []
        fresh: list[str] = []
        for spec in trials:
            tid = spec.trial_id
            self._names.append(spec)
            if tid in self._final:
                reports.append((spec, _renamed(self._final[tid], spec)))
                continue
            group = self._groups.setdefault(tid, [])
            group.append(spec)
            self._index.setdefault(tid, len(self._index))
            if tid not in self._attempts:  # its tags can still change: nothing was started
                self._runner[tid] = self._merged(group)
            if len(group) == 1:
                fresh.append(tid)
        self._rebuild()
        for tid in fresh:
            broken = [d for d in self._runner[tid].depends_on if d in self._final and not self._final[d].state.is_done]
            if broken and tid not in self._final:
                reports += self._fail_unrun(tid, broken[0])
        return reports

    @staticmethod
    def _merged(group: list[TrialSpec]) -> TrialSpec:
        """The spec that trains for a trial id several names refer to."""
        runner = next((s for s in group if not s.pretrain), group[0])
        return runner.absorbing(group)

    def _rebuild(self) -> None:
        """A fresh sorter over the trials not yet final (graphlib sorters cannot grow)."""
        names = {tid: spec.name for tid, spec in self._runner.items()}
        graph = {
            tid: {d for d in spec.depends_on if d in self._runner and d != tid and d not in self._final}
            for tid, spec in self._runner.items()
            if tid not in self._final
        }
        self._sorter = _sorter(graph, names)
        self._priority = self.priority(list(self._runner.values()))
        self._release()

    def _release(self) -> None:
        for tid in self._sorter.get_ready():  # running ones come back after a rebuild: not again
            if tid not in self._running and tid not in self._final:
                self._pool.add(tid)

    # -- queries -----------------------------------------------------------------------------
    def ready(self) -> list[TrialSpec]:
        """Trials that may start now, highest priority first (by default the widest, then the
        highest critical path), ties in the order added."""
        order = sorted(self._pool, key=lambda t: (self._priority[t], -self._index[t]), reverse=True)
        return [self._runner[t] for t in order]

    def pick(
        self, free: Resources, demand: Callable[[TrialSpec], Resources], room: int | None = None
    ) -> list[TrialSpec]:
        """Ready trials to start now into `free` (at most `room` of them), in priority order.

        Each trial that fits starts; the first that does not is the head of the queue and claims
        what it needs from `free`, so the trials behind it start only into what is left beyond
        its claim (see the module docstring). Nothing is recorded: call `started` for each.
        """
        chosen: list[TrialSpec] = []
        waiting_head = False
        for spec in self.ready():
            if room is not None and len(chosen) >= room:
                break
            need = demand(spec)
            if need.fits(free):
                chosen.append(spec)
                free = free - need
            elif not waiting_head:  # the head: what is free now is promised to it first
                waiting_head = True
                free = free - need
        return chosen

    @property
    def running(self) -> tuple[str, ...]:
        """Trial ids with an attempt in flight."""
        return tuple(sorted(self._running, key=self._index.__getitem__))

    @property
    def waiting(self) -> int:
        """Trials neither running nor final: ready, due for a retry, or waiting on a dependency."""
        return sum(1 for t in self._runner if t not in self._final and t not in self._running)

    @property
    def done(self) -> bool:
        return all(t in self._final for t in self._runner)

    def results(self) -> list[TrialResult]:
        """Final results, one per name, in the order the names were added."""
        return [_renamed(self._final[s.trial_id], s) for s in self._names if s.trial_id in self._final]

    # -- events ------------------------------------------------------------------------------
    def started(self, trial_id: str) -> int:
        """Record that a trial was submitted; returns its attempt number (from 1)."""
        if trial_id not in self._pool:
            raise ValueError(f"trial {trial_id} is not ready to start")
        self._pool.discard(trial_id)
        self._running.add(trial_id)
        self._attempts[trial_id] = self._attempts.get(trial_id, 0) + 1
        return self._attempts[trial_id]

    def finished(self, trial_id: str, result: TrialResult) -> Action:
        """An attempt ended: retry a failure while `retries` allow, else make the result final."""
        if trial_id not in self._running:
            raise ValueError(f"trial {trial_id} is not running")
        self._running.discard(trial_id)
        attempt = self._attempts[trial_id]
        if result.state is TrialState.FAILED and attempt <= self.retries:
            self._pool.add(trial_id)  # resumes from its checkpoint, in the same run
            return Action(retry=True, attempt=attempt)
        reports = self._finalize(trial_id, result)
        if result.state.is_done:
            self._sorter.done(trial_id)
            self._release()
        else:
            for child in self._dependents(trial_id):
                reports += self._fail_unrun(child, trial_id)
        return Action(retry=False, attempt=attempt, reports=tuple(reports))

    def _finalize(self, trial_id: str, result: TrialResult) -> list[Report]:
        self._final[trial_id] = result
        self._pool.discard(trial_id)
        return [(s, _renamed(result, s)) for s in self._groups[trial_id]]

    def _dependents(self, trial_id: str) -> list[str]:
        return [t for t, s in self._runner.items() if trial_id in s.depends_on and t not in self._final]

    def _fail_unrun(self, trial_id: str, failed_dep: str) -> list[Report]:
        """`trial_id` and, transitively, its dependents: FAILED without running."""
        reports: list[Report] = []
        todo = [(trial_id, failed_dep)]
        while todo:
            tid, dep = todo.pop(0)
            if tid in self._final:  # reached through two failed paths
                continue
            spec = self._runner[tid]
            named = self._runner[dep].name if dep in self._runner else dep
            result = TrialResult(tid, spec.name, spec.seed, TrialState.FAILED, error=f"dependency {named} failed")
            reports += self._finalize(tid, result)
            todo += [(child, tid) for child in self._dependents(tid)]
        return reports
