"""Run a study: plan, skip what MLflow already holds as finished, dispatch the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ablate.dispatch import Dispatcher, RunContext, SequentialDispatcher
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
    on_result: Optional[Callable[[TrialSpec, TrialResult], None]] = None,
    on_planned: Optional[Callable[[list[TrialSpec]], None]] = None,
) -> StudyOutcome:
    """Train every pending trial of `study`; finished ones (same trial id) are reported as cached."""
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
    pending: list[TrialSpec] = []
    for spec in trials:
        hit = None if rerun else cached_result(mlflow_client, experiment_id, spec)
        if hit is None:
            pending.append(spec)
        else:
            outcome.results.append(hit)
            if on_result is not None:
                on_result(spec, hit)
    context = RunContext(tracking_uri, experiment_id, parent_run_id)
    status = "FAILED"
    try:
        outcome.results.extend((dispatcher or SequentialDispatcher()).run(pending, context, on_result))
        status = "FAILED" if outcome.failed else "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        done = {r.trial_id for r in outcome.results}
        tracking.mark_interrupted(mlflow_client, experiment_id, [s.trial_id for s in pending if s.trial_id not in done])
        raise
    finally:
        tracking.log_params(mlflow_client, parent_run_id, {"n_trials": len(trials)})
        tracking.end_run(mlflow_client, parent_run_id, status)
    return outcome
