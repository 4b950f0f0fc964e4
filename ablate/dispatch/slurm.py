"""Trials as Slurm jobs, submitted with submitit: `--dispatcher slurm`.

Only placement lives here, as for Ray: what a trial's job asks for (its sbatch options), submit,
collect ended jobs, cancel. Which trial goes next, retries and dependents are the scheduler's
(`ablate.dispatch.scheduler`); where and when a job runs is Slurm's. The dispatcher reports a pool
without limit, so every ready trial is queued at once unless `resources.max_concurrent` caps the
jobs ablate keeps queued.

A job's files (submitit's pickles, each task's stdout/stderr) live in `<work dir>/slurm`, on the
filesystem the compute nodes share. The job records its id on the trial's run
(`ablate.slurm_job_id`), and submitit names its pickles by it: a driver started again after it was
stopped (Ctrl-C, a dropped SSH session, kill -9) finds a trial's jobs there and in the store, and
re-attaches to one still queued or running instead of submitting the trial again. Stopping the
driver leaves its jobs running (`cancel_on_exit` cancels them instead).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ablate.dispatch.protocol import Capacity, Completion, Resources, RunContext
from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.util.text import one_line

JOB_FOLDER = "slurm"  # inside a trial's work dir
UNBOUNDED = 1e6  # GPUs and CPUs the pool reports: Slurm queues what does not fit now
_REFRESH_S = 5.0  # at most this often the job states are read with sacct


class SlurmOptions(Protocol):
    """The study's `slurm:` block (`ablate.study.slurm_schema.SlurmSpec`), as read here."""

    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None
    mem_per_gpu: str | None
    mem: str | None
    setup: list[str]
    extra: Mapping[str, str | int | bool]
    signal_s: int
    requeue: bool

    @property
    def minutes(self) -> int | None: ...


@dataclass(frozen=True)
class _Defaults:
    """Stands in for a study without a `slurm:` block."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    mem_per_gpu: str | None = None
    mem: str | None = None
    setup: tuple[str, ...] = ()
    extra: Mapping[str, str | int | bool] = dataclasses.field(default_factory=dict)
    signal_s: int = 120
    requeue: bool = True
    minutes: int | None = None


def placement(
    spec: TrialSpec, gpus_per_trial: float = 1.0, cpus_per_trial: float | None = None
) -> tuple[int, int, int]:
    """(tasks, GPUs per task, CPUs per task) of a trial's job: one task per worker, whole GPUs
    (a fraction of a GPU cannot be asked of Slurm: it is one GPU)."""
    gpus = gpus_per_trial if spec.gpus_per_worker is None else spec.gpus_per_worker
    cpus = cpus_per_trial if spec.cpus_per_worker is None else spec.cpus_per_worker
    return spec.workers, math.ceil(gpus) if gpus else 0, max(1, math.ceil(cpus or 1))


def sbatch_options(
    spec: TrialSpec, options: Any = None, gpus_per_trial: float = 1.0, cpus_per_trial: float | None = None
) -> dict[str, Any]:
    """The sbatch options of a trial's job (`ablate plan --dispatcher slurm` shows them)."""
    options = options or _Defaults()
    tasks, gpus, cpus = placement(spec, gpus_per_trial, cpus_per_trial)
    out: dict[str, Any] = {"ntasks": tasks, "cpus-per-task": cpus}
    if tasks > 1:
        out["nodes"] = f"1-{tasks}"  # on one node where it fits, across nodes where it does not
    if gpus:
        out["gpus-per-task"] = gpus
    for key in ("partition", "account", "qos", "constraint", "mem", "mem_per_gpu"):
        value = getattr(options, key)
        if value is not None:
            out[key.replace("_", "-")] = value
    if options.minutes is not None:
        out["time"] = options.minutes
    out["requeue" if options.requeue else "no-requeue"] = True
    out.update(dict(options.extra))
    return out


@dataclass
class _Flight:
    spec: TrialSpec
    attempt: int
    job: Any  # submitit.SlurmJob
    started: float


class SlurmDispatcher:
    """Each attempt of a trial is one Slurm job (of one task per DDP worker)."""

    def __init__(
        self,
        *,
        options: SlurmOptions | None = None,
        gpus_per_trial: float = 1.0,
        cpus_per_trial: float | None = None,
        max_concurrent: int | None = None,
        cancel_on_exit: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.say = say or (lambda line: None)
        self.options: Any = options or _Defaults()
        self.gpus_per_trial = gpus_per_trial
        self.cpus_per_trial = cpus_per_trial
        self.max_concurrent = max_concurrent
        self.cancel_on_exit = cancel_on_exit
        self.partition: str | None = None
        self.left_running: list[str] = []  # job ids still queued or running when the driver stopped
        self.reattached: list[str] = []  # job ids of an earlier driver this one waited for
        self._flights: dict[str, _Flight] = {}  # trial id -> its job
        self._failed: list[Completion] = []  # submissions sbatch refused
        self._refreshed = 0.0
        self._time_limit = "INFINITE"
        self._gpus = True  # whether the partition has GPUs (a one-process trial trains on a CPU without)

    def check(self) -> str:
        """Refuse an unknown partition or account before anything is submitted; the partition used."""
        from ablate.dispatch.slurm_cluster import check_names

        self.partition = check_names(self.options.partition, self.options.account)
        return self.partition

    # -- the Dispatcher protocol ---------------------------------------------------------------
    def open(self) -> Capacity:
        from ablate.dispatch.slurm_cluster import default_time, has_gpus

        partition = self.check()
        self._time_limit = default_time(partition)
        self._gpus = has_gpus(partition)
        self._flights, self._failed = {}, []
        return Capacity(Resources(UNBOUNDED, UNBOUNDED), trials=self.max_concurrent)

    def _placement(self, spec: TrialSpec) -> tuple[int, int, int]:
        """As `placement`; on a partition without GPUs a one-process trial asks for none (it
        trains on the CPU, as on a Ray cluster without GPUs)."""
        tasks, gpus, cpus = placement(spec, self.gpus_per_trial, self.cpus_per_trial)
        return tasks, gpus if self._gpus or tasks > 1 else 0, cpus

    def demand(self, spec: TrialSpec) -> Resources:
        tasks, gpus, cpus = self._placement(spec)
        return Resources(float(gpus * tasks), float(cpus * tasks))

    def _executor(self, spec: TrialSpec) -> Any:
        import submitit

        executor = submitit.SlurmExecutor(folder=spec.work_dir.resolve() / JOB_FOLDER, max_num_timeout=3)
        sbatch = sbatch_options(spec, self.options)  # `spec` is placed: its own GPUs and CPUs per worker
        sbatch.setdefault("time", self._time_limit)  # submitit's own default is five minutes
        executor.update_parameters(
            job_name=f"ablate-{spec.study}-{spec.name}"[:120],
            signal_delay_s=self.options.signal_s,
            setup=list(self.options.setup),
            additional_parameters=sbatch,
        )
        return executor

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        from ablate.dispatch.slurm_job import SlurmTrial

        tasks, gpus, cpus = self._placement(spec)
        placed = dataclasses.replace(spec, gpus_per_worker=float(gpus), cpus_per_worker=float(cpus))
        job = self._reattach(spec, context) if attempt == 1 else None
        if job is None:
            try:
                job = self._executor(placed).submit(SlurmTrial(), placed, context, attempt)
            except Exception as exc:  # sbatch refused it (resources no node has, a QOS limit, ...)
                result = TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FAILED, error=one_line(exc))
                self._failed.append(Completion(spec, result, attempt))
                return
        self._flights[spec.trial_id] = _Flight(spec, attempt, job, time.time())

    def _reattach(self, spec: TrialSpec, context: RunContext) -> Any:
        """The trial's job an earlier driver submitted, if it is still queued or running."""
        import submitit

        from ablate.dispatch.slurm_cluster import live_jobs

        folder = spec.work_dir.resolve() / JOB_FOLDER
        ids = {p.name.split("_")[0] for p in folder.glob("*_submitted.pkl")} if folder.exists() else set()
        ids |= _store_job_ids(context, spec.trial_id)
        live = live_jobs(sorted(ids))
        if not live:
            return None
        job_id = max(live, key=lambda j: (len(j), j))
        self.reattached.append(job_id)
        self.say(f"re-attached: {spec.label} is Slurm job {job_id} ({live[job_id].lower()}), submitted earlier")
        return submitit.SlurmJob(folder=folder, job_id=job_id, tasks=(0,))

    def poll(self, timeout: float | None = None) -> list[Completion]:
        """Jobs that ended within `timeout` seconds (None: wait for one)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            out, self._failed = self._failed, []
            out += self._ended()
            if out or not self._flights:
                return out
            if deadline is not None and time.monotonic() >= deadline:
                return []
            time.sleep(0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic())))

    def _ended(self) -> list[Completion]:
        if time.monotonic() - self._refreshed > _REFRESH_S:  # a job that died without a result shows in sacct
            import submitit

            submitit.SlurmJob.watcher.update()
            self._refreshed = time.monotonic()
        out = []
        for trial_id, flight in list(self._flights.items()):
            if not flight.job.done():
                continue
            del self._flights[trial_id]
            out.append(Completion(flight.spec, self._result(flight), flight.attempt))
        return out

    @staticmethod
    def _result(flight: _Flight) -> TrialResult:
        spec = flight.spec
        try:
            result = flight.job.result()
        except Exception as exc:  # the job died outside the trial (killed, out of memory, cancelled, ...)
            return TrialResult(
                spec.trial_id,
                spec.name,
                spec.seed,
                TrialState.FAILED,
                error=f"Slurm job {flight.job.job_id}: {one_line(exc)}",
                duration_s=time.time() - flight.started,
            )
        if not isinstance(result, TrialResult):
            return TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FAILED, error="the job returned nothing")
        return result

    def cancel(self, trial_id: str) -> None:
        """With `cancel_on_exit`, scancel the trial's job; otherwise it keeps running (and is noted)."""
        flight = self._flights.pop(trial_id, None)
        if flight is None:
            return
        if self.cancel_on_exit:
            flight.job.cancel(check=False)
        else:
            self.left_running.append(str(flight.job.job_id))

    def close(self) -> None:
        for trial_id in list(self._flights):
            self.cancel(trial_id)


def _store_job_ids(context: RunContext, trial_id: str) -> set[str]:
    """Job ids the trial's runs carry (`ablate.slurm_job_id`)."""
    from ablate.tracking import RunStore
    from ablate.tracking import tags as T

    runs = RunStore.open(context.tracking_uri).find_trial_runs(context.experiment_id, trial_id)
    return {run.tags[T.SLURM_JOB_ID] for run in runs if run.tags.get(T.SLURM_JOB_ID)}
