"""Where results live: one MLflow store, one experiment per study, one child run per trial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

TRIAL_TAG = "ablate.trial_id"
STUDY_TAG = "ablate.study"
KIND_TAG = "ablate.kind"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_DB = "mlruns.db"
# MLflow's own limits (param value length, keys per batch).
MAX_PARAM_VALUE = 6000
MAX_BATCH_METRICS = 1000


def resolve_tracking_uri(cli_value: Optional[str] = None, cwd: Optional[Path] = None) -> str:
    """`--tracking-uri`, else `MLFLOW_TRACKING_URI`, else `sqlite:///mlruns.db` in the cwd.

    sqlite and file URIs are made absolute: workers may run in another directory.
    """
    uri = cli_value or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"
    base = cwd or Path.cwd()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri[len("sqlite:///"):])
        if not path.is_absolute():
            uri = f"sqlite:///{(base / path).resolve()}"
    elif "://" not in uri:
        uri = (base / uri).resolve().as_uri()
    return uri


def artifact_root(uri: str) -> Optional[str]:
    """Artifacts beside a sqlite file (`mlartifacts/`), as an absolute URI; None for servers."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


class _RetryingClient:
    """MlflowClient whose calls wait out sqlite's "database is locked" instead of failing.

    Several trials write to one sqlite file at once; sqlite serialises writers and a writer
    that waits past its timeout gets this error. Every call here is idempotent or keyed
    (metrics carry timestamps and steps), so repeating it is safe.
    """

    def __init__(self, inner: Any, attempts: int = 12, first_wait_s: float = 0.05) -> None:
        self._inner = inner
        self._attempts = attempts
        self._first_wait_s = first_wait_s

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            import random
            import time

            wait = self._first_wait_s
            for attempt in range(self._attempts):
                try:
                    return target(*args, **kwargs)
                except Exception as exc:  # MlflowException wraps sqlalchemy's OperationalError
                    if "database is locked" not in str(exc) or attempt == self._attempts - 1:
                        raise
                    time.sleep(wait * (1 + random.random()))
                    wait = min(wait * 2, 2.0)

        return call


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return _RetryingClient(MlflowClient(tracking_uri=uri))


def prepare_store(uri: str) -> None:
    """Create the store once, from the driver, before workers write to it.

    Creating an MLflow sqlite database runs its schema migrations; doing that from many
    processes at once is what fails. WAL journaling then lets readers and the one writer at a
    time proceed without blocking each other.
    """
    client(uri).search_experiments(max_results=1)
    if uri.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(uri[len("sqlite:///"):], timeout=30) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


def ensure_experiment(mlflow_client: Any, name: str, uri: str) -> str:
    """The experiment id for a study, created on first use (safe against a concurrent create)."""
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return mlflow_client.create_experiment(name, artifact_location=artifact_root(uri))
    except Exception:
        exp = mlflow_client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def find_trial_runs(mlflow_client: Any, experiment_id: str, trial_id: str) -> list[Any]:
    """Runs of one trial id, newest first."""
    return mlflow_client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}'",
        order_by=["attributes.start_time DESC"],
    )


def param_items(params: dict[str, Any]) -> dict[str, str]:
    """MLflow-safe param keys/values ('+' dropped, long values cut)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        safe = "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key.lstrip("+"))
        text = str(value)
        out[safe] = text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."
    return out


def log_metrics(mlflow_client: Any, run_id: str, metrics: dict[str, float], step: int) -> None:
    """One batched write for a dict of numbers (NaN kept: MLflow stores it)."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for start in range(0, len(items), MAX_BATCH_METRICS):
        mlflow_client.log_batch(run_id, metrics=items[start : start + MAX_BATCH_METRICS])
