"""The tracking seam: lock retries under concurrent writers, and the complexity cache."""

from __future__ import annotations

import copy
import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking

STEPS = 10


def _short_busy_timeout() -> None:
    """MLflow gives sqlite a 20 s busy timeout; these writers give up waiting after 1 s, so the test
    meets "database is locked" without holding the lock for 20 s."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def shorter(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        return statement.replace("busy_timeout = 20000", "busy_timeout = 1000"), parameters

    event.listen(Engine, "before_cursor_execute", shorter, retval=True)


def _writer(uri: str, experiment_id: str, index: int, steps: int, folder: str) -> None:
    _short_busy_timeout()
    here = Path(folder)
    store = tracking.RunStore.open(uri)
    run_id = store.start_parent_run(experiment_id, tracking.tags.Kind.STUDY, "writers", {"writer": str(index)})
    (here / f"ready-{index}").touch()
    while not (here / "go").exists():
        time.sleep(0.05)

    def tell_once_it_waited() -> None:
        while store.lock_retries == 0:
            time.sleep(0.02)
        (here / f"waited-{index}").touch()

    threading.Thread(target=tell_once_it_waited, daemon=True).start()
    for step in range(steps):
        store.log_metrics(run_id, {"loss": float(step), "IoU.road": step / 2}, step=step)
        store.log_tags(run_id, {"step": str(step)})
    store.end_run(run_id, "FINISHED")
    (here / f"retries-{index}").write_text(str(store.lock_retries))


def _wait_for(folder: Path, pattern: str, count: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(folder.glob(pattern))) < count:
        assert time.monotonic() < deadline, f"{len(list(folder.glob(pattern)))} of {count} {pattern} in {timeout_s} s"
        time.sleep(0.05)


def test_eight_writers_wait_out_a_locked_store_and_lose_nothing(tmp_path: Path) -> None:
    """8 processes write at once while another holds sqlite's write lock past their busy timeout:
    every writer gets "database is locked", waits it out (counted), and all 8 x 10 steps arrive."""
    db = tmp_path / "mlruns.db"
    uri = f"sqlite:///{db}"
    store = tracking.RunStore.open(uri)
    store.prepare()
    experiment_id = store.ensure_experiment("writers")
    client = MlflowClient(uri)
    ctx = multiprocessing.get_context("forkserver")  # fresh processes, MLflow imported once for all eight
    ctx.set_forkserver_preload(["mlflow", "sqlalchemy", "ablate.tracking", "tests.test_tracking"])
    procs = [ctx.Process(target=_writer, args=(uri, experiment_id, i, STEPS, str(tmp_path))) for i in range(8)]
    for proc in procs:
        proc.start()
    try:
        _wait_for(tmp_path, "ready-*", 8)
        holder = sqlite3.connect(db, timeout=30, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        (tmp_path / "go").touch()
        _wait_for(tmp_path, "waited-*", 8)  # each writer met the lock and is waiting it out
        holder.execute("COMMIT")
        holder.close()
        for proc in procs:
            proc.join(timeout=240)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert [p.exitcode for p in procs] == [0] * 8
    retries = [int((tmp_path / f"retries-{i}").read_text()) for i in range(8)]
    assert all(r > 0 for r in retries), retries
    runs = client.search_runs([experiment_id])
    assert len(runs) == 8
    for run in runs:
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(STEPS))
        assert len(client.get_metric_history(run.info.run_id, "IoU.road")) == STEPS


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    store = tracking.RunStore.open(uri)
    with pytest.raises(Exception, match="(?i)not found|does not exist|No Run"):
        store.run_metrics("0" * 32)
    assert store.get_run("0" * 32) is None  # a missing run is an answer, not an error
    assert store.lock_retries == 0


def test_complexity_is_counted_once_per_model_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate import analysis, config
    from ablate.analysis import cache
    from tests.conftest import B0_CONFIG

    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = config.load_base(B0_CONFIG)
    first = analysis.cached_complexity(cfg, 64, 192)
    assert first == analysis.count_config(copy.deepcopy(cfg), 64, 192)

    def no_recount(*args: object, **kwargs: object) -> None:
        raise AssertionError("counted again")

    monkeypatch.setattr(cache, "count_model", no_recount)
    monkeypatch.setattr(cache, "count_config", no_recount)
    assert analysis.cached_complexity(cfg, 64, 192) == first  # from the cache
    assert analysis.cached_flops(cfg, 64, 192) == first.flops_g
    with pytest.raises(AssertionError, match="counted again"):
        analysis.cached_complexity(cfg, 64, 256)  # another size is another entry
