"""`ablate server`: a real `mlflow server` on a loopback port, runs and artifacts through it, Ctrl-C
or SIGTERM stops it and everything it started within 5 s, and killing it outright (SIGKILL) takes
the server's whole tree with it; bad options are one line and exit 2."""

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
STOP_S = 5  # what a user waits for the prompt after Ctrl-C


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, session id) of every process but zombies (they hold no port and no memory)."""
    listing = subprocess.run(["ps", "-eo", "pid=,ppid=,sid=,stat="], capture_output=True, text=True,
                             check=True).stdout
    return [(int(pid), int(ppid), int(sid)) for pid, ppid, sid, stat in (line.split() for line in listing.splitlines())
            if not stat.startswith("Z")]


def _tree_sessions(root: int) -> set[int]:
    """The sessions of `root` and every process below it: `ablate server`'s own, `mlflow server`'s
    (uvicorn and its workers included) and its watchdog's."""
    rows = _processes()
    below: set[int] = set()
    frontier = {root}
    while frontier:
        below |= frontier
        frontier = {pid for pid, ppid, _ in rows if ppid in frontier} - below
    return {sid for pid, _, sid in rows if pid in below}


def _left_in(sessions: set[int]) -> list[int]:
    return [pid for pid, _, sid in _processes() if sid in sessions]


def _wait_until_gone(sessions: set[int], timeout_s: float) -> list[int]:
    """Poll until no process of `sessions` is left (the processes leave by themselves); what is left."""
    deadline = time.monotonic() + timeout_s
    while (left := _left_in(sessions)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _port_is_free(port: int) -> bool:
    """Nothing answers on it and a new server can listen on it."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        pass
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def _kill_sessions(proc: subprocess.Popen, sessions: set[int]) -> None:
    """Whatever of the server's sessions is left (only processes this test started)."""
    for pid in _left_in(sessions | {proc.pid}):
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
    """`ablate server` on a free loopback port with a sqlite store in tmp_path: (process, URI, store dir).
    Two web-server workers, so uvicorn runs as a supervisor with worker processes below it. Started
    with SIGINT ignored, as `setsid ablate server &` in a script leaves it: Ctrl-C must stop it anyway."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = ["sh", "-c", "trap '' INT; exec \"$@\"", "sh",  # exec: the process is ablate itself
           sys.executable, "-m", "ablate", "server", "--port", str(port), "--workers", "2",
           "--backend-store-uri", f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=(tmp_path / "server.log").open("wb"), env=env,
                            start_new_session=True)  # as a terminal starts it: its own process group
    sessions: set[int] = set()
    try:
        uri = _first_line(proc, STARTUP_S)
        sessions = _tree_sessions(proc.pid)
        yield proc, uri, tmp_path / "store"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        _kill_sessions(proc, sessions)


def test_server_tracks_runs_and_artifacts_and_stops_on_ctrl_c(
        server: tuple[subprocess.Popen, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, uri, store = server
    port = int(uri.rsplit(":", 1)[1])
    assert uri == f"http://127.0.0.1:{port}"
    tracking.check_tracking_uri(uri)  # what `ablate run --tracking-uri` checks first

    runs = tracking.RunStore.open(uri)
    experiment = runs.ensure_experiment("served")
    run_id = runs.start_parent_run(experiment, tracking.tags.Kind.STUDY, "served", {})
    runs.log_metrics(run_id, {"mIoU": 61.5}, step=4)
    checkpoint = tmp_path / "best.pth"
    checkpoint.write_bytes(os.urandom(4096))
    digest = log_checkpoint(runs, run_id, checkpoint)

    # the artifact went through the server into its own folder, beside the sqlite file
    served = list(store.glob(f"mlartifacts/{experiment}/{run_id}/artifacts/checkpoints/best.pth"))
    assert len(served) == 1 and served[0].read_bytes() == checkpoint.read_bytes()
    # and back, as a trial on another machine fetches it: into the cache, checksum verified
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    fetched = fetch_runs_uri(uri, f"runs:/{run_id}/checkpoints/best.pth")
    assert fetched.is_relative_to(tmp_path / "cache" / "checkpoints" / run_id / digest[:16])
    assert sha256_of(fetched) == digest == sha256_of(checkpoint)

    sessions = _tree_sessions(proc.pid)
    assert len(sessions) == 3  # ablate server, mlflow server (with uvicorn and its workers), the watchdog
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground process group
    assert proc.wait(timeout=STOP_S) == 0
    assert "mlflow server stopped" in (tmp_path / "server.log").read_text()
    assert _left_in(sessions) == []  # the web server, its workers and the watchdog are gone
    assert _port_is_free(port)
    # everything it recorded is in the sqlite store it owned
    record = tracking.RunStore.open(f"sqlite:///{store / 'mlruns.db'}").trial_run(run_id)
    assert record is not None and record.metrics["mIoU"] == 61.5 and record.stored_checkpoint == ("checkpoints/best.pth", digest)


def test_sigterm_stops_the_server_and_everything_it_started(server: tuple[subprocess.Popen, str, Path]) -> None:
    proc, uri, _ = server
    sessions = _tree_sessions(proc.pid)
    proc.send_signal(signal.SIGTERM)  # to `ablate server` alone, as a service manager or `kill` does
    assert proc.wait(timeout=STOP_S) == 0
    assert _left_in(sessions) == []
    assert _port_is_free(int(uri.rsplit(":", 1)[1]))


def test_killed_outright_takes_the_mlflow_server_tree_with_it(server: tuple[subprocess.Popen, str, Path]) -> None:
    proc, uri, _ = server
    sessions = _tree_sessions(proc.pid)
    served = sessions - {proc.pid}
    assert _left_in(served)  # mlflow server, uvicorn, its workers, the watchdog
    proc.kill()  # SIGKILL, as the OOM killer does: no handler of ablate's runs
    assert proc.wait(timeout=STOP_S) == -signal.SIGKILL
    assert _wait_until_gone(sessions, timeout_s=15) == []
    assert _port_is_free(int(uri.rsplit(":", 1)[1]))


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
