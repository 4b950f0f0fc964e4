"""A real one-node Slurm cluster for the tests: munged, MariaDB, slurmdbd, slurmctld and slurmd, each
with a key, data, ports and state of the test's own (nothing of the machine's own Slurm is touched).

Accounting runs through slurmdbd as on a site's cluster, so `sacct` (which submitit reads job states
with) and `sacctmgr` answer. The clients find the cluster through `SLURM_CONF`, which `running_cluster`
sets for the test process and every process it starts (jobs inherit the environment, as sbatch does).
Up in about ten seconds; every daemon is stopped on the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct")
PARTITION = "debug"
ACCOUNT = "vision"
CPUS = 8  # more than the machine has (config_overrides): trials here mostly wait on each other


def missing() -> str | None:
    """Why no cluster can start here (a program not installed, or not root), or None."""
    absent = [d for d in PROGRAMS if shutil.which(d) is None]
    if absent:
        return (
            "the Slurm test cluster needs " + ", ".join(absent) + " (`make test` installs slurm-wlm, slurmdbd, munge "
            "and mariadb-server with apt-get when run as root)"
        )
    if os.geteuid() != 0:
        return "the Slurm test cluster runs its daemons as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SlurmCluster:
    folder: Path
    conf: Path
    host: str
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job the accounting knows: id, name, state (newest attempt of each)."""
        out = self.run("sacct", "-X", "-n", "-P", "-a", "-o", "JobID,JobName,State", "--starttime", "2000-01-01")
        rows = [line.split("|") for line in out.splitlines() if line.strip()]
        return [dict(id=r[0], name=r[1], state=r[2]) for r in rows]

    def queue(self) -> list[str]:
        """Ids of jobs queued or running now."""
        return [line.strip() for line in self.run("squeue", "-h", "-o", "%i").splitlines() if line.strip()]


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _wait(check, what: str, procs: list[subprocess.Popen], timeout_s: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args[0]} exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen]) -> None:
    """Each daemon's process group, the last started first (slurmd before slurmctld before the
    accounting it reports to); SIGKILL for one that does not stop within 15 s."""
    for proc in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _processes_of(conf: Path) -> list[int]:
    """Processes started for this cluster that outlived its daemons (a job step's slurmstepd, a
    task): they carry its SLURM_CONF in their environment, which nothing else here does."""
    mark = f"SLURM_CONF={conf}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found


def _drain(env: dict[str, str], timeout_s: float = 60.0) -> None:
    """Cancel every job and wait until none is left, even completing, so no step outlives slurmd."""
    subprocess.run(["scancel", "--full", "-u", "root"], env=env, timeout=30, capture_output=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, timeout=30, capture_output=True, text=True)
        if queue.returncode != 0 or not queue.stdout.strip():
            return
        time.sleep(0.5)


@contextlib.contextmanager
def running_cluster(folder: Path) -> Iterator[SlurmCluster]:
    """Start the cluster under `folder`; `SLURM_CONF` points at it until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    host = socket.gethostname().split(".")[0]
    logs = folder / "log"
    for sub in ("log", "ctld", "spool", "db", "run"):
        (folder / sub).mkdir(exist_ok=True)
    ports = dict(ctld=_free_port(), slurmd=_free_port(), dbd=_free_port(), db=_free_port())
    munge_socket, db_socket = folder / "run" / "munge.sock", folder / "run" / "db.sock"
    _write(folder / "munge.key", os.urandom(1024).hex(), 0o600)
    auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket}\n"
    # cred_expire is also how long a requeued job waits before it may start again (default 120 s)
    ctld_auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket},cred_expire=10\n"
    conf = _write(
        folder / "slurm.conf",
        f"""ClusterName=ablate
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports["ctld"]}
SlurmdPort={ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
{ctld_auth}CredType=cred/munge
StateSaveLocation={folder / "ctld"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "run" / "slurmctld.pid"}
SlurmdPidFile={folder / "run" / "slurmd.pid"}
SlurmctldLogFile={logs / "slurmctld.log"}
SlurmdLogFile={logs / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=2
MinJobAge=300
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports["dbd"]}
AccountingStoragePass={munge_socket}
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory=16000 State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""",
    )
    _write(
        folder / "slurmdbd.conf",
        f"""{auth}DbdAddr=127.0.0.1
DbdHost={host}
DbdPort={ports["dbd"]}
SlurmUser=root
PidFile={folder / "run" / "slurmdbd.pid"}
LogFile={logs / "slurmdbd.log"}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["db"]}
StorageUser=root
StorageLoc=slurm_acct_db
""",
        0o600,
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    procs: list[subprocess.Popen] = []

    def start(*args: str, log: str) -> subprocess.Popen:
        with open(logs / log, "ab") as sink:
            proc = subprocess.Popen(list(args), env=env, stdout=sink, stderr=sink, start_new_session=True)
        procs.append(proc)
        return proc

    held = os.environ.get("SLURM_CONF")
    try:
        start("munged", "-F", "--force", f"--key-file={folder / 'munge.key'}", f"--socket={munge_socket}",
              f"--pid-file={folder / 'run' / 'munged.pid'}", f"--seed-file={folder / 'run' / 'munge.seed'}",
              f"--log-file={logs / 'munged.log'}", log="munged.out")
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'db'}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        start("mariadbd", "--no-defaults", f"--datadir={folder / 'db'}", f"--socket={db_socket}",
              f"--port={ports['db']}", "--bind-address=127.0.0.1", "--user=root", "--skip-grant-tables",
              "--innodb-flush-log-at-trx-commit=0", f"--pid-file={folder / 'run' / 'db.pid'}",
              f"--log-error={logs / 'mariadb.log'}", log="mariadb.out")
        _wait(lambda: socket.create_connection(("127.0.0.1", ports["db"]), timeout=1).close() is None, "MariaDB", procs)
        _wait(munge_socket.exists, "munged", procs)
        start("slurmdbd", "-D", log="slurmdbd.out")
        _wait(lambda: socket.create_connection(("127.0.0.1", ports["dbd"]), timeout=1).close() is None,
              "slurmdbd", procs)
        start("slurmctld", "-D", "-i", log="slurmctld.out")
        start("slurmd", "-D", "-N", host, log="slurmd.out")
        cluster = SlurmCluster(folder, conf, host, env)
        os.environ["SLURM_CONF"] = str(conf)
        _wait(lambda: "idle" in cluster.run("sinfo", "-h", "-o", "%t"), "slurmd registering", procs)
        _wait(lambda: "ablate" in cluster.run("sacctmgr", "-nP", "show", "cluster", "format=cluster"),
              "cluster in the accounting", procs)
        cluster.run("sacctmgr", "-i", "add", "account", ACCOUNT)
        cluster.run("sacctmgr", "-i", "add", "user", "root", f"account={ACCOUNT}")
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            _drain(env)
        _stop(procs)
        for pid in _processes_of(conf):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if held is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = held
