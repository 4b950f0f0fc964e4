"""Where results live: one MLflow store, one experiment per study, one child run per trial.

`RunStore` is the one way into it: every package reads and writes runs through its typed methods
and records (`TrialRun`, `TuneRun`, `ArtifactEntry`), and only `ablate.tracking` knows MLflow.
Several trials write to one sqlite file at once, sqlite serialises writers, and a writer that waits
past its timeout gets "database is locked": each call waits that out (tenacity, exponential backoff
with jitter) instead of failing a trial over a busy store. Every call it repeats is idempotent or
keyed (metrics carry steps and timestamps), so a repeat is safe. A server that cannot be reached
or refuses access raises `TrackingUnavailable`, never an empty answer.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_random_exponential

from ablate.tracking import tags as T
from ablate.tracking.failures import TrackingUnavailable, unavailable
from ablate.tracking.records import FINISHED, TrialRun, TuneRun
from ablate.tracking.runs import REUSABLE, PlannedTrial, trial_params, trial_tags
from ablate.tracking.uri import sqlite_path

if TYPE_CHECKING:
    from mlflow.entities import Metric, Param, Run, RunTag

    from ablate.data.meta import DatasetMeta

# MLflow's own limits (param value length, keys per batch).
MAX_PARAM_VALUE = 6000
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
LOCK_ATTEMPTS = 12
_PAGE = 1000

log = logging.getLogger("ablate.tracking")
R = TypeVar("R")


def _locked(exc: BaseException) -> bool:
    # MlflowException wraps sqlalchemy's OperationalError; only the message is stable across both
    return "database is locked" in str(exc)


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a sqlite file (`mlartifacts/`), as an absolute URI; None for servers."""
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").resolve().as_uri() if db is not None else None


def store_exists(uri: str) -> bool:
    """False only for a sqlite file that is not there yet (opening it would create it)."""
    db = sqlite_path(uri)
    return db is None or db.exists()


def param_items(params: dict[str, Any]) -> dict[str, str]:
    """MLflow-safe param keys/values ('+' dropped, long values cut)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        safe = "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key.lstrip("+"))
        text = str(value)
        out[safe] = text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."
    return out


@dataclass(frozen=True)
class ArtifactEntry:
    """One file or folder of a run's artifacts, by its path inside the run."""

    path: str
    is_dir: bool


class RunStore:
    """One tracking store (a URI): experiments, runs, their records and their artifacts.

    `RunStore.open(uri)` gives one per store and process: the hooks and the trainer of a trial
    share it (each new MLflow client re-checks the store's schema). `lock_retries` counts the
    waits for a locked sqlite file.
    """

    def __init__(self, uri: str, attempts: int = LOCK_ATTEMPTS) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.lock_retries = 0
        self._client = MlflowClient(tracking_uri=uri)
        self._retrying = Retrying(
            retry=retry_if_exception(_locked),
            wait=wait_random_exponential(multiplier=0.05, max=2.0),
            stop=stop_after_attempt(attempts),
            before_sleep=self._count,
            reraise=True,
        )

    @classmethod
    def open(cls, uri: str) -> RunStore:
        return _open(uri)

    def _count(self, state: Any) -> None:
        self.lock_retries += 1
        before_sleep_log(log, logging.DEBUG)(state)

    def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        try:
            return self._retrying(fn, *args, **kwargs)
        except TrackingUnavailable:
            raise
        except Exception as exc:
            problem = unavailable(exc, self.uri)
            if problem is not None:
                raise problem from None
            raise

    # -- the store and its experiments ------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return store_exists(self.uri)

    def prepare(self) -> None:
        """Create the store once, from the driver, before workers write to it.

        Creating an MLflow sqlite database runs its schema migrations; doing that from many
        processes at once is what fails. WAL journaling then lets readers and the one writer at a
        time proceed without blocking each other.
        """
        self._call(self._client.search_experiments, max_results=1)
        db = sqlite_path(self.uri)
        if db is not None:
            import sqlite3

            with sqlite3.connect(str(db), timeout=30) as conn:
                conn.execute("PRAGMA journal_mode=WAL")

    def find_experiment(self, name: str) -> str | None:
        exp = self._call(self._client.get_experiment_by_name, name)
        return None if exp is None else exp.experiment_id

    def ensure_experiment(self, name: str) -> str:
        """The experiment id for a study, created on first use (safe against a concurrent create)."""
        found = self.find_experiment(name)
        if found is not None:
            return found
        try:
            return self._call(self._client.create_experiment, name, artifact_location=artifact_root(self.uri))
        except TrackingUnavailable:
            raise
        except Exception:
            found = self.find_experiment(name)
            if found is None:
                raise
            return found

    def experiments(self) -> dict[str, str]:
        """Experiment id -> name, for every active experiment (MLflow's "Default" included)."""
        out: dict[str, str] = {}
        token: str | None = None
        while True:
            page = self._call(self._client.search_experiments, max_results=_PAGE, page_token=token)
            out.update((e.experiment_id, e.name) for e in page)
            token = getattr(page, "token", None)
            if not token:
                return out

    # -- runs: created, resumed, ended ------------------------------------------------------------
    def start_parent_run(self, experiment_id: str, kind: T.Kind, study: str, tags: dict[str, str]) -> str:
        """The parent run of one `ablate run` (kind STUDY) or `ablate tune` (kind TUNE)."""
        label = "" if kind is T.Kind.STUDY else f" {kind.value}"
        run = self._call(
            self._client.create_run,
            experiment_id,
            run_name=f"{study}{label} {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={T.KIND: kind.value, T.STUDY: study, **tags},
        )
        return str(run.info.run_id)

    def open_trial_run(
        self, experiment_id: str, trial: PlannedTrial, parent_run_id: str | None = None
    ) -> tuple[str, bool]:
        """(run id, resumed): an unfinished run of the same trial id is reused, else a new one is made.

        `resumed` tells the trainer whether checkpoints in the work dir belong to this run: a new run
        must not inherit a finished training it has no record of.
        """
        for run in self.find_trial_runs(experiment_id, trial.trial_id):
            if run.status in REUSABLE:
                self._call(self._client.update_run, run.run_id, status="RUNNING")
                self._record_provenance(run.run_id, trial)
                return run.run_id, True
        created = self._call(
            self._client.create_run,
            experiment_id,
            run_name=f"{trial.name}-s{trial.seed}",
            tags=trial_tags(trial, parent_run_id),
        )
        run_id = str(created.info.run_id)
        self.log_params(run_id, trial_params(trial))
        self._record_provenance(run_id, trial)
        return run_id, False

    def _record_provenance(self, run_id: str, trial: PlannedTrial) -> None:
        """The dataset input and the study repository's git state, as of this attempt (a resumed run
        gets the state it resumed with; the package versions follow when training starts)."""
        from ablate.tracking.environment import git_state

        study_dir = trial.study_file.parent if trial.study_file is not None else None
        self.log_tags(run_id, git_state(study_dir).tags())
        self.log_dataset(run_id, trial.data_root, trial.data_fingerprint, getattr(trial, "data_splits", None))
        meta = getattr(trial, "dataset_meta", None)
        if meta is not None:
            self.log_dataset_meta(run_id, meta)

    def end_run(self, run_id: str, status: str, tags: dict[str, str] | None = None) -> None:
        if tags:
            self.log_tags(run_id, tags)
        self._call(self._client.set_terminated, run_id, status=status)

    def mark_interrupted(self, experiment_id: str, trial_ids: Iterable[str]) -> None:
        """Runs of trials stopped by Ctrl-C end KILLED; the next `ablate run` resumes the same run."""
        for trial_id in trial_ids:
            for run in self.find_trial_runs(experiment_id, trial_id):
                if run.status == "RUNNING":
                    self._call(self._client.set_terminated, run.run_id, status="KILLED")

    # -- runs: read back --------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int = _PAGE,
    ) -> list[Run]:
        """MLflow runs matching a filter (for `ablate.tracking` itself; other packages read records)."""
        return list(
            self._call(
                self._client.search_runs,
                list(experiment_ids),
                filter_string=filter_string,
                order_by=order_by,
                max_results=max_results,
            )
        )

    def get_run(self, run_id: str) -> Run | None:
        """The MLflow run, None when the store holds no such run."""
        try:
            return self._call(self._client.get_run, run_id)
        except TrackingUnavailable:
            raise
        except Exception:  # MLflow raises several types for an unknown or malformed run id
            return None

    def has_run(self, run_id: str) -> bool:
        """Whether the store holds this run (an unreachable server raises TrackingUnavailable)."""
        return self.get_run(run_id) is not None

    def trial_run(self, run_id: str, experiment: str = "") -> TrialRun | None:
        run = self.get_run(run_id)
        return None if run is None else TrialRun.from_mlflow(run, experiment)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of a run."""
        return dict(self._call(self._client.get_run, run_id).data.metrics)

    def find_trial_runs(self, experiment_id: str, trial_id: str) -> list[TrialRun]:
        """Runs of one trial id, newest first."""
        runs = self.search_runs(
            [experiment_id], f"tags.`{T.TRIAL_ID}` = '{trial_id}'", order_by=["attributes.start_time DESC"]
        )
        return [TrialRun.from_mlflow(run) for run in runs]

    def complete_run(self, experiment_id: str, trial_id: str) -> TrialRun | None:
        """The newest finished run of a trial id that holds its final mIoU (what a rerun reuses)."""
        return next((run for run in self.find_trial_runs(experiment_id, trial_id) if run.complete), None)

    def read_experiment(self, experiment_id: str, name: str) -> tuple[list[TrialRun], list[TuneRun]]:
        """Every trial and tune run of one experiment, decoded (a page of 1000 runs at a time)."""
        trials: list[TrialRun] = []
        tunes: list[TuneRun] = []
        token: str | None = None
        while True:
            page = self._call(self._client.search_runs, [experiment_id], max_results=_PAGE, page_token=token)
            for run in page:
                kind = run.data.tags.get(T.KIND)
                if kind == T.Kind.TRIAL.value:
                    trials.append(TrialRun.from_mlflow(run, name))
                elif kind == T.Kind.TUNE.value:
                    tunes.append(TuneRun.from_mlflow(run, name))
            token = getattr(page, "token", None)
            if not token:
                return trials, tunes

    def speed_runs(self, speed_key: str, limit: int = 50) -> list[TrialRun]:
        """Finished trial runs with this speed key (`ablate.speed_key`) in any experiment, newest
        first, at most `limit`: a model trained in one study says how long it takes in the next."""
        experiments = self.experiments()
        if not experiments:
            return []
        runs = self.search_runs(
            list(experiments),
            f"tags.`{T.SPEED_KEY}` = '{speed_key}' and attributes.status = '{FINISHED}'",
            order_by=["attributes.start_time DESC"],
            max_results=limit,
        )
        return [TrialRun.from_mlflow(run, experiments.get(run.info.experiment_id, "")) for run in runs]

    # -- writing ----------------------------------------------------------------------------------
    def log_batch(
        self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
    ) -> None:
        """MLflow entities in one write (what MLflow's own loggers call, e.g. its system monitor)."""
        self._call(self._client.log_batch, run_id, metrics=list(metrics), params=list(params), tags=list(tags))

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """One batched write for a dict of numbers (NaN kept: MLflow stores it)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(items), MAX_BATCH_METRICS):
            self.log_batch(run_id, metrics=items[start : start + MAX_BATCH_METRICS])

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in param_items(params).items()]
        for start in range(0, len(items), MAX_BATCH_PARAMS):
            self.log_batch(run_id, params=items[start : start + MAX_BATCH_PARAMS])

    def log_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_dataset(self, run_id: str, root: Path, fingerprint: str, splits: Mapping[str, int] | None = None) -> None:
        """Logged once per run and digest (MLflow keeps one input per dataset, however often logged).
        `splits`: images per split as the config's datasets list them (default: the KITTI layout's)."""
        from ablate.tracking.inputs import dataset_input

        if fingerprint and Path(root).is_dir():
            self._call(self._client.log_inputs, run_id, datasets=[dataset_input(root, fingerprint, splits)])

    def log_file(self, run_id: str, path: Path | str, artifact_path: str | None = None) -> None:
        self._call(self._client.log_artifact, run_id, str(path), artifact_path=artifact_path)

    def log_files(self, run_id: str, files: Iterable[Path], artifact_path: str | None = None) -> None:
        """The files that exist, under `artifact_path`; missing ones are skipped."""
        for path in files:
            if path.is_file():
                self.log_file(run_id, path, artifact_path)

    def log_folder(self, run_id: str, folder: Path | str, artifact_path: str | None = None) -> None:
        self._call(self._client.log_artifacts, run_id, str(folder), artifact_path=artifact_path)

    def log_dict(self, run_id: str, data: dict[str, Any], artifact_file: str) -> None:
        self._call(self._client.log_dict, run_id, data, artifact_file)

    def log_dataset_meta(self, run_id: str, meta: DatasetMeta) -> None:
        """The run's label space (class names, palette), so reports of any dataset name its classes."""
        from ablate.data.meta import META_ARTIFACT

        self.log_dict(run_id, meta.to_dict(), META_ARTIFACT)

    # -- artifacts read back ----------------------------------------------------------------------
    def dataset_meta(self, run_id: str) -> DatasetMeta | None:
        """The label space a run logged, or None for runs that logged none (older runs: Cityscapes)."""
        import json
        import tempfile

        from ablate.data.meta import META_ARTIFACT, DatasetMeta

        if not any(a.path == META_ARTIFACT for a in self.list_artifacts(run_id)):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = self.download_artifact(run_id, META_ARTIFACT, Path(tmp))
            return DatasetMeta.from_dict(json.loads(path.read_text()))

    def list_artifacts(self, run_id: str, folder: str | None = None) -> list[ArtifactEntry]:
        return [
            ArtifactEntry(str(f.path), bool(f.is_dir))
            for f in self._call(self._client.list_artifacts, run_id, folder or None)
        ]

    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        """A run's artifact (file or folder) copied into `dest`; returns where it landed."""
        Path(dest).mkdir(parents=True, exist_ok=True)
        return Path(self._call(self._client.download_artifacts, run_id, path, str(dest)))


@functools.lru_cache(maxsize=8)
def _open(uri: str) -> RunStore:
    return RunStore(uri)
