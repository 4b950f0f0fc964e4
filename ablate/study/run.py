"""Run a study: plan, skip what MLflow already holds as finished, schedule and dispatch the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ablate.dispatch import Dispatcher, EventSink, InProcessDispatcher, RunContext, StartSink, drive
from ablate.study.loader import Study
from ablate.study.plan import plan_trials
from ablate.trial.spec import TrialResult, TrialSpec, TrialState


@dataclass
class StudyOutcome:
    study: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    results: list[TrialResult] = field(default_factory=list)

    @property
    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.state is TrialState.FAILED]


def cached_result(mlflow_client: Any, experiment_id: str, spec: TrialSpec) -> Optional[TrialResult]:
    """The complete run of this trial id, as a CACHED result (None: it must train)."""
    from ablate import tracking

    if tracking.tags.PRETRAIN in spec.tags and not spec.best_checkpoint.exists():
        return None  # later trials need its checkpoint file, which is gone: train it again
    record = tracking.complete_run(mlflow_client, experiment_id, spec.trial_id)
    if record is None:
        return None
    return TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.CACHED, metrics=dict(record.metrics),
                       run_id=record.run_id, duration_s=record.duration_s or 0.0)


def cached_results(study_name: str, trials: list[TrialSpec], tracking_uri: str) -> dict[str, TrialResult]:
    """Trials that already finished, without creating anything in the store."""
    from ablate import tracking

    if not tracking.store_exists(tracking_uri):
        return {}
    mlflow_client = tracking.client(tracking_uri)
    experiment_id = tracking.find_experiment(mlflow_client, study_name)
    if experiment_id is None:
        return {}
    hits = {}
    for spec in trials:
        hit = cached_result(mlflow_client, experiment_id, spec)
        if hit is not None:
            hits[spec.trial_id] = hit
    return hits


def run_study(
    study: Study,
    tracking_uri: str,
    *,
    runs_dir: Path | str = "runs",
    rerun: bool = False,
    dispatcher: Optional[Dispatcher] = None,
    on_start: Optional[StartSink] = None,
    on_result: Optional[EventSink] = None,
    on_planned: Optional[Callable[[list[TrialSpec]], None]] = None,
) -> StudyOutcome:
    """Train every pending trial of `study`; finished ones (same trial id) are reported as cached.

    `dispatcher` defaults to training in this process; failed trials are retried
    `resources.retries` times, and names sharing a trial id train once.
    """
    from ablate import tracking

    trials = plan_trials(study, runs_dir)
    if on_planned is not None:
        on_planned(trials)
    tracking.prepare_store(tracking_uri)
    mlflow_client = tracking.client(tracking_uri)
    experiment_id = tracking.ensure_experiment(mlflow_client, study.name, tracking_uri)
    parent_run_id = tracking.start_parent_run(mlflow_client, experiment_id, tracking.tags.Kind.STUDY, study.name, {
        tracking.tags.PROFILE: study.profile or "", tracking.tags.STUDY_FILE: str(study.source)})
    outcome = StudyOutcome(study.name, experiment_id, parent_run_id, tracking_uri)
    read = {d for spec in trials for d in spec.depends_on}  # trials whose checkpoints others load
    hits: dict[int, TrialResult] = {}
    for index, spec in enumerate(trials):
        hit = None if rerun else cached_result(mlflow_client, experiment_id, spec)
        if hit is not None and spec.trial_id in read and not spec.best_checkpoint.exists():
            hit = None  # e.g. a zoo row teaching a student: its checkpoint file is gone, train it again
        if hit is not None:
            hits[index] = hit
    must_train = {s.trial_id for i, s in enumerate(trials) if i not in hits}  # then under every name
    pending = [s for s in trials if s.trial_id in must_train]
    for index, spec in enumerate(trials):
        if spec.trial_id not in must_train:
            outcome.results.append(hits[index])
            if on_result is not None:
                on_result(spec, hits[index])
    context = RunContext(tracking_uri, experiment_id, parent_run_id)
    ended: set[str] = set()

    def report(spec: TrialSpec, result: TrialResult) -> None:
        ended.add(result.trial_id)
        if on_result is not None:
            on_result(spec, result)

    status = "FAILED"
    try:
        outcome.results.extend(drive(pending, dispatcher or InProcessDispatcher(), context,
                                     retries=study.spec.resources.retries, on_start=on_start, on_result=report))
        status = "FAILED" if outcome.failed else "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        unfinished = [s.trial_id for s in pending if s.trial_id not in ended]
        tracking.mark_interrupted(mlflow_client, experiment_id, unfinished)
        raise
    finally:
        tracking.log_params(mlflow_client, parent_run_id, {"n_trials": len(trials)})
        tracking.end_run(mlflow_client, parent_run_id, status)
    return outcome
