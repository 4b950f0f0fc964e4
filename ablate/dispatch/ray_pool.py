"""Trials as Ray tasks on an embedded Ray or a cluster: one (or a fraction of a) GPU each, or
several GPUs for a DDP trial.

Only placement lives here: connect, report the cluster's GPUs and CPUs, say what each trial holds,
run a submitted trial as a task, collect ended ones with `ray.wait`, cancel, shut down. Which
trial goes next and what a failure means is the scheduler's business (`ablate.dispatch.scheduler`).

A one-process trial's task holds its GPU(s) and CPUs itself. A trial of several workers runs as a
task that holds nothing and starts a Ray Train job (`ablate.dispatch.workers`): its workers hold
the GPUs, all reserved at once by one placement group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.dispatch.protocol import Capacity, Completion, Resources, RunContext, Trainable
from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.util.logs import follow as follow_library_logs
from ablate.util.text import one_line

# Read by Ray when it is imported: 0 keeps every Ray process and address on 127.0.0.1 (Ray
# otherwise advertises, and rewrites 127.0.0.1 to, the machine's external address).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def train_on_assigned_device(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Runs inside a Ray worker: train on the GPU Ray assigned (or the CPU); a trial of several
    workers trains as one DDP job on the Ray Train workers it starts from here."""
    import ray

    from ablate.tracking import tags
    from ablate.trial.train import train_trial

    if spec.workers > 1:
        from ablate.dispatch.workers import launch_on_workers

        return train_trial(
            spec,
            context.tracking_uri,
            context.experiment_id,
            context.parent_run_id,
            extra_tags={tags.ATTEMPT: str(attempt)},
            launch=launch_on_workers,
        )
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    return train_trial(
        spec,
        context.tracking_uri,
        context.experiment_id,
        context.parent_run_id,
        extra_tags={tags.GPU_IDS: ",".join(gpu_ids) or "none", tags.ATTEMPT: str(attempt)},
    )


def is_loopback(address: str) -> bool:
    """Whether a Ray address (host:port, ray://host:port, auto) points at this machine's loopback."""
    from ablate.dispatch.address import parse_ray_address

    host, _ = parse_ray_address(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _loopback_ray() -> Iterator[None]:
    """Ray on 127.0.0.1 for the duration of its start (the processes it spawns keep the setting);
    a value the user set is left alone, and nothing stays set for the rest of the process."""
    ours = LOOPBACK_ENV not in os.environ
    if ours:
        os.environ[LOOPBACK_ENV] = "0"
    try:
        yield
    finally:
        if ours:
            os.environ.pop(LOOPBACK_ENV, None)


@contextlib.contextmanager
def _cluster_ray() -> Iterator[None]:
    """No loopback setting while joining a cluster on other addresses: under it Ray would take
    this machine for 127.0.0.1 and find no node of the cluster there."""
    held = os.environ.pop(LOOPBACK_ENV, None)
    try:
        yield
    finally:
        if held is not None:
            os.environ[LOOPBACK_ENV] = held


def _token_auth_for_cluster() -> None:
    """`ray start` clusters check a token; a client only sends one when RAY_AUTH_MODE says so."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    has_token = (
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (Path.home() / ".ray" / "auth_token").exists()
    )
    if has_token:
        os.environ["RAY_AUTH_MODE"] = "token"


def _logged_in(trainable: Trainable, login: dict[str, str], spec: TrialSpec, context: RunContext, attempt: int) -> Any:
    """A trial's task with the tracking server's credentials in its environment: a cluster's workers
    have their node's, not the driver's. A task argument, not the job's runtime_env, which Ray's
    runtime-env agent writes to its log on every node; nothing a trial records is built from it."""
    os.environ.update(login)
    return trainable(spec, context, attempt)


@dataclass
class _Flight:
    spec: TrialSpec
    attempt: int
    started: float


class RayDispatcher:
    """A GPU/CPU pool on a local (embedded) Ray, or on an existing cluster (`address`).

    `gpus_per_trial` / `cpus_per_trial` are what a trial's process holds when its spec does not
    say (specs planned from a study always do: `resources`); a spec's `workers` multiply them.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        gpus_per_trial: float = 1.0,
        cpus_per_trial: float | None = None,
        max_concurrent: int | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        trainable: Trainable | None = None,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.gpus_per_trial = gpus_per_trial
        self.cpus_per_trial = cpus_per_trial
        self.max_concurrent = max_concurrent
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.trainable = trainable or train_on_assigned_device
        self._started_ray = False
        self._total = Resources()
        self._remote: Any = None
        self._login: dict[str, str] = {}  # the tracking server's credentials, for each task's environment
        self._flights: dict[Any, _Flight] = {}  # object ref -> what it runs
        self._refs: dict[str, Any] = {}  # trial id -> object ref

    # -- Ray lifecycle ------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.address:
            _token_auth_for_cluster()
            # A cluster on this machine's loopback is only reachable with the loopback setting.
            with _loopback_ray() if is_loopback(self.address) else _cluster_ray():
                import ray

                follow_library_logs()  # Ray attached its own stderr handler on import
                if not ray.is_initialized():
                    ray.init(address=self.address, log_to_driver=False)
            return ray
        with _loopback_ray():
            import ray

            follow_library_logs()
            if not ray.is_initialized():
                ray.init(
                    address="local",
                    num_cpus=self.num_cpus,
                    num_gpus=self.num_gpus,
                    include_dashboard=False,
                    log_to_driver=False,
                )
                self._started_ray = True
        return ray

    def nodes(self) -> int:
        """How many machines trials may train on: the cluster's alive nodes (1 for the embedded Ray)."""
        if not self.address:
            return 1
        ray = self._connect()
        return sum(1 for node in ray.nodes() if node.get("Alive"))

    def _per_worker(self, spec: TrialSpec) -> tuple[float, float | None]:
        gpus = self.gpus_per_trial if spec.gpus_per_worker is None else spec.gpus_per_worker
        cpus = self.cpus_per_trial if spec.cpus_per_worker is None else spec.cpus_per_worker
        return gpus, cpus

    def demand(self, spec: TrialSpec) -> Resources:
        """A trial's GPUs and CPUs. Without GPUs in the cluster a one-process trial trains on the
        CPU and takes every CPU unless `cpus_per_trial` says otherwise (one at a time), CPU
        workers take one CPU each; DDP workers that ask for GPUs need GPUs."""
        gpus, cpus = self._per_worker(spec)
        workers = spec.workers
        if (self._total.gpus > 0 or workers > 1) and gpus > 0:
            return Resources(gpus * workers, (cpus or 1.0) * workers)
        if workers > 1:
            return Resources(0.0, (cpus or 1.0) * workers)
        return Resources(0.0, cpus or self._total.cpus)

    def _placed(self, spec: TrialSpec) -> tuple[TrialSpec, dict[str, float]]:
        """The spec as its task runs it (defaults filled in) and the task's own Ray request."""
        need = self.demand(spec)
        if spec.workers == 1:
            return spec, {"num_gpus": need.gpus, "num_cpus": need.cpus}
        placed = dataclasses.replace(
            spec, gpus_per_worker=need.gpus / spec.workers, cpus_per_worker=need.cpus / spec.workers
        )
        return placed, {"num_gpus": 0, "num_cpus": 0}  # it waits; its Ray Train workers hold the trial's share

    # -- the Dispatcher protocol ---------------------------------------------------------------
    def open(self) -> Capacity:
        """Connect (starting an embedded Ray if no address is given); the cluster's GPUs and CPUs."""
        ray = self._connect()
        total = ray.cluster_resources()
        self._total = Resources(float(total.get("GPU", 0)), float(total.get("CPU", 1)))
        from ablate.tracking.credentials import credential_environment

        self._remote = ray.remote(max_retries=0)(_logged_in)
        self._login = credential_environment()
        self._flights, self._refs = {}, {}
        return Capacity(self._total, trials=self.max_concurrent)

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        placed, request = self._placed(spec)
        ref = self._remote.options(**request).remote(self.trainable, self._login, placed, context, attempt)
        self._flights[ref] = _Flight(spec, attempt, time.time())
        self._refs[spec.trial_id] = ref

    def poll(self, timeout: float | None = None) -> list[Completion]:
        import ray

        if not self._flights:
            return []
        refs = list(self._flights)
        ended, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ended and rest:  # others that ended meanwhile come along
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ended += more
        out: list[Completion] = []
        for ref in ended:
            flight = self._flights.pop(ref)
            self._refs.pop(flight.spec.trial_id, None)
            try:
                result = ray.get(ref)
            except Exception as exc:  # the worker died (OOM-killed, node lost, ...)
                spec = flight.spec
                result = TrialResult(
                    spec.trial_id,
                    spec.name,
                    spec.seed,
                    TrialState.FAILED,
                    error=one_line(exc),
                    duration_s=time.time() - flight.started,
                )
            out.append(Completion(flight.spec, result, flight.attempt))
        return out

    def cancel(self, trial_id: str) -> None:
        import ray

        ref = self._refs.pop(trial_id, None)
        if ref is None:
            return
        self._flights.pop(ref, None)
        with contextlib.suppress(Exception):  # it may have ended meanwhile
            ray.cancel(ref, force=True)

    def close(self) -> None:
        for trial_id in list(self._refs):
            self.cancel(trial_id)
        if self._started_ray:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        self._started_ray = False
