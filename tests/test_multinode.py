"""A real two-node Ray cluster on one machine: nodes that share no trial output.

Two network namespaces joined by a veth pair with private addresses this test creates (nothing
else is reached): the head node and `ablate server` in one, a worker node in the other, whose
runs folder and cache are private tmpfs mounts (its own mount namespace), as on another machine.
A pretraining and two transfer rows that train at the same time, one per node, must all finish,
with the row on the node without the pretraining's `best.pth` loading the copy it downloaded
from the tracking server, which asks for the password `ablate server` made (it listens on an address
other machines reach), and which lands in no log, run or artifact. Everything started here (processes, namespaces, links, mounts) is
removed afterwards, also on failure; where namespaces are not permitted the test is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.tracking.credentials import read_credentials_file
from tests.conftest import B0_CONFIG, write_study

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]  # two nodes start, then a study runs across them

BIN = Path(sys.executable).parent
HEAD_IP, WORKER_IP = "10.213.7.1", "10.213.7.2"  # inside the two namespaces only
GCS_PORT, SERVER_PORT = 6390, 5077
STARTUP_S = 150
RUN_S = 420
RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def _namespaces_refused() -> Optional[str]:
    """Why this machine cannot host the test (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    if not (BIN / "ray").exists():
        return f"`ray start` is unavailable: no {BIN / 'ray'}"
    probe = f"ablprobe{os.getpid()}"
    made = _sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    _sh("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class Cluster:
    head_ns: str
    worker_ns: str
    runs: Path  # the head's runs folder; the worker mounts its own tmpfs over the same path
    caches: dict[str, Path]  # node IP -> its ABLATE_CACHE_DIR
    store: Path  # the server's sqlite file and artifacts
    token: str
    root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)  # head, server, worker
    temp_dirs: list[Path] = field(default_factory=list)  # Ray's, one per node: its session logs
    server_log: Optional[Path] = None
    deadline: float = 0.0  # for the whole start-up

    def wait_for_server(self) -> str:
        """The URI `ablate server` printed once it answers (it starts while the test begins)."""
        assert self.server_log is not None
        uri = f"http://{HEAD_IP}:{SERVER_PORT}"
        _wait_for(self.server_log, uri, self.procs["server"], self.deadline)
        return uri

    @property
    def address(self) -> str:
        return f"{HEAD_IP}:{GCS_PORT}"

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """This test's environment without Ray or MLflow settings, and a home of its own."""
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in RAY_ENV and k != "MLFLOW_TRACKING_URI"}
        return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **extra}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> Path:
        log = self.root / f"{name}.log"
        with log.open("w") as out:
            self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        return log

    def ablate(self, *args: str) -> subprocess.CompletedProcess:
        """`ablate ...` as a user runs it on the head machine, with the cluster's token in ~/.ray."""
        home = self.root / "user-home"
        (home / ".ray").mkdir(parents=True, exist_ok=True)
        (home / ".ray" / "auth_token").write_text(self.token)
        # the loopback setting of an embedded Ray, left in the environment, must not keep the
        # driver from joining a cluster on other addresses
        env = self.env(home, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
        return subprocess.run(["ip", "netns", "exec", self.head_ns, str(BIN / "python"), "-m", "ablate", *args],
                              capture_output=True, text=True, env=env, timeout=RUN_S)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, deadline: float) -> None:
    while text not in log.read_text():
        assert proc.poll() is None, f"{log.name}: exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{log.name}: no '{text}' in time:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def _stop(cluster: Cluster, names: tuple[str, str], temp_dirs: list[Path]) -> None:
    """SIGTERM what was started (`ray start --block` stops its node; `ablate server` its server),
    then SIGKILL whatever still runs in the two namespaces or the started sessions: only processes
    of this test. Then the namespaces (the veth pair goes with them) and Ray's temp folders; the
    worker's tmpfs mounts end with the last process of its mount namespace."""
    for name, proc in cluster.procs.items():
        if proc.poll() is None:  # Ctrl-C for the server, as a user stops it
            proc.send_signal(signal.SIGINT if name == "server" else signal.SIGTERM)
    deadline = time.monotonic() + 40
    for proc in cluster.procs.values():
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    pids = set()
    for ns in names:
        pids |= {int(p) for p in _sh("ip", "netns", "pids", ns, check=False).stdout.split()}
    listing = _sh("ps", "-eo", "pid=,sid=").stdout
    sessions = {proc.pid for proc in cluster.procs.values()}
    pids |= {int(pid) for pid, sid in (line.split() for line in listing.splitlines()) if int(sid) in sessions}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in cluster.procs.values():
        if proc.poll() is None:
            proc.wait(timeout=30)
    for ns in names:
        _sh("ip", "netns", "del", ns, check=False)
    for folder in temp_dirs:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = _namespaces_refused()
    if reason is not None:
        pytest.skip(f"two-node cluster test needs network namespaces: {reason}")
    root = tmp_path_factory.mktemp("cluster")
    tag = f"abl{os.getpid() % 100000}"
    head_ns, worker_ns = f"{tag}h", f"{tag}w"
    cluster = Cluster(head_ns, worker_ns, root / "runs", {HEAD_IP: root / "cache-head", WORKER_IP: root / "cache-worker"},
                      root / "store" / "mlruns.db", secrets.token_hex(16), root)
    temp_dirs = [Path(tempfile.mkdtemp(prefix="ablr", dir="/tmp")) for _ in range(2)]  # short: socket paths
    cluster.temp_dirs = temp_dirs
    try:
        for ns in (head_ns, worker_ns):
            _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", f"{tag}h0", "type", "veth", "peer", "name", f"{tag}w0")
        for ns, link, ip in ((head_ns, f"{tag}h0", HEAD_IP), (worker_ns, f"{tag}w0", WORKER_IP)):
            _sh("ip", "link", "set", link, "netns", ns)
            _sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", link)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "link", "set", link, "up")
        for folder in (cluster.runs, *cluster.caches.values(), cluster.store.parent):
            folder.mkdir(parents=True)
        # each node starts with the FLOPs and latency tables this session has (not its checkpoints)
        seed = Path(os.environ.get("ABLATE_CACHE_DIR", root / "no-cache"))
        tables = [str(p) for p in seed.glob("*.json")]
        for table in tables:
            shutil.copy(table, cluster.caches[HEAD_IP])

        node = ["--block", "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats",
                "--object-store-memory", str(80 * 1024 * 1024)]
        auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster.token}
        head_log = cluster.start("head", [
            "ip", "netns", "exec", head_ns, str(BIN / "ray"), "start", "--head", "--node-ip-address", HEAD_IP,
            "--port", str(GCS_PORT), "--include-dashboard", "false", "--temp-dir", str(temp_dirs[0]), *node,
        ], cluster.env(root / "head-home", ABLATE_CACHE_DIR=str(cluster.caches[HEAD_IP]), **auth))
        cluster.server_log = cluster.start("server", [
            "ip", "netns", "exec", head_ns, str(BIN / "python"), "-m", "ablate", "server", "--host", HEAD_IP,
            "--port", str(SERVER_PORT), "--workers", "1", "--backend-store-uri", f"sqlite:///{cluster.store}",
        ], cluster.env(root / "server-home"))
        cluster.deadline = time.monotonic() + STARTUP_S
        _wait_for(head_log, "Ray runtime started", cluster.procs["head"], cluster.deadline)
        private = f"mount -t tmpfs ablate-runs {cluster.runs} && mount -t tmpfs ablate-cache {cluster.caches[WORKER_IP]}"
        if tables:
            private += f" && cp {' '.join(tables)} {cluster.caches[WORKER_IP]}"
        worker_log = cluster.start("worker", [
            "ip", "netns", "exec", worker_ns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"{private} && exec {BIN / 'ray'} start --address {cluster.address} --node-ip-address {WORKER_IP} "
            f"--temp-dir {temp_dirs[1]} {' '.join(node)}",
        ], cluster.env(root / "worker-home", ABLATE_CACHE_DIR=str(cluster.caches[WORKER_IP]), **auth))
        _wait_for(worker_log, "Ray runtime started", cluster.procs["worker"], cluster.deadline)
        yield cluster
    finally:
        _stop(cluster, (head_ns, worker_ns), temp_dirs)


def _artifact(store: Path, run_id: str, path: str) -> Path:
    """A file the server stored for a run (its artifacts folder sits beside the sqlite file)."""
    (found,) = store.parent.glob(f"mlartifacts/**/{run_id}/artifacts/{path}")
    return found


def test_a_study_spans_two_nodes_that_share_no_files(cluster: Cluster, tiny_data: Path) -> None:
    study = write_study(
        cluster.root / "study.yaml", tiny_data, name="two_nodes", trials=[], seeds=[0, 1],
        pretrain=[{"name": "city"}], zoo=[{"name": "b0", "config": str(B0_CONFIG), "decoder": "city"}],
        budget={"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        resources={"gpus_per_trial": 0, "cpus_per_trial": 1, "retries": 0})
    common = ["--address", cluster.address, "--runs-dir", str(cluster.runs), "--dispatcher", "ray"]

    # a store on the head's disk cannot take runs from the other machine: refused before anything runs
    local = cluster.root / "local.db"
    refused = cluster.ablate("run", str(study), "--tracking-uri", f"sqlite:///{local}", *common)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "--tracking-uri: the Ray cluster has 2 nodes" in refused.stderr and "ablate server" in refused.stderr
    assert not local.exists()

    uri = cluster.wait_for_server()
    credentials = cluster.store.parent / "mlflow-credentials"  # made by the server, 0600, beside the store
    # uvicorn names the URI before `ablate server` prints its login hint: wait for the hint itself
    _wait_for(cluster.server_log, f"credentials in {credentials}", cluster.procs["server"], cluster.deadline)
    ran = cluster.ablate("run", str(study), "--tracking-uri", uri, "--credentials", str(credentials), "--json", *common)
    assert ran.returncode == 0, ran.stderr[-5000:]
    trials = json.loads(ran.stdout)["trials"]
    assert [(t["name"], t["state"]) for t in trials] == [
        ("pretrain-city", "FINISHED"), ("b0", "FINISHED"), ("b0", "FINISHED")], [t["error"] for t in trials]

    client = MlflowClient(f"sqlite:///{cluster.store}")  # the server's own store, read directly
    runs = {t["trial_id"]: client.get_run(t["run_id"]) for t in trials}
    records = {k: tracking.TrialRun.from_mlflow(r) for k, r in runs.items()}
    pretrain = records[trials[0]["trial_id"]]
    rows = [records[t["trial_id"]] for t in trials[1:]]
    assert {r.node for r in records.values()} == {HEAD_IP, WORKER_IP}
    assert {r.node for r in rows} == {HEAD_IP, WORKER_IP}  # one transfer row per node ...
    events = ran.stderr.splitlines()

    def event(kind: str, trial_id: str) -> int:
        return next(i for i, line in enumerate(events) if line.startswith(kind) and f"[{trial_id}]" in line)

    started = [event("start", r.trial_id) for r in rows]
    assert max(started) < min(event("finished", r.trial_id) for r in rows)  # ... both started before either ended

    path, digest = pretrain.stored_checkpoint
    stored = _artifact(cluster.store, pretrain.run_id, path)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest

    for row in rows:
        config = _artifact(cluster.store, row.run_id, "config.py").read_text()
        (load_from,) = [line.split("=", 1)[1].strip().strip("'\"") for line in config.splitlines()
                        if line.startswith("load_from")]
        log = "".join(p.read_text() for p in
                      cluster.store.parent.glob(f"mlartifacts/**/{row.run_id}/artifacts/logs/*.log"))
        assert f"Load checkpoint from {load_from}" in log
        if row.node == pretrain.node:  # its best.pth is on this node's disk
            assert load_from == str(cluster.runs / "two_nodes" / pretrain.trial_id / "best.pth")
        else:  # not here: downloaded from the server into this node's cache, checksum verified
            assert load_from == str(cluster.caches[row.node] / "checkpoints" / pretrain.run_id / digest[:16] / path)
    # the head's runs folder holds only what trained on the head
    on_head = {p.name for p in (cluster.runs / "two_nodes").iterdir()}
    assert on_head == {r.trial_id for r in records.values() if r.node == HEAD_IP}

    # the password reached the workers on both nodes (their runs wrote to the server) and nothing recorded it:
    # not the runs, the store, its artifacts, nor a log of ablate, the server or Ray on either node
    password = read_credentials_file(credentials).password.encode()
    searched = [p for folder in (cluster.runs, cluster.store.parent, *cluster.temp_dirs) for p in folder.rglob("*")
                if p.is_file() and not p.is_symlink() and p != credentials]
    searched += list(cluster.root.glob("*.log"))
    assert [str(p) for p in searched if password in p.read_bytes()] == []
    assert password.decode() not in ran.stdout + ran.stderr
