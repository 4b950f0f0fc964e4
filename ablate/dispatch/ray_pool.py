"""Trials as Ray tasks, one (or a fraction of a) GPU each, on an embedded Ray or a cluster.

Only placement lives here: connect, turn the cluster's resources into slots, run a submitted trial
as a task, collect ended ones with `ray.wait`, cancel, shut down. Which trial goes next and what a
failure means is the scheduler's business (`ablate.dispatch.scheduler`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from ablate.dispatch.protocol import Completion, RunContext, Trainable
from ablate.trial.spec import TrialResult, TrialSpec, TrialState

# Read by Ray when it is imported: 0 keeps every Ray process and address on 127.0.0.1 (Ray
# otherwise advertises, and rewrites 127.0.0.1 to, the machine's external address).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def train_on_assigned_device(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Runs inside a Ray worker: train on the GPU Ray assigned (or the CPU)."""
    import ray

    from ablate.tracking import tags
    from ablate.trial.train import train_trial

    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    return train_trial(spec, context.tracking_uri, context.experiment_id, context.parent_run_id,
                       extra_tags={tags.GPU_IDS: ",".join(gpu_ids) or "none", tags.ATTEMPT: str(attempt)})


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


def _token_auth_for_cluster() -> None:
    """`ray start` clusters check a token; a client only sends one when RAY_AUTH_MODE says so."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    has_token = (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                 or (Path.home() / ".ray" / "auth_token").exists())
    if has_token:
        os.environ["RAY_AUTH_MODE"] = "token"


@dataclass
class _Flight:
    spec: TrialSpec
    attempt: int
    started: float


class RayDispatcher:
    """A slot pool on a local (embedded) Ray, or on an existing cluster (`address`)."""

    def __init__(
        self,
        *,
        address: Optional[str] = None,
        gpus_per_trial: float = 1.0,
        cpus_per_trial: Optional[float] = None,
        max_concurrent: Optional[int] = None,
        num_cpus: Optional[int] = None,
        num_gpus: Optional[int] = None,
        trainable: Optional[Trainable] = None,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.gpus_per_trial = gpus_per_trial
        self.cpus_per_trial = cpus_per_trial
        self.max_concurrent = max_concurrent
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.trainable = trainable or train_on_assigned_device
        self._started_ray = False
        self._remote: Any = None
        self._flights: dict[Any, _Flight] = {}  # object ref -> what it runs
        self._refs: dict[str, Any] = {}  # trial id -> object ref

    # -- Ray lifecycle ------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.address:
            _token_auth_for_cluster()
            # A cluster on this machine's loopback is only reachable with the loopback setting.
            with (_loopback_ray() if is_loopback(self.address) else contextlib.nullcontext()):
                import ray

                if not ray.is_initialized():
                    ray.init(address=self.address, log_to_driver=False)
            return ray
        with _loopback_ray():
            import ray

            if not ray.is_initialized():
                ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                         include_dashboard=False, log_to_driver=False)
                self._started_ray = True
        return ray

    def resources(self) -> tuple[dict[str, float], int]:
        """Per-trial Ray resources and how many trials fit at once."""
        ray = self._connect()
        total = ray.cluster_resources()
        gpus = float(total.get("GPU", 0))
        cpus = float(total.get("CPU", 1))
        if gpus > 0 and self.gpus_per_trial > 0:
            per_cpu = self.cpus_per_trial or 1.0
            request = {"num_gpus": self.gpus_per_trial, "num_cpus": per_cpu}
            slots = min(int(gpus // self.gpus_per_trial), int(cpus // per_cpu) or 1)
        else:  # a CPU-only machine: trials take CPU slots (by default all of them: one at a time)
            per_cpu = self.cpus_per_trial or cpus
            request = {"num_gpus": 0, "num_cpus": per_cpu}
            slots = int(cpus // per_cpu)
        slots = max(1, slots)
        if self.max_concurrent:
            slots = min(slots, self.max_concurrent)
        return request, slots

    # -- the Dispatcher protocol ---------------------------------------------------------------
    def open(self) -> int:
        """Connect (starting an embedded Ray if no address is given); the number of slots."""
        ray = self._connect()
        request, slots = self.resources()
        self._remote = ray.remote(max_retries=0)(self.trainable).options(**request)
        self._flights, self._refs = {}, {}
        return slots

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        ref = self._remote.remote(spec, context, attempt)
        self._flights[ref] = _Flight(spec, attempt, time.time())
        self._refs[spec.trial_id] = ref

    def poll(self, timeout: Optional[float] = None) -> list[Completion]:
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
                result = TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FAILED,
                                     error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                                     duration_s=time.time() - flight.started)
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
