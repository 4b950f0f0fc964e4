"""The tracking seam: lock retries under concurrent writers, and the complexity cache."""

from __future__ import annotations

import copy
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from ablate import tracking


def _writer(uri: str, experiment_id: str, index: int, steps: int, folder: str) -> None:
    client = tracking.client(uri)
    run = client.create_run(experiment_id, tags={"writer": str(index)})
    (Path(folder) / f"ready-{index}").touch()
    while not (Path(folder) / "go").exists():
        time.sleep(0.05)
    for step in range(steps):
        tracking.log_metrics(client, run.info.run_id, {"loss": float(step), "IoU.road": step / 2}, step=step)
        client.set_tag(run.info.run_id, "step", str(step))
    client.set_terminated(run.info.run_id)
    (Path(folder) / f"retries-{index}").write_text(str(client.lock_retries))


def test_eight_writers_wait_out_a_locked_store_and_lose_nothing(tmp_path: Path) -> None:
    """While another process holds sqlite's write lock past the busy timeout, every writer gets
    "database is locked", waits it out (counted), and all 8 x 10 steps arrive."""
    db = tmp_path / "mlruns.db"
    uri = f"sqlite:///{db}"
    tracking.prepare_store(uri)
    client = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(client, "writers", uri)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(uri, experiment_id, i, 10, str(tmp_path))) for i in range(8)]
    for proc in procs:
        proc.start()
    deadline = time.time() + 180
    while len(list(tmp_path.glob("ready-*"))) < 8 and time.time() < deadline:
        time.sleep(0.1)
    holder = sqlite3.connect(db, timeout=30, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    (tmp_path / "go").touch()
    time.sleep(21)  # longer than the busy timeout MLflow gives sqlite (20 s)
    holder.execute("COMMIT")
    holder.close()
    for proc in procs:
        proc.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * 8
    retries = [int((tmp_path / f"retries-{i}").read_text()) for i in range(8)]
    assert all(r > 0 for r in retries), retries
    runs = client.search_runs([experiment_id])
    assert len(runs) == 8
    for run in runs:
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(10))


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = tracking.client(uri)
    with pytest.raises(Exception, match="(?i)not found|does not exist|No Run"):
        client.get_run("0" * 32)
    assert client.lock_retries == 0


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
