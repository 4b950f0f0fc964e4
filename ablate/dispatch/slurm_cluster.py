"""What ablate asks a Slurm cluster itself, through its own clients (sinfo, sacctmgr, squeue): its
partitions and accounts, so a typo is refused before anything is submitted, and which of a trial's
earlier jobs are still queued or running, so a driver started again re-attaches to them.
"""

from __future__ import annotations

import shutil
import subprocess

from ablate.errors import AblateError

# squeue states of a job that will still train (or is training): a new driver waits for it
LIVE_STATES = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SUSPENDED",
    "STAGE_OUT",
    "SIGNALING",
}


class SlurmUnavailable(AblateError):
    """No Slurm cluster answers from this machine."""


def _call(*args: str, timeout: float = 60.0) -> str:
    if shutil.which(args[0]) is None:
        raise SlurmUnavailable(
            f"--dispatcher slurm: `{args[0]}` is not installed here; run ablate on the cluster's login node"
        )
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"--dispatcher slurm: `{' '.join(args)}` did not answer within {timeout:g} s") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SlurmUnavailable(f"--dispatcher slurm: `{args[0]}` failed: {message[-1] if message else done.returncode}")
    return done.stdout


def partitions() -> tuple[list[str], str | None]:
    """(every partition, the default one); sinfo marks the default with a `*`."""
    names: list[str] = []
    default = None
    for line in _call("sinfo", "-h", "-o", "%P").split():
        name = line.strip().rstrip("*")
        if line.strip().endswith("*"):
            default = name
        if name and name not in names:
            names.append(name)
    return names, default


def accounts() -> list[str] | None:
    """Accounts the accounting knows (None where the cluster keeps no accounting)."""
    if shutil.which("sacctmgr") is None:
        return None
    try:
        out = _call("sacctmgr", "-nP", "show", "account", "format=account")
    except SlurmUnavailable:
        return None
    return [line.strip() for line in out.splitlines() if line.strip()]


def check_names(partition: str | None, account: str | None, option: str = "slurm") -> str:
    """Refuse a partition or account the cluster does not have (one line); returns the partition
    jobs go to (the default one when none is named)."""
    names, default = partitions()
    if partition is not None and partition not in names:
        raise AblateError(
            f"{option}.partition: the cluster has no partition '{partition}' (it has: {', '.join(names) or 'none'})"
        )
    known = accounts() if account is not None else None
    if account is not None and known is not None and account not in known:
        raise AblateError(f"{option}.account: the cluster has no account '{account}' (it has: {', '.join(known)})")
    chosen = partition or default
    if chosen is None:
        raise AblateError(f"{option}.partition: the cluster has no default partition; name one")
    return chosen


def live_jobs(job_ids: list[str]) -> dict[str, str]:
    """Of `job_ids`, those still queued or running: job id -> its squeue state."""
    if not job_ids:
        return {}
    out = _call("squeue", "-h", "--me", "-o", "%i|%T")  # `-j` fails outright on ids the controller forgot
    states = {}
    for line in out.splitlines():
        job, _, state = line.strip().partition("|")
        if job in job_ids and state in LIVE_STATES:
            states[job] = state
    return states


def default_time(partition: str) -> str:
    """The time limit a job of `partition` gets when it names none: the partition's default, else
    its maximum (sinfo's `n/a` and `infinite` as sbatch reads them)."""
    out = _call("sinfo", "-h", "-p", partition, "-o", "%L|%l").split()
    default, _, limit = (out[0] if out else "").partition("|")
    for value in (default, limit):
        if value and value != "n/a":
            return "INFINITE" if value == "infinite" else value
    return "INFINITE"


def has_gpus(partition: str) -> bool:
    """Whether any node of `partition` offers GPUs (a `gpu` generic resource)."""
    return any("gpu" in line for line in _call("sinfo", "-h", "-p", partition, "-o", "%G").split())
