"""Where results live: one MLflow store, one experiment per study, one child run per trial.

Every MLflow client in ablate comes from `client()`: several trials write to one sqlite file at
once, sqlite serialises writers, and a writer that waits past its timeout gets "database is
locked". The client waits that out (tenacity, exponential backoff with jitter) instead of failing
a trial over a busy store. Each call it repeats is idempotent or keyed (metrics carry steps and
timestamps), so a repeat is safe.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any, Optional

from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_random_exponential

from ablate.tracking.uri import sqlite_path

# MLflow's own limits (param value length, keys per batch).
MAX_PARAM_VALUE = 6000
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
LOCK_ATTEMPTS = 12

log = logging.getLogger("ablate.tracking")


def _locked(exc: BaseException) -> bool:
    # MlflowException wraps sqlalchemy's OperationalError; only the message is stable across both
    return "database is locked" in str(exc)


class RetryingClient:
    """An `MlflowClient` whose calls wait out "database is locked"; `lock_retries` counts the waits."""

    def __init__(self, inner: Any, attempts: int = LOCK_ATTEMPTS) -> None:
        self._inner = inner
        self.lock_retries = 0
        self._retrying = Retrying(
            retry=retry_if_exception(_locked),
            wait=wait_random_exponential(multiplier=0.05, max=2.0),
            stop=stop_after_attempt(attempts),
            before_sleep=self._count,
            reraise=True,
        )

    def _count(self, state: Any) -> None:
        self.lock_retries += 1
        before_sleep_log(log, logging.DEBUG)(state)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._retrying(target, *args, **kwargs)

        return call


@functools.lru_cache(maxsize=8)
def client(uri: str) -> RetryingClient:
    """One client per store and process: the hooks and the trainer of a trial share it (each
    new client re-checks the store's schema)."""
    from mlflow.tracking import MlflowClient

    return RetryingClient(MlflowClient(tracking_uri=uri))


def artifact_root(uri: str) -> Optional[str]:
    """Artifacts beside a sqlite file (`mlartifacts/`), as an absolute URI; None for servers."""
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").resolve().as_uri() if db is not None else None


def store_exists(uri: str) -> bool:
    """False only for a sqlite file that is not there yet (opening it would create it)."""
    db = sqlite_path(uri)
    return db is None or db.exists()


def prepare_store(uri: str) -> None:
    """Create the store once, from the driver, before workers write to it.

    Creating an MLflow sqlite database runs its schema migrations; doing that from many
    processes at once is what fails. WAL journaling then lets readers and the one writer at a
    time proceed without blocking each other.
    """
    client(uri).search_experiments(max_results=1)
    db = sqlite_path(uri)
    if db is not None:
        import sqlite3

        with sqlite3.connect(str(db), timeout=30) as conn:
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


def find_experiment(mlflow_client: Any, name: str) -> Optional[str]:
    exp = mlflow_client.get_experiment_by_name(name)
    return None if exp is None else exp.experiment_id


def param_items(params: dict[str, Any]) -> dict[str, str]:
    """MLflow-safe param keys/values ('+' dropped, long values cut)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        safe = "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key.lstrip("+"))
        text = str(value)
        out[safe] = text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."
    return out


def log_params(mlflow_client: Any, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in param_items(params).items()]
    for start in range(0, len(items), MAX_BATCH_PARAMS):
        mlflow_client.log_batch(run_id, params=items[start: start + MAX_BATCH_PARAMS])


def log_metrics(mlflow_client: Any, run_id: str, metrics: dict[str, float], step: int) -> None:
    """One batched write for a dict of numbers (NaN kept: MLflow stores it)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for start in range(0, len(items), MAX_BATCH_METRICS):
        mlflow_client.log_batch(run_id, metrics=items[start: start + MAX_BATCH_METRICS])


def log_tags(mlflow_client: Any, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    if tags:
        mlflow_client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_files(mlflow_client: Any, run_id: str, files: list[Path], artifact_path: Optional[str] = None) -> None:
    for path in files:
        if path.is_file():
            mlflow_client.log_artifact(run_id, str(path), artifact_path=artifact_path)
