"""Creating, finding and closing the runs of a study: the writer side of the records.

A study is an MLflow experiment; each `ablate run` / `ablate tune` is a parent run and each trial
a child run found again by its trial id (tag), so an interrupted trial resumes in its own run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Optional

from ablate.tracking import tags as T
from ablate.tracking.environment import git_state
from ablate.tracking.inputs import log_dataset
from ablate.tracking.records import TrialRun, TuneRun
from ablate.tracking.store import log_params, log_tags

if TYPE_CHECKING:
    from ablate.trial.spec import TrialSpec

_PAGE = 1000
_REUSABLE = ("RUNNING", "FAILED", "KILLED", "SCHEDULED")


def find_trial_runs(mlflow_client: Any, experiment_id: str, trial_id: str) -> list[Any]:
    """Runs of one trial id, newest first."""
    return mlflow_client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{T.TRIAL_ID}` = '{trial_id}'",
        order_by=["attributes.start_time DESC"],
    )


def complete_run(mlflow_client: Any, experiment_id: str, trial_id: str) -> Optional[TrialRun]:
    """The newest finished run of a trial id that holds its final mIoU (what a rerun reuses)."""
    for run in find_trial_runs(mlflow_client, experiment_id, trial_id):
        record = TrialRun.from_mlflow(run)
        if record.complete:
            return record
    return None


def trial_tags(spec: "TrialSpec", parent_run_id: Optional[str]) -> dict[str, str]:
    out = {
        T.TRIAL_ID: spec.trial_id,
        T.STUDY: spec.study,
        T.KIND: T.Kind.TRIAL.value,
        T.TRIAL_NAME: spec.name,
        T.SEED: str(spec.seed),
        **spec.tags,
    }
    if parent_run_id:
        out[T.PARENT] = parent_run_id
    return out


def trial_params(spec: "TrialSpec") -> dict[str, Any]:
    return {
        "trial_name": spec.name,
        "base": spec.base,
        "seed": spec.seed,
        "iters": spec.iters,
        "batch_size": spec.batch_size,
        "dataset": f"{spec.data_root.name}@{spec.data_fingerprint}",
        **spec.params,
        **{f"override.{k}": v for k, v in spec.overrides.items()},
    }


def open_trial_run(
    mlflow_client: Any, experiment_id: str, spec: "TrialSpec", parent_run_id: Optional[str] = None
) -> tuple[str, bool]:
    """(run id, resumed): an unfinished run of the same trial id is reused, else a new one is made.

    `resumed` tells the trainer whether checkpoints in the work dir belong to this run: a new run
    must not inherit a finished training it has no record of.
    """
    for run in find_trial_runs(mlflow_client, experiment_id, spec.trial_id):
        if run.info.status in _REUSABLE:
            mlflow_client.update_run(run.info.run_id, status="RUNNING")
            record_provenance(mlflow_client, run.info.run_id, spec)
            return run.info.run_id, True
    run = mlflow_client.create_run(experiment_id, run_name=f"{spec.name}-s{spec.seed}",
                                   tags=trial_tags(spec, parent_run_id))
    log_params(mlflow_client, run.info.run_id, trial_params(spec))
    record_provenance(mlflow_client, run.info.run_id, spec)
    return run.info.run_id, False


def record_provenance(mlflow_client: Any, run_id: str, spec: "TrialSpec") -> None:
    """The dataset input and the study repository's git state, as of this attempt (a resumed run
    gets the state it resumed with; the package versions follow when training starts)."""
    study_dir = spec.study_file.parent if spec.study_file is not None else None
    log_tags(mlflow_client, run_id, git_state(study_dir).tags())
    log_dataset(mlflow_client, run_id, spec.data_root, spec.data_fingerprint)


def start_parent_run(mlflow_client: Any, experiment_id: str, kind: T.Kind, study: str, extra: dict[str, str]) -> str:
    """The parent run of one `ablate run` or `ablate tune` invocation."""
    label = "" if kind is T.Kind.STUDY else f" {kind.value}"
    run = mlflow_client.create_run(
        experiment_id,
        run_name=f"{study}{label} {time.strftime('%Y-%m-%d %H:%M:%S')}",
        tags={T.KIND: kind.value, T.STUDY: study, **extra},
    )
    return run.info.run_id


def end_run(mlflow_client: Any, run_id: str, status: str, tags: Optional[dict[str, str]] = None) -> None:
    if tags:
        log_tags(mlflow_client, run_id, tags)
    mlflow_client.set_terminated(run_id, status=status)


def mark_interrupted(mlflow_client: Any, experiment_id: str, trial_ids: Iterable[str]) -> None:
    """Runs of trials stopped by Ctrl-C end KILLED; the next `ablate run` resumes the same run."""
    for trial_id in trial_ids:
        for run in find_trial_runs(mlflow_client, experiment_id, trial_id):
            if run.info.status == "RUNNING":
                mlflow_client.set_terminated(run.info.run_id, status="KILLED")


def search_all(mlflow_client: Any, experiment_id: str) -> list[Any]:
    """Every active run of an experiment, a page of 1000 at a time."""
    runs: list[Any] = []
    token: Optional[str] = None
    while True:
        page = mlflow_client.search_runs([experiment_id], max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def read_experiment(mlflow_client: Any, experiment_id: str, name: str) -> tuple[list[TrialRun], list[TuneRun]]:
    """Every trial and tune run of one experiment, decoded."""
    trials: list[TrialRun] = []
    tunes: list[TuneRun] = []
    for run in search_all(mlflow_client, experiment_id):
        kind = run.data.tags.get(T.KIND)
        if kind == T.Kind.TRIAL.value:
            trials.append(TrialRun.from_mlflow(run, name))
        elif kind == T.Kind.TUNE.value:
            tunes.append(TuneRun.from_mlflow(run, name))
    return trials, tunes
