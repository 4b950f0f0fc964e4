"""Run a study: plan, skip what MLflow already holds as finished, schedule and dispatch the rest.

With `seeds: {auto: ...}` this repeats in rounds under one parent run: the first round plans the
first `min` seeds, each later round one more seed (every trial of earlier rounds is reused by its
trial id, so only the new seed trains) until the rule of `ablate.study.seed_rounds` stops it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.dispatch import Dispatcher, EventSink, InProcessDispatcher, RunContext, StartSink, drive
from ablate.study.plan import plan_trials
from ablate.study.study import Study
from ablate.tracking import RunStore
from ablate.trial.spec import TrialResult, TrialSpec, TrialState

ROUNDS_FILE = "seed_rounds.json"
RoundSink = Callable[[Any], None]  # receives each `ablate.study.seed_rounds.SeedRound`


@dataclass
class StudyOutcome:
    study: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    results: list[TrialResult] = field(default_factory=list)
    rounds: list[Any] = field(default_factory=list)  # SeedRound per round of `seeds: auto`

    @property
    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.state is TrialState.FAILED]


def cached_result(store: RunStore, experiment_id: str, spec: TrialSpec) -> TrialResult | None:
    """The complete run of this trial id, as a CACHED result (None: it must train)."""
    record = store.complete_run(experiment_id, spec.trial_id)
    if record is None:
        return None
    read = bool(spec.pretrain) or spec.provides
    if read and not (spec.best_checkpoint.exists() or record.stored_checkpoint):
        return None  # later trials need its checkpoint, neither here nor in the store: train it again
    return TrialResult(
        spec.trial_id,
        spec.name,
        spec.seed,
        TrialState.CACHED,
        metrics=dict(record.metrics),
        run_id=record.run_id,
        duration_s=record.duration_s or 0.0,
    )


def cached_results(study_name: str, trials: list[TrialSpec], tracking_uri: str) -> dict[str, TrialResult]:
    """Trials that already finished, without creating anything in the store."""
    from ablate import tracking

    if not tracking.store_exists(tracking_uri):
        return {}
    store = RunStore.open(tracking_uri)
    experiment_id = store.find_experiment(study_name)
    if experiment_id is None:
        return {}
    hits = {}
    for spec in trials:
        hit = cached_result(store, experiment_id, spec)
        if hit is not None:
            hits[spec.trial_id] = hit
    return hits


def with_launch_estimates(
    trials: list[TrialSpec], train: set[str], tracking_uri: str, gpus_per_trial: float
) -> list[TrialSpec]:
    """`trials`, those about to train carrying their estimated wall time on this machine's kind
    of device (`ablate.study.estimate`: the store, else a cached probe, else FLOPs), which their
    runs record when opened. Nothing is estimated (nor torch loaded) when nothing trains."""
    if not train:
        return trials
    from ablate.analysis.speed import this_device
    from ablate.study.estimate import Estimator

    estimator = Estimator(tracking_uri, this_device(), gpus_per_trial)
    return [dataclasses.replace(s, estimate=estimator.estimate(s).launch) if s.trial_id in train else s for s in trials]


class _Launch:
    """One `ablate run`: its parent run, and every trial result reported so far (over rounds)."""

    def __init__(
        self,
        study: Study,
        tracking_uri: str,
        outcome: StudyOutcome,
        store: RunStore,
        rerun: bool,
        dispatcher: Dispatcher,
        on_start: StartSink | None,
        on_result: EventSink | None,
        on_planned: Callable[[list[TrialSpec]], None] | None,
    ) -> None:
        self.study = study
        self.tracking_uri = tracking_uri
        self.on_planned = on_planned
        self.outcome = outcome
        self.store = store
        self.rerun = rerun
        self.dispatcher = dispatcher
        self.on_start = on_start
        self.on_result = on_result
        self.context = RunContext(tracking_uri, outcome.experiment_id, outcome.parent_run_id)
        self.reported: set[tuple[str, str]] = set()  # (trial id, name) already in the outcome
        self.pending: list[TrialSpec] = []
        self.ended: set[str] = set()
        self.planned = 0  # trials (names) of the latest plan

    def _report(self, spec: TrialSpec, result: TrialResult) -> None:
        self.ended.add(result.trial_id)
        self.reported.add((spec.trial_id, spec.name))
        if self.on_result is not None:
            self.on_result(spec, result)

    def train(self, trials: list[TrialSpec]) -> tuple[int, int]:
        """Train what `trials` holds that neither finished in the store nor ran in an earlier
        round; (trial ids trained, trial ids cached)."""
        self.planned = len(trials)
        trials = [s for s in trials if (s.trial_id, s.name) not in self.reported]
        experiment_id = self.outcome.experiment_id
        read = {d for spec in trials for d in spec.depends_on}  # trials whose checkpoints others load
        # stored for other machines
        trials = [dataclasses.replace(s, provides=True) if s.trial_id in read else s for s in trials]
        hits: dict[int, TrialResult] = {}
        for index, spec in enumerate(trials):
            hit = None if self.rerun else cached_result(self.store, experiment_id, spec)
            if hit is not None:
                hits[index] = hit
        must_train = {s.trial_id for i, s in enumerate(trials) if i not in hits}  # then under every name
        gpus = self.study.spec.resources.gpus_per_trial
        trials = with_launch_estimates(trials, must_train, self.tracking_uri, gpus)
        if self.on_planned is not None:
            self.on_planned(trials)
        self.pending = [s for s in trials if s.trial_id in must_train]
        cached = set()
        for index, spec in enumerate(trials):
            if spec.trial_id not in must_train:
                cached.add(spec.trial_id)
                self.outcome.results.append(hits[index])
                self._report(spec, hits[index])
        self.outcome.results.extend(
            drive(
                self.pending,
                self.dispatcher,
                self.context,
                retries=self.study.spec.resources.retries,
                on_start=self.on_start,
                on_result=self._report,
            )
        )
        return len(must_train), len(cached)

    def interrupted(self) -> None:
        unfinished = [s.trial_id for s in self.pending if s.trial_id not in self.ended]
        self.store.mark_interrupted(self.outcome.experiment_id, unfinished)


def _round(launch: _Launch, trials: list[TrialSpec], number: int, seeds: list[int], counts: tuple[int, int]) -> Any:
    """Measure the intervals of the round's deltas from what the store holds for its trials."""
    from ablate.study.seed_rounds import SeedRound, decide, delta_widths
    from ablate.tracking.records import deduplicate

    rule = launch.study.spec.auto_seeds
    assert rule is not None
    ids = {s.trial_id for s in trials}
    runs, _ = launch.store.read_experiment(launch.outcome.experiment_id, launch.study.name)
    records, _ = deduplicate(r for r in runs if r.trial_id in ids and r.finished)
    widths = delta_widths(records)
    failed = any(r.state is TrialState.FAILED for r in launch.outcome.results)
    stop = decide(widths, rule, len(seeds), failed)
    return SeedRound(number, tuple(seeds), counts[0], counts[1], widths, rule.ci_width, stop)


def _log_rounds(launch: _Launch, runs_dir: Path | str) -> None:
    """The rounds on the parent run: tags for the count, the seeds and the reason to stop, and
    every round's widths as `seed_rounds.json` (also kept in the study's runs folder)."""
    from ablate import tracking

    rounds = launch.outcome.rounds
    if not rounds:
        return
    T = tracking.tags
    last = rounds[-1]
    path = Path(runs_dir).resolve() / launch.study.name / ROUNDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_dict() for r in rounds], indent=1))
    launch.store.log_tags(
        launch.outcome.parent_run_id,
        {T.SEED_ROUNDS: str(len(rounds)), T.SEEDS_RUN: ",".join(str(s) for s in last.seeds), T.SEED_STOP: last.stop},
    )
    launch.store.log_files(launch.outcome.parent_run_id, [path])


def run_study(
    study: Study,
    tracking_uri: str,
    *,
    runs_dir: Path | str = "runs",
    rerun: bool = False,
    dispatcher: Dispatcher | None = None,
    on_start: StartSink | None = None,
    on_result: EventSink | None = None,
    on_planned: Callable[[list[TrialSpec]], None] | None = None,
    on_round: RoundSink | None = None,
) -> StudyOutcome:
    """Train every pending trial of `study`; finished ones (same trial id) are reported as cached.

    `dispatcher` defaults to training in this process; failed trials are retried
    `resources.retries` times, and names sharing a trial id train once. `on_planned` hears of the
    trials (those to train carrying their launch estimate) once the store says which are cached;
    with `seeds: auto`, of each round's trials, and `on_round` of every round (`SeedRound`).
    """
    from ablate import tracking

    rule = study.spec.auto_seeds
    seeds = study.spec.seed_list
    trials = plan_trials(study, runs_dir, seeds=seeds)
    store = RunStore.open(tracking_uri)
    store.prepare()
    experiment_id = store.ensure_experiment(study.name)
    parent_run_id = store.start_parent_run(
        experiment_id,
        tracking.tags.Kind.STUDY,
        study.name,
        {tracking.tags.PROFILE: study.profile or "", tracking.tags.STUDY_FILE: str(study.source)},
    )
    outcome = StudyOutcome(study.name, experiment_id, parent_run_id, tracking_uri)
    launch = _Launch(
        study, tracking_uri, outcome, store, rerun, dispatcher or InProcessDispatcher(), on_start, on_result, on_planned
    )
    status = "FAILED"
    try:
        while True:
            counts = launch.train(trials)
            if rule is None:
                break
            found = _round(launch, trials, len(outcome.rounds) + 1, seeds, counts)
            outcome.rounds.append(found)
            if on_round is not None:
                on_round(found)
            if found.stop:
                break
            seeds = rule.first(len(seeds) + 1)
            trials = plan_trials(study, runs_dir, seeds=seeds)
        status = "FAILED" if outcome.failed else "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        launch.interrupted()
        raise
    finally:
        _log_rounds(launch, runs_dir)
        store.log_params(parent_run_id, {"n_trials": launch.planned})
        store.end_run(parent_run_id, status)
    return outcome
