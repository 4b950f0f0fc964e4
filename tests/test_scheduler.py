"""The scheduler alone (no Ray, no training): order, priority, packing trials of different sizes,
cycles, retries, failed dependencies and identical trial ids, as `ablate run`, `ablate tune` and
the benchmark see them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import pytest

from ablate.dispatch import (
    DependencyCycleError,
    InProcessDispatcher,
    NeedsWorkersError,
    Resources,
    RunContext,
    Scheduler,
    critical_path_costs,
    drive,
)
from ablate.errors import AblateError
from ablate.tracking.runs import trial_tags
from ablate.trial import TrialResult, TrialSpec, TrialState


def _spec(name: str, cost: float = 1.0, deps: tuple[str, ...] = (), trial_id: str = "", **tags: str) -> TrialSpec:
    tid = trial_id or name
    return TrialSpec(study="s", name=name, trial_id=tid, seed=0, base="b.py", config_text="", overrides={},
                     work_dir=Path("/nonexistent") / tid, data_root=Path("/data"), data_fingerprint="x", iters=1,
                     batch_size=1, image_size=(8, 8), depends_on=deps, cost=cost, tags=dict(tags))


def _play(scheduler: Scheduler, slots: int = 1,
          outcome: Callable[[TrialSpec, int], TrialState] = lambda s, a: TrialState.FINISHED
          ) -> tuple[list[tuple[str, int]], list[tuple[str, TrialResult]]]:
    """Start ready trials into free slots, end the oldest, until done: (starts, reports)."""
    starts: list[tuple[str, int]] = []
    reports: list[tuple[str, TrialResult]] = []
    flying: list[tuple[TrialSpec, int]] = []
    while not scheduler.done:
        for spec in scheduler.ready()[: slots - len(flying)]:
            attempt = scheduler.started(spec.trial_id)
            starts.append((spec.name, attempt))
            flying.append((spec, attempt))
        assert flying, "nothing ready and nothing running, yet not done"
        spec, attempt = flying.pop(0)
        state = outcome(spec, attempt)
        result = TrialResult(spec.trial_id, spec.name, spec.seed, state, metrics={"mIoU": 50.0},
                             run_id=f"run-{spec.trial_id}")
        action = scheduler.finished(spec.trial_id, result)
        reports += [(s.name, r) for s, r in action.reports]
    return starts, reports


def test_dependencies_first_then_critical_path_first() -> None:
    trials = [_spec("small", 1), _spec("big", 9), _spec("mid", 5), _spec("child", 7, ("small",))]
    starts, _ = _play(Scheduler(trials))
    # big (9) first; small (1) carries child (7): its chain of 8 outranks mid (5)
    assert [name for name, _ in starts] == ["big", "small", "child", "mid"]


def test_a_long_chain_starts_before_an_equally_long_loner() -> None:
    trials = [_spec("loner", 5), _spec("pretrain", 4), _spec("after", 4, ("pretrain",))]
    assert critical_path_costs(trials) == {"loner": 5, "pretrain": 8, "after": 4}
    starts, _ = _play(Scheduler(trials))
    assert [name for name, _ in starts] == ["pretrain", "loner", "after"]


def test_ties_keep_the_order_trials_were_given_in() -> None:
    starts, _ = _play(Scheduler([_spec(n, 0.0) for n in ("c", "a", "b")]), slots=2)
    assert [name for name, _ in starts] == ["c", "a", "b"]


def test_a_dependency_the_scheduler_does_not_know_counts_as_done() -> None:
    """A pretraining cached from an earlier run is not handed in; its dependents still start."""
    starts, reports = _play(Scheduler([_spec("after", 1, ("cached-pretrain",))]))
    assert starts == [("after", 1)] and reports[0][1].state is TrialState.FINISHED


@pytest.mark.parametrize("deps_of_a", [("b",), ("fine", "b")])  # the cycle through a second dependency too
def test_a_cycle_is_refused_and_named(deps_of_a: tuple[str, ...]) -> None:
    trials = [_spec("fine"), _spec("a", deps=deps_of_a), _spec("b", deps=("c",)), _spec("c", deps=("a",))]
    with pytest.raises(DependencyCycleError) as info:
        Scheduler(trials)
    assert isinstance(info.value, AblateError)  # the CLI prints it as one line, exit 2
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["a", "b", "c"]
    for waiting, needed in zip(cycle, cycle[1:]):  # each name waits for the next
        assert next(t for t in trials if t.name == waiting).depends_on[-1] == needed
    assert " -> ".join(cycle) in str(info.value) and "fine" not in str(info.value)


def test_a_failure_is_retried_then_final_and_its_dependents_fail_unrun() -> None:
    trials = [_spec("bad", 5), _spec("after-bad", 1, ("bad",)), _spec("after-after", 1, ("after-bad",)),
              _spec("fine", 3)]
    fails = lambda spec, attempt: TrialState.FAILED if spec.name == "bad" else TrialState.FINISHED  # noqa: E731
    scheduler = Scheduler(trials, retries=1)
    starts, reports = _play(scheduler, slots=2, outcome=fails)
    assert starts.count(("bad", 1)) == 1 and starts.count(("bad", 2)) == 1
    assert not [s for s in starts if s[0].startswith("after")]  # never started
    final = {r.name: r for r in scheduler.results()}
    assert final["bad"].state is TrialState.FAILED
    assert final["after-bad"].error == "dependency bad failed"
    assert final["after-after"].error == "dependency after-bad failed"
    assert final["fine"].state is TrialState.FINISHED
    assert sorted(name for name, _ in reports) == ["after-after", "after-bad", "bad", "fine"]  # each once


def test_retry_goes_back_to_the_ready_list() -> None:
    scheduler = Scheduler([_spec("flaky")], retries=2)
    assert scheduler.started("flaky") == 1
    action = scheduler.finished("flaky", TrialResult("flaky", "flaky", 0, TrialState.FAILED, error="oom"))
    assert action.retry and not action.reports
    assert [s.name for s in scheduler.ready()] == ["flaky"] and scheduler.waiting == 1
    assert scheduler.started("flaky") == 2
    action = scheduler.finished("flaky", TrialResult("flaky", "flaky", 0, TrialState.FINISHED))
    assert not action.retry and [s.name for s, _ in action.reports] == ["flaky"] and scheduler.done


def test_a_pruned_trial_is_final_and_not_retried() -> None:
    scheduler = Scheduler([_spec("p")], retries=3)
    scheduler.started("p")
    action = scheduler.finished("p", TrialResult("p", "p", 0, TrialState.PRUNED))
    assert not action.retry and scheduler.done


def test_identical_trial_ids_train_once_for_every_name() -> None:
    """A pretraining entry identical to the ladder's base: one training, both names served."""
    trials = [dataclasses.replace(_spec("pretrain-same", 4, trial_id="x1", **{"ablate.shape": "pretrain"}), pretrain="same"),
              _spec("r0-base", 4, trial_id="x1", **{"ablate.rung": "0", "ablate.shape": "ladder"}),
              _spec("r1-transfer", 4, ("x1",), trial_id="x2")]
    scheduler = Scheduler(trials)
    (runner,) = scheduler.ready()
    assert runner.name == "r0-base"  # the name that is not a pretraining trains
    assert runner.pretrain == "same" and runner.aliases == ("pretrain-same",) and runner.tags["ablate.rung"] == "0"
    tags = trial_tags(runner, None)  # what its run records
    assert tags["ablate.shape"] == "ladder" and tags["ablate.aliases"] == "pretrain-same" and tags["ablate.pretrain"] == "same"
    starts, reports = _play(scheduler, slots=4)
    assert starts == [("r0-base", 1), ("r1-transfer", 1)]
    results = {r.name: r for r in scheduler.results()}
    assert list(results) == ["pretrain-same", "r0-base", "r1-transfer"]
    assert results["pretrain-same"].run_id == results["r0-base"].run_id == "run-x1"
    assert results["pretrain-same"].trial_id == "x1" and results["pretrain-same"].state is TrialState.FINISHED
    assert sorted(name for name, _ in reports) == ["pretrain-same", "r0-base", "r1-transfer"]


def test_a_name_added_for_a_finished_or_running_id_is_served_its_result() -> None:
    """What a search needs: two asks with the same parameters train once."""
    scheduler = Scheduler()
    scheduler.add([_spec("optuna-0", trial_id="p")])
    scheduler.started("p")
    assert scheduler.add([_spec("optuna-1", trial_id="p")]) == []  # same id, in flight: joins it
    assert scheduler.ready() == [] and scheduler.running == ("p",)
    action = scheduler.finished("p", TrialResult("p", "optuna-0", 0, TrialState.PRUNED, run_id="r"))
    assert [(s.name, r.name, r.state) for s, r in action.reports] == [
        ("optuna-0", "optuna-0", TrialState.PRUNED), ("optuna-1", "optuna-1", TrialState.PRUNED)]
    (late,) = scheduler.add([_spec("optuna-2", trial_id="p")])  # already final: answered at once
    assert late[1].name == "optuna-2" and late[1].run_id == "r" and scheduler.done


def test_adding_a_dependent_of_a_failed_trial_fails_it_at_once() -> None:
    scheduler = Scheduler([_spec("bad")])
    scheduler.started("bad")
    scheduler.finished("bad", TrialResult("bad", "bad", 0, TrialState.FAILED))
    ((spec, result),) = scheduler.add([_spec("later", deps=("bad",))])
    assert spec.name == "later" and result.error == "dependency bad failed" and scheduler.done


def test_misuse_is_an_error_not_a_silent_state_change() -> None:
    scheduler = Scheduler([_spec("a"), _spec("b", deps=("a",))])
    with pytest.raises(ValueError):
        scheduler.started("b")  # waits for a
    with pytest.raises(ValueError):
        scheduler.finished("a", TrialResult("a", "a", 0, TrialState.FINISHED))  # never started


# -- packing trials of different sizes -----------------------------------------------------------

def _wide(name: str, workers: int, cost: float = 1.0, sleep: float = 1.0) -> TrialSpec:
    return dataclasses.replace(_spec(name, cost), workers=workers, params={"sleep_s": sleep})


def _gpus(spec: TrialSpec) -> Resources:
    return Resources(gpus=float(spec.workers), cpus=float(spec.workers))


def _pack(scheduler: Scheduler, total: Resources, demand=_gpus) -> list[tuple[float, float, str]]:
    """Start picks into what is free, end the earliest-ending trial, on a clock: (start, end, name)."""
    now, held, spans = 0.0, Resources(), []
    running: list[tuple[float, TrialSpec]] = []
    while not scheduler.done:
        for spec in scheduler.pick(total - held, demand):
            scheduler.started(spec.trial_id)
            held = held + demand(spec)
            running.append((now + spec.params["sleep_s"], spec))
            spans.append((now, now + spec.params["sleep_s"], spec.name))
        assert running, "nothing fits and nothing runs"
        running.sort(key=lambda item: item[0])
        now, spec = running.pop(0)
        held = held - demand(spec)
        scheduler.finished(spec.trial_id, TrialResult(spec.trial_id, spec.name, 0, TrialState.FINISHED))
    return spans


def test_wider_trials_start_first_then_the_critical_path() -> None:
    trials = [_wide("one-long", 1, 9), _wide("two", 2, 1), _wide("four", 4, 1), _wide("one-short", 1, 2)]
    assert [s.name for s in Scheduler(trials).ready()] == ["four", "two", "one-long", "one-short"]
    assert [s.name for s in Scheduler(trials, priority=critical_path_costs).ready()][0] == "one-long"


def test_a_waiting_wide_trial_gets_its_gpus_before_smaller_trials_behind_it() -> None:
    """A 1-GPU trial of higher priority runs; the 4-GPU trial behind it waits for all four GPUs,
    and the lower-priority 1-GPU trials may not take the three that are free meanwhile."""
    trials = [_wide("first", 1, 9, sleep=2.0), _wide("big", 4, 5, sleep=1.0)]
    trials += [_wide(f"small{i}", 1, 1, sleep=0.5) for i in range(3)]
    spans = _pack(Scheduler(trials, priority=critical_path_costs), Resources(4, 4))
    start = {name: begin for begin, _, name in spans}
    assert [name for _, _, name in sorted(spans)] == ["first", "big", "small0", "small1", "small2"]
    assert start["big"] == 2.0  # as soon as "first" ended
    big = next((b, e) for b, e, n in spans if n == "big")
    assert not [n for b, e, n in spans if n != "big" and b < big[1] and e > big[0]]  # it shared no GPU


def test_smaller_trials_still_fill_what_the_waiting_trial_does_not_need() -> None:
    """The head waits for GPUs; a CPU-only trial behind it starts at once, a GPU one does not."""
    trials = [_wide("first", 1, 9, sleep=2.0), _wide("big", 4, 5), _wide("gpu-small", 1, 2), _wide("cpu-small", 1, 1)]
    demand = {"first": Resources(1, 1), "big": Resources(4, 4), "gpu-small": Resources(1, 1), "cpu-small": Resources(0, 1)}
    scheduler = Scheduler(trials, priority=critical_path_costs)
    picked = scheduler.pick(Resources(4, 8), lambda spec: demand[spec.name])
    assert [s.name for s in picked] == ["first", "cpu-small"]
    assert [s.name for s in scheduler.pick(Resources(4, 8), lambda spec: demand[spec.name], room=1)] == ["first"]


def test_a_kind_a_trial_does_not_ask_for_never_stands_in_its_way() -> None:
    assert Resources(0, 1).fits(Resources(-3, 1)) and not Resources(1, 1).fits(Resources(-3, 8))
    assert Resources(1, 2).times_in(Resources(4, 5)) == 2 and Resources().times_in(Resources(4, 4)) is None


def test_mixed_sizes_all_run_within_the_gpus_the_wide_ones_first() -> None:
    trials = [_wide(f"one{i}", 1, 1, sleep=1.0 + i % 3) for i in range(6)]
    trials += [_wide("four-a", 4, 1, sleep=2.0), _wide("two-a", 2, 1, sleep=1.5), _wide("four-b", 4, 1, sleep=1.0)]
    spans = _pack(Scheduler(trials), Resources(4, 4))
    assert sorted(n for _, _, n in spans) == sorted(t.name for t in trials)  # all ran, once
    for begin, end, name in spans:  # the GPUs in use never exceed the four
        at = [w for b, e, n in spans for w in [int(n.startswith("four")) * 3 + int(n.startswith("two")) + 1]
              if b <= begin < e]
        assert sum(at) <= 4, (name, begin)
    start = {name: begin for begin, _, name in spans}
    assert (start["four-a"], start["four-b"], start["two-a"]) == (0.0, 2.0, 3.0)  # wide ones while it is empty


def test_a_ddp_trial_is_refused_in_process_before_anything_runs() -> None:
    ran: list[str] = []

    def trainable(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
        ran.append(spec.name)
        return TrialResult(spec.trial_id, spec.name, 0, TrialState.FINISHED)

    with pytest.raises(NeedsWorkersError, match="trial ddp trains as 2 DDP workers.*--dispatcher ray"):
        drive([_wide("fine", 1), _wide("ddp", 2)], InProcessDispatcher(trainable), RunContext("sqlite:///unused", "0"))
    assert ran == [] and issubclass(NeedsWorkersError, AblateError)
