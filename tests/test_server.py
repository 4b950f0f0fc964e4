"""`ablate server`: a real `mlflow server` on a loopback port, runs and artifacts through it, Ctrl-C
stops it and everything it started; bad options are one line and exit 2."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from ablate import tracking
from ablate.cli import main
from ablate.errors import AblateError
from ablate.tracking.checkpoints import fetch_runs_uri, log_checkpoint, sha256_of
from ablate.tracking.server import check_shared_store

STARTUP_S = 240  # a cold `mlflow server` on a busy 2-core machine takes a while to import


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    return [int(pid) for pid, s in (line.split() for line in listing.splitlines()) if int(s) == sid]


def _kill_session(proc: subprocess.Popen) -> None:
    """Whatever of the server's session is left (only processes this test started)."""
    for pid in _session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.wait(timeout=30)


def _first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The URI line `ablate server` prints once the server answers."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if selector.select(timeout=1.0):
            return proc.stdout.readline().decode().strip()
        assert proc.poll() is None, f"ablate server exited with {proc.returncode}"
    raise AssertionError(f"ablate server printed no URI within {timeout_s} s")


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """`ablate server` on a free loopback port with a sqlite store in tmp_path: (process, URI, store dir)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "ablate", "server", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=(tmp_path / "server.log").open("wb"), env=env,
                            start_new_session=True)
    try:
        uri = _first_line(proc, STARTUP_S)
        yield proc, uri, tmp_path / "store"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        _kill_session(proc)


def test_server_tracks_runs_and_artifacts_and_stops_on_ctrl_c(
        server: tuple[subprocess.Popen, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, uri, store = server
    port = int(uri.rsplit(":", 1)[1])
    assert uri == f"http://127.0.0.1:{port}"
    tracking.check_tracking_uri(uri)  # what `ablate run --tracking-uri` checks first

    client = tracking.client(uri)
    experiment = tracking.ensure_experiment(client, "served", uri)
    run_id = client.create_run(experiment).info.run_id
    tracking.log_metrics(client, run_id, {"mIoU": 61.5}, step=4)
    checkpoint = tmp_path / "best.pth"
    checkpoint.write_bytes(os.urandom(4096))
    digest = log_checkpoint(client, run_id, checkpoint)

    # the artifact went through the server into its own folder, beside the sqlite file
    served = list(store.glob(f"mlartifacts/{experiment}/{run_id}/artifacts/checkpoints/best.pth"))
    assert len(served) == 1 and served[0].read_bytes() == checkpoint.read_bytes()
    # and back, as a trial on another machine fetches it: into the cache, checksum verified
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    fetched = fetch_runs_uri(uri, f"runs:/{run_id}/checkpoints/best.pth")
    assert fetched.is_relative_to(tmp_path / "cache" / "checkpoints" / run_id / digest[:16])
    assert sha256_of(fetched) == digest == sha256_of(checkpoint)

    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=60) == 0
    assert "mlflow server stopped" in (tmp_path / "server.log").read_text()
    assert _session_pids(proc.pid) == []  # the web server and anything it spawned are gone
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # everything it recorded is in the sqlite store it owned
    record = tracking.TrialRun.from_mlflow(tracking.client(f"sqlite:///{store / 'mlruns.db'}").get_run(run_id))
    assert record.metrics["mIoU"] == 61.5 and record.stored_checkpoint == ("checkpoints/best.pth", digest)


def test_server_option_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main(["server", *args])
        return int(info.value.code)

    assert run("--backend-store-uri", str(tmp_path / "runs-folder")) == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert run("--port", str(busy.getsockname()[1]), "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}") == 2
    assert run("--host", "203.0.113.9", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}") == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 3 and "Traceback" not in err
    assert "--backend-store-uri" in lines[0] and "not a database URL" in lines[0]
    assert "--port" in lines[1] and "already in use" in lines[1]
    assert "--host" in lines[2] and "203.0.113.9" in lines[2]
    assert not (tmp_path / "m.db").exists()  # nothing created before the options are right


def test_several_machines_need_a_shared_store() -> None:
    with pytest.raises(AblateError, match=r"--tracking-uri: the Ray cluster has 2 nodes.*ablate server"):
        check_shared_store("sqlite:////tmp/mlruns.db", nodes=2)
    with pytest.raises(AblateError, match="ablate server"):
        check_shared_store("file:///tmp/mlruns", nodes=3)
    check_shared_store("http://10.0.0.5:5000", nodes=2)
    check_shared_store("postgresql://ablate@db/mlflow", nodes=2)
    check_shared_store("sqlite:////tmp/mlruns.db", nodes=1)
