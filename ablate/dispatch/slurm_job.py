"""What runs inside a trial's Slurm job: the trial itself, one process per task.

submitit pickles `SlurmTrial` with the trial's spec and runs it on the compute node with the
driver's Python. A job of one task trains like any trial (`ablate.trial.train.train_trial`); a job
of N tasks (`gpus_per_trial` / `workers_per_trial` above 1) is one DDP job: every task joins one
torch process group (submitit's environment gives ranks, master address and port), rank 0 opens
the trial's run and hands its id to the others, and every task runs the same Runner
(`train_rank`), exactly as Ray Train workers do.

Preemption and time limits: the job is requeueable and Slurm signals it `slurm.signal_s` seconds
before its limit; submitit then calls `SlurmTrial.checkpoint`, which saves the Runner's state now,
and requeues the job. A requeued job (that way, or by `scontrol requeue`) runs the trial again:
the store hands it the same unfinished run and the work dir its last checkpoint, so it resumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import submitit
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ablate.dispatch.protocol import RunContext
from ablate.trial.spec import TrialResult, TrialSpec

HOOK = "SlurmPreemptionHook"
_live: dict[str, Any] = {}  # the Runner training in this process, while it trains


@HOOKS.register_module(name=HOOK, force=True)
class SlurmPreemptionHook(Hook):
    """Keeps a handle on the Runner so a preemption signal can save its state mid-training."""

    priority = "LOWEST"

    def before_train(self, runner: Any) -> None:
        _live["runner"] = runner

    def after_train(self, runner: Any) -> None:
        _live.pop("runner", None)


def save_now() -> Path | None:
    """Save the training Runner's state as its CheckpointHook would (`last_checkpoint` names it)."""
    runner = _live.get("runner")
    if runner is None:
        return None
    name = f"iter_{runner.iter}.pth"
    runner.save_checkpoint(runner.work_dir, name)
    path = Path(runner.work_dir) / name
    (Path(runner.work_dir) / "last_checkpoint").write_text(str(path))
    return path


def job_tags(attempt: int) -> dict[str, str]:
    """The job's own facts for the trial's run: which job, how often Slurm requeued it."""
    from ablate.tracking import tags as T

    env = submitit.JobEnvironment()
    return {
        T.ATTEMPT: str(attempt),
        T.SLURM_JOB_ID: str(env.job_id),
        T.SLURM_RESTARTS: os.environ.get("SLURM_RESTART_COUNT", "0"),
    }


class SlurmTrial(submitit.helpers.Checkpointable):
    """One attempt of a trial as a Slurm job (every task of it calls this)."""

    def __call__(self, spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult | None:
        from ablate.trial.train import train_trial

        spec = spec.with_runtime(hooks=(dict(type=HOOK),))
        if spec.workers > 1:
            return _train_tasks(spec, context, attempt)
        return train_trial(
            spec, context.tracking_uri, context.experiment_id, context.parent_run_id, extra_tags=job_tags(attempt)
        )

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on the preemption / time-limit signal, before it requeues the job."""
        save_now()
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _train_tasks(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult | None:
    """One task of a DDP job: rank 0 trains the trial (opening its run), the others its ranks."""
    import torch
    import torch.distributed as dist

    from ablate.dispatch.workers import backend
    from ablate.tracking import tags as T
    from ablate.trial.ranks import clear_failures, failure_of
    from ablate.trial.train import train_rank, train_trial

    env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if spec.gpus_per_worker and torch.cuda.is_available() and torch.cuda.device_count() > env.local_rank:
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group(backend(spec))
    placement = {T.GPU_IDS: os.environ.get("CUDA_VISIBLE_DEVICES", "none") or "none"}
    try:
        if env.rank != 0:
            box: list[Any] = [None, False]
            dist.broadcast_object_list(box, src=0)
            if box[0] is not None:  # rank 0 opened the run
                train_rank(spec, context.tracking_uri, context.experiment_id, box[0], box[1], placement)
            return None
        launched = []

        def launch(spec: TrialSpec, uri: str, experiment_id: str, run_id: str, resume: bool) -> None:
            launched.append(run_id)
            spec.work_dir.mkdir(parents=True, exist_ok=True)
            clear_failures(spec.work_dir, spec.workers)
            dist.broadcast_object_list([run_id, resume], src=0)
            try:
                train_rank(spec, uri, experiment_id, run_id, resume, placement)
            except Exception as exc:
                raise failure_of(spec.work_dir, {0: exc}, spec.workers) from None

        result = train_trial(
            spec,
            context.tracking_uri,
            context.experiment_id,
            context.parent_run_id,
            extra_tags=job_tags(attempt),
            launch=launch,
        )
        if not launched:  # the run never opened: the other ranks must not wait for it
            dist.broadcast_object_list([None, False], src=0)
        return result
    finally:
        dist.destroy_process_group()
