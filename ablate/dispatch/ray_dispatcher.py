"""Trials as Ray tasks, one (or a fraction of a) GPU each, dependencies first, longest first.

The driver keeps the schedule itself: it submits only as many trials as there are slots, so the
order it chooses (ready trials by estimated cost, descending) is the order they start, and a
trial that fails is retried up to `retries` times while all others go on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

# Keep an embedded Ray on loopback (Ray otherwise advertises the machine's external address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ablate.dispatch.base import EventSink, RunContext  # noqa: E402
from ablate.trial.spec import TrialResult, TrialSpec, TrialState  # noqa: E402

StartSink = Callable[[TrialSpec, int], None]


def train_on_assigned_device(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Runs inside a Ray worker: train on the GPU Ray assigned (or the CPU)."""
    import ray

    from ablate.trial.execute import execute_trial

    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    return execute_trial(
        spec, context.tracking_uri, context.experiment_id, context.parent_run_id,
        extra_tags={"ablate.gpu_ids": ",".join(gpu_ids) or "none", "ablate.attempt": str(attempt)},
    )


Trainable = Callable[[TrialSpec, RunContext, int], TrialResult]


def critical_path_costs(trials: Sequence[TrialSpec]) -> dict[str, float]:
    """Each trial's cost plus the costliest chain of trials waiting on it.

    Sorting ready trials by this is longest-first for independent trials, and starts a
    pretraining whose dependents are long before an equally long trial nobody waits for.
    """
    children: dict[str, list[TrialSpec]] = {t.trial_id: [] for t in trials}
    for trial in trials:
        for dep in trial.depends_on:
            if dep in children:
                children[dep].append(trial)
    memo: dict[str, float] = {}

    def chain(trial: TrialSpec) -> float:
        if trial.trial_id not in memo:
            memo[trial.trial_id] = trial.cost + max((chain(c) for c in children[trial.trial_id]), default=0.0)
        return memo[trial.trial_id]

    return {t.trial_id: chain(t) for t in trials}


@dataclass
class _Slot:
    spec: TrialSpec
    attempt: int
    started: float


class RayDispatcher:
    """Dispatch trials on a local (embedded) Ray or an existing cluster (`address`)."""

    def __init__(
        self,
        *,
        address: Optional[str] = None,
        gpus_per_trial: float = 1.0,
        cpus_per_trial: Optional[float] = None,
        max_concurrent: Optional[int] = None,
        retries: int = 1,
        num_cpus: Optional[int] = None,
        num_gpus: Optional[int] = None,
        on_start: Optional[StartSink] = None,
        on_poll: Optional[Callable[[], None]] = None,
        poll_s: float = 0.5,
        trainable: Optional["Trainable"] = None,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.gpus_per_trial = gpus_per_trial
        self.cpus_per_trial = cpus_per_trial
        self.max_concurrent = max_concurrent
        self.retries = retries
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.on_start = on_start
        self.on_poll = on_poll
        self.poll_s = poll_s
        self.trainable = trainable or train_on_assigned_device
        self._started_ray = False

    # -- Ray lifecycle ------------------------------------------------------------------------
    def _connect(self) -> Any:
        import ray

        if ray.is_initialized():
            return ray
        if self.address:
            # `ray start` clusters (Ray >= 2.60) require token auth; the token lives in ~/.ray.
            if "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").exists():
                os.environ["RAY_AUTH_MODE"] = "token"
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(
                address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                include_dashboard=False, log_to_driver=False,
            )
            self._started_ray = True
        return ray

    def close(self) -> None:
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False

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

    # -- a pool of slots: submit trials, collect final results ----------------------------------
    def open(self) -> int:
        """Connect and return how many trials can run at once."""
        ray = self._connect()
        request, slots = self.resources()
        self._remote = ray.remote(max_retries=0)(self.trainable).options(**request)
        self._running: dict[Any, _Slot] = {}
        self._contexts: dict[str, RunContext] = {}
        self._attempts: dict[str, int] = {}
        return slots

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def submit(self, spec: TrialSpec, context: RunContext) -> None:
        attempt = self._attempts.get(spec.trial_id, 0) + 1
        self._attempts[spec.trial_id] = attempt
        self._contexts[spec.trial_id] = context
        ref = self._remote.remote(spec, context, attempt)
        self._running[ref] = _Slot(spec, attempt, time.time())
        if self.on_start is not None:
            self.on_start(spec, attempt)

    def poll(self, timeout: Optional[float] = None) -> list[tuple[TrialSpec, TrialResult]]:
        """Final results that arrived within `timeout`; failures within `retries` are resubmitted."""
        import ray

        if not self._running:
            return []
        finished, _ = ray.wait(list(self._running), num_returns=1, timeout=self.poll_s if timeout is None else timeout)
        if self.on_poll is not None:
            self.on_poll()
        out: list[tuple[TrialSpec, TrialResult]] = []
        for ref in finished:
            slot = self._running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # the worker died (OOM-killed, node lost, ...)
                result = TrialResult(slot.spec.trial_id, slot.spec.name, slot.spec.seed, TrialState.FAILED,
                                     error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                                     duration_s=time.time() - slot.started)
            if result.state is TrialState.FAILED and slot.attempt <= self.retries:
                self.submit(slot.spec, self._contexts[slot.spec.trial_id])  # resumes from its checkpoint
                continue
            out.append((slot.spec, result))
        return out

    def cancel_all(self) -> None:
        import ray

        for ref in getattr(self, "_running", {}):
            ray.cancel(ref, force=True)
        self._running = {}

    # -- a whole study: dependencies first, then longest first ---------------------------------
    def run(
        self, trials: Sequence[TrialSpec], context: RunContext, on_result: Optional[EventSink] = None
    ) -> list[TrialResult]:
        if not trials:
            return []
        slots = self.open()
        ids = {t.trial_id for t in trials}
        priority = critical_path_costs(trials)
        pending = list(trials)
        done: dict[str, TrialResult] = {}
        started: set[str] = set()
        results: list[TrialResult] = []

        def finish(spec: TrialSpec, result: TrialResult) -> None:
            done[spec.trial_id] = result
            results.append(result)
            if on_result is not None:
                on_result(spec, result)

        try:
            while pending or self.in_flight:
                for spec in list(pending):  # dependents of a finally failed trial fail unrun
                    broken = [d for d in spec.depends_on if d in done and not done[d].state.is_done]
                    if broken:
                        pending.remove(spec)
                        finish(spec, TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FAILED,
                                                 error=f"dependency {broken[0]} failed"))
                ready = [s for s in pending if all(d in done or d not in ids for d in s.depends_on)]
                ready.sort(key=lambda s: priority[s.trial_id], reverse=True)
                while ready and self.in_flight < slots:
                    spec = ready.pop(0)
                    pending.remove(spec)
                    started.add(spec.trial_id)
                    self.submit(spec, context)
                if not self.in_flight:
                    if pending:
                        raise RuntimeError("no trial can start: circular dependency")
                    break
                for spec, result in self.poll():
                    finish(spec, result)
        except BaseException:
            self.cancel_all()
            raise
        finally:
            self.close()
        return results
