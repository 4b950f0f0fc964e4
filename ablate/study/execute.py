"""Run a study: plan, skip what MLflow already holds as finished, dispatch the rest."""

from __future__ import annotations

import time
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
    """The FINISHED run of this trial id, as a CACHED result (None: it must train)."""
    from ablate import tracking

    if "ablate.pretrain" in spec.tags and not spec.best_checkpoint.exists():
        return None  # later trials need its checkpoint file, which is gone: train it again
    for run in tracking.find_trial_runs(mlflow_client, experiment_id, spec.trial_id):
        if run.info.status == "FINISHED":
            return TrialResult(
                spec.trial_id, spec.name, spec.seed, TrialState.CACHED,
                metrics=dict(run.data.metrics), run_id=run.info.run_id,
            )
    return None


def _mark_interrupted(mlflow_client: Any, experiment_id: str, trials: list[TrialSpec]) -> None:
    """Runs of trials stopped by Ctrl-C end KILLED; the next `ablate run` resumes the same run."""
    from ablate import tracking

    for spec in trials:
        for run in tracking.find_trial_runs(mlflow_client, experiment_id, spec.trial_id):
            if run.info.status == "RUNNING":
                mlflow_client.set_terminated(run.info.run_id, status="KILLED")


def cached_results(study_name: str, trials: list[TrialSpec], tracking_uri: str) -> dict[str, TrialResult]:
    """Trials that already finished, without creating anything in the store."""
    from ablate import tracking

    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).exists():
        return {}
    mlflow_client = tracking.client(tracking_uri)
    experiment = mlflow_client.get_experiment_by_name(study_name)
    if experiment is None:
        return {}
    hits = {}
    for spec in trials:
        hit = cached_result(mlflow_client, experiment.experiment_id, spec)
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
    parent = mlflow_client.create_run(
        experiment_id,
        run_name=f"{study.name} {time.strftime('%Y-%m-%d %H:%M:%S')}",
        tags={
            tracking.KIND_TAG: "study",
            tracking.STUDY_TAG: study.name,
            "ablate.profile": study.profile or "",
            "ablate.study_file": str(study.source),
        },
    )
    outcome = StudyOutcome(study.name, experiment_id, parent.info.run_id, tracking_uri)
    pending: list[TrialSpec] = []
    for spec in trials:
        hit = None if rerun else cached_result(mlflow_client, experiment_id, spec)
        if hit is None:
            pending.append(spec)
        else:
            outcome.results.append(hit)
            if on_result is not None:
                on_result(spec, hit)
    context = RunContext(tracking_uri, experiment_id, parent.info.run_id)
    status = "FAILED"
    try:
        outcome.results.extend((dispatcher or SequentialDispatcher()).run(pending, context, on_result))
        status = "FAILED" if outcome.failed else "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        _mark_interrupted(mlflow_client, experiment_id, [s for s in pending if s.trial_id not in {r.trial_id for r in outcome.results}])
        raise
    finally:
        mlflow_client.log_param(parent.info.run_id, "n_trials", len(trials))
        mlflow_client.set_terminated(parent.info.run_id, status=status)
    return outcome
