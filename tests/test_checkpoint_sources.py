"""Checkpoints that cross machines and studies: a pretraining stores its `best.pth` in the tracking
store, a trial that does not find it on its disk fetches it (cache keyed by run id and checksum),
and a study may name a checkpoint as a path, an http(s) URL (mmengine's cache, SHA-256 prefix
verified) or a `runs:/` URI; a bad one is a clear error before anything trains."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from ablate import tracking
from ablate.cli import main
from ablate.errors import StudyError
from ablate.study import cached_results, load_study, plan_trials, run_study
from ablate.study.checkpoints import fetch_sources
from ablate.tracking.checkpoints import localize_checkpoints, sha256_of, url_cache_path
from ablate.tracking.node import host_address
from tests.conftest import B0_CONFIG, write_study

BUDGET = {"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}


def _study(path: Path, data: Path, name: str, decoder: str, encoder: Any = None, **extra: Any) -> Path:
    """One SegFormer-B0 zoo row that starts from `decoder` (a pretrain entry or a checkpoint)."""
    row = {"name": "b0", "config": str(B0_CONFIG), "decoder": decoder, **({"encoder": encoder} if encoder else {})}
    return write_study(path, data, name=name, trials=[], budget=BUDGET, resources={"retries": 0}, zoo=[row], **extra)


def _artifact(uri: str, run_id: str, path: str, into: Path) -> Path:
    return tracking.RunStore.open(uri).download_artifact(run_id, path, into)


def _cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code)


@pytest.fixture(scope="module")
def provided(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict[str, Any]:
    """A pretraining and the zoo row that transfers from it, trained once in this process."""
    root = tmp_path_factory.mktemp("provided")
    study = _study(root / "s.yaml", tiny_data, "provided", "city", pretrain=[{"name": "city"}])
    uri = f"sqlite:///{root / 'mlruns.db'}"
    outcome = run_study(load_study(study), uri, runs_dir=root / "runs")
    assert [r.state.value for r in outcome.results] == ["FINISHED", "FINISHED"], [r.error for r in outcome.results]
    store = tracking.RunStore.open(uri)
    records = {r.name: store.trial_run(str(r.run_id)) for r in outcome.results}
    return {"root": root, "study": study, "uri": uri, "outcome": outcome, "records": records,
            "best": root / "runs" / "provided" / records["pretrain-city"].trial_id / "best.pth"}


def test_a_trial_others_load_stores_its_checkpoint(provided: dict[str, Any], tmp_path: Path) -> None:
    pretrain, row = provided["records"]["pretrain-city"], provided["records"]["b0"]
    assert pretrain.tags["ablate.provides"] == "checkpoint"
    assert pretrain.stored_checkpoint == ("checkpoints/best.pth", sha256_of(provided["best"]))
    stored = _artifact(provided["uri"], pretrain.run_id, "checkpoints/best.pth", tmp_path)
    assert stored.read_bytes() == provided["best"].read_bytes()
    assert row.stored_checkpoint is None and "ablate.provides" not in row.tags  # nothing loads the row
    assert pretrain.node == row.node == host_address()


def test_a_checkpoint_missing_here_comes_from_the_store(provided: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """As on another machine: the pretraining's best.pth is not on this disk."""
    from mmengine.config import Config

    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    pretrain = provided["records"]["pretrain-city"]
    trials = plan_trials(load_study(provided["study"]), provided["root"] / "runs")
    source, dependent = (next(t for t in trials if t.name == n) for n in ("pretrain-city", "b0"))
    assert dependent.depends_on == (pretrain.trial_id,) and source.trial_id == pretrain.trial_id
    aside = tmp_path / "best.pth"
    shutil.move(provided["best"], aside)
    try:
        # the finished pretraining is still reusable: its checkpoint is in the store
        hits = cached_results("provided", [dataclasses.replace(source, provides=True), dependent], provided["uri"])
        assert set(hits) == {source.trial_id, dependent.trial_id}
        cfg = Config.fromstring(dependent.config_text, ".py")
        experiment = provided["outcome"].experiment_id
        moved = localize_checkpoints(cfg, dependent.depends_on, provided["uri"], experiment)
        fetched = Path(cfg.load_from)
        assert moved == {str(provided["best"]): str(fetched)}
        digest = pretrain.stored_checkpoint[1]
        assert fetched.is_relative_to(tmp_path / "cache" / "checkpoints" / pretrain.run_id / digest[:16])
        assert sha256_of(fetched) == digest == sha256_of(aside)
    finally:
        shutil.move(aside, provided["best"])


def test_a_study_transfers_from_a_run_of_another_study(provided: dict[str, Any], tiny_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    root, uri = provided["root"], provided["uri"]
    pretrain = provided["records"]["pretrain-city"]
    source = f"runs:/{pretrain.run_id}/checkpoints/best.pth"
    study = _study(root / "from_run.yaml", tiny_data, "from-run", source)
    planned = [t.trial_id for t in plan_trials(load_study(study), root / "runs")]
    assert planned == [t.trial_id for t in plan_trials(load_study(study), root / "elsewhere")]  # ids do not move

    capsys.readouterr()
    assert _cli(["run", str(study), "--tracking-uri", uri, "--runs-dir", str(root / "runs"), "--json",
                 "--dispatcher", "local"]) == 0
    (trial,) = json.loads(capsys.readouterr().out)["trials"]
    assert trial["state"] == "FINISHED" and trial["trial_id"] == planned[0]
    config = _artifact(uri, trial["run_id"], "config.py", tmp_path).read_text()
    load_from = next(line for line in config.splitlines() if line.startswith("load_from"))
    assert f"/checkpoints/{pretrain.run_id}/{pretrain.stored_checkpoint[1][:16]}/checkpoints/best.pth" in load_from

    for bad, says in ((f"runs:/{'0' * 32}/checkpoints/best.pth", "no run " + "0" * 32),
                      (f"runs:/{pretrain.run_id}/checkpoints/nope.pth", "has no artifact 'checkpoints/nope.pth'"),
                      ("runs:/just-a-run-id", "is not runs:/<run_id>/<artifact path>")):
        study = _study(root / "bad.yaml", tiny_data, "bad-source", bad)
        assert _cli(["run", str(study), "--tracking-uri", uri, "--runs-dir", str(root / "runs"),
                     "--dispatcher", "local"]) == 2
        err = capsys.readouterr().err
        assert "zoo[0].decoder: " in err and says in err and "Traceback" not in err
    assert tracking.RunStore.open(uri).find_experiment("bad-source") is None  # refused before anything ran


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture()
def files_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A loopback HTTP server over a folder: (base URL, folder, paths asked for with GET)."""
    folder = tmp_path / "served"
    folder.mkdir()
    asked: list[str] = []

    class Handler(_Files):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder, asked
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_url_checkpoints_are_checked_downloaded_once_and_verified(
        provided: dict[str, Any], files_server: tuple[str, Path, list[str]], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from mmengine.config import Config

    base, folder, asked = files_server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # mmengine's URL cache lives under it
    digest = sha256_of(provided["best"])
    good, bad = f"city-{digest[:8]}.pth", "city-0badc0de.pth"
    for name in (good, bad):
        shutil.copyfile(provided["best"], folder / name)

    study = load_study(_study(tmp_path / "url.yaml", tiny_data, "url", f"{base}/{good}", encoder=f"{base}/{good}"))
    fetch_sources(study, provided["uri"])
    cached = url_cache_path(f"{base}/{good}")
    assert cached == tmp_path / "torch" / "hub" / "checkpoints" / good and sha256_of(cached) == digest
    assert asked == [f"/{good}"]  # named twice (encoder, decoder), downloaded once
    fetch_sources(study, provided["uri"])
    assert asked == [f"/{good}"]  # and not again

    (row,) = plan_trials(study, tmp_path / "runs")
    cfg = Config.fromstring(row.config_text, ".py")
    assert cfg.load_from == f"{base}/{good}" and cfg.model.backbone.init_cfg.checkpoint == f"{base}/{good}"
    localize_checkpoints(cfg, row.depends_on, provided["uri"], "0")
    assert cfg.load_from == cfg.model.backbone.init_cfg.checkpoint == str(cached)

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    for url, says in ((f"{base}/gone.pth", "not found there (HTTP 404)"),
                      (f"http://127.0.0.1:{closed}/city.pth", "cannot be reached")):
        with pytest.raises(StudyError) as info:
            load_study(_study(tmp_path / "missing.yaml", tiny_data, "url", url))
        ((field, message),) = info.value.problems
        assert field == "zoo[0].decoder" and message.startswith(f"checkpoint (or pretrain entry) {url}: {says}")

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    capsys.readouterr()
    assert _cli(["run", str(_study(tmp_path / "bad.yaml", tiny_data, "url", f"{base}/{bad}")), "--tracking-uri", uri,
                 "--runs-dir", str(tmp_path / "runs"), "--dispatcher", "local"]) == 2
    err = capsys.readouterr().err
    assert "zoo[0].decoder: " in err and "SHA-256 does not start with 0badc0de" in err and "Traceback" not in err
    assert not url_cache_path(f"{base}/{bad}").exists()  # a file that fails its checksum is not kept
    assert not (tmp_path / "fresh.db").exists()  # refused before the store was even created


def test_a_resumed_transfer_continues_its_own_training(provided: dict[str, Any], tmp_path: Path) -> None:
    """mmengine resumes from `load_from` when it is set: a transfer rung must resume from its own
    last checkpoint, not restart from the pretraining's weights and iteration count."""
    import dataclasses

    from ablate.trial.train import write_config

    trials = plan_trials(load_study(provided["study"]), provided["root"] / "runs")
    row = dataclasses.replace(next(t for t in trials if t.name == "b0"), work_dir=tmp_path)
    assert write_config(row, None, None, resume=False).load_from == str(provided["best"])
    resumed = write_config(row, None, None, resume=True)
    assert resumed.resume is True and resumed.load_from is None
