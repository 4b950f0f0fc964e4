"""Ray outside the test process: `ablate run --address` joining a `ray start --head` cluster
with token authentication, and the embedded Ray kept on loopback without a process-wide setting."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest
from mlflow import MlflowClient

from tests.conftest import write_study

RAY = Path(sys.executable).with_name("ray")
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", LOOPBACK_ENV)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(home: Path) -> dict[str, str]:
    """The test's environment without any Ray setting, and a home of its own (Ray keeps tokens there)."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}


def _end_session(proc: subprocess.Popen) -> None:
    """SIGTERM `ray start --block` (it drains and stops what it started), then SIGKILL whatever of
    its session is left: only processes this test started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    listing = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        pid, sid = (int(x) for x in line.split())
        if sid == proc.pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc.poll() is None:
        proc.wait(timeout=30)


@pytest.fixture()
def token_cluster(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A one-node cluster on 127.0.0.1 with 2 logical GPUs and token auth: (address, token)."""
    if not RAY.exists():
        pytest.skip(f"`ray start` is unavailable: no {RAY} beside this Python")
    port, token = _free_port(), secrets.token_hex(16)
    temp_dir = Path(tempfile.mkdtemp(prefix="ablray", dir="/tmp"))  # short: Ray's socket paths are limited
    log = tmp_path / "head.log"
    env = {**_clean_env(tmp_path / "head-home"), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           LOOPBACK_ENV: "0"}  # the head listens on loopback only
    cmd = [str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--num-cpus", "2", "--num-gpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
           "--temp-dir", str(temp_dir)]
    with log.open("w") as out:
        head = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None, f"ray start exited {head.returncode}:\n{log.read_text()[-3000:]}"
            assert time.time() < deadline, f"ray start did not come up:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", token
    finally:
        _end_session(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.timeout(600)  # `ray start` up, then `ablate run` importing the stack afresh
def test_run_joins_a_token_cluster_with_address(token_cluster: tuple[str, str], tmp_path: Path,
                                                tiny_data: Path) -> None:
    address, token = token_cluster
    home = tmp_path / "user-home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(token)  # where `ray start` users keep it; no RAY_AUTH_MODE set
    study = write_study(tmp_path / "s.yaml", tiny_data, resources={"retries": 0})
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    run = subprocess.run(
        [sys.executable, "-m", "ablate", "run", str(study), "--address", address, "--json", "--tracking-uri", uri,
         "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=_clean_env(home), timeout=420)
    assert run.returncode == 0, run.stderr[-3000:]
    (trial,) = json.loads(run.stdout)["trials"]
    assert trial["state"] == "FINISHED", trial["error"]
    tags = MlflowClient(uri).get_run(trial["run_id"]).data.tags
    # a GPU of the cluster's two (logical) GPUs: an embedded Ray here would have had none
    assert tags["ablate.gpu_ids"] in {"0", "1"} and tags["ablate.devices"] == "cpu"


SNIPPET = """
import json, os
import ablate.cli, ablate.dispatch
from ablate.dispatch import RayDispatcher
before = os.environ.get("{var}")
pool = RayDispatcher(num_cpus=1)
slots = pool.open().total.cpus
import ray
after = os.environ.get("{var}")
print(json.dumps({{"before": before, "after": after, "slots": slots,
                   "gcs": ray.get_runtime_context().gcs_address}}))
pool.close()
"""


def test_embedded_ray_is_on_loopback_and_the_setting_is_not_left_behind(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SNIPPET.format(var=LOOPBACK_ENV)], capture_output=True, text=True,
                         env=_clean_env(tmp_path / "home"), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"] is None and seen["after"] is None  # neither importing nor starting leaves it set
    assert seen["gcs"].startswith("127.0.0.1:") and seen["slots"] == 1
