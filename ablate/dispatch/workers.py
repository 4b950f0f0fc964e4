"""A trial of several workers: one DDP job through Ray Train, started from the trial's Ray task.

The task builds a `TorchTrainer` with one worker per GPU (or per CPU, on the gloo backend). Ray
Train places the workers with one placement group (PACK: on as few machines as possible), so a
trial gets all its GPUs at once or waits for them, and sets up the torch process group before the
workers start: rank 0 binds a free port of its own machine for the rendezvous (`MASTER_PORT`),
so DDP trials side by side on one machine never share one. Each worker then runs the same
mmengine Runner (`ablate.trial.train.train_rank`); mmengine sees the process group and does not
start one of its own. Ray Train's own checkpoints and reports are not used: mmengine checkpoints
into the trial's work dir, which is what a resumed or retried trial loads.

Ray Train itself retries nothing (`max_failures=0`): a failed worker fails the attempt, and the
study's `resources.retries` decide what happens next, as for any trial.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from ablate.trial.spec import TrialSpec

RAY_TRAIN_DIR = "ray_train"  # Ray Train's own run records, inside the trial's work dir
# Ray Train moves its workers into a folder of its own by default; trial workers keep the
# directory every other trial runs in, so relative paths in a config mean the same thing.
_CHDIR_ENV = "RAY_CHDIR_TO_TRIAL_DIR"


def backend(spec: TrialSpec) -> str:
    """nccl for CUDA GPUs, gloo otherwise (CPU workers, or the logical GPUs of a test cluster)."""
    if not spec.gpus_per_worker:
        return "gloo"
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def run_on_workers(spec: TrialSpec, loop: Callable[[dict[str, Any]], None], config: dict[str, Any]) -> None:
    """Run `loop(config)` on `spec.workers` Ray Train workers as one torch process group; blocks.

    `spec.gpus_per_worker` / `cpus_per_worker` are what each worker holds (the dispatcher fills
    them in). A failed worker raises what `ablate.trial.ranks.failure_of` makes of it.
    """
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ablate.trial.ranks import clear_failures, failure_of

    try:
        from ray.train import WorkerGroupError
    except ImportError:  # Ray Train v1: failures arrive as plain errors
        WorkerGroupError = ()  # type: ignore[assignment,misc]

    os.environ[_CHDIR_ENV] = "0"
    gpus = float(spec.gpus_per_worker or 0.0)
    per_worker = {"CPU": float(spec.cpus_per_worker or 1.0), **({"GPU": gpus} if gpus else {})}
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    clear_failures(spec.work_dir, spec.workers)
    trainer = TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=spec.workers, use_gpu=gpus > 0, resources_per_worker=per_worker, placement_strategy="PACK"
        ),
        torch_config=TorchConfig(backend=backend(spec)),
        run_config=RunConfig(
            name=f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}",
            storage_path=str((spec.work_dir / RAY_TRAIN_DIR).resolve()),
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    try:
        trainer.fit()
    except WorkerGroupError as exc:
        raise failure_of(spec.work_dir, exc.worker_failures, spec.workers) from None


def _train_rank(config: dict[str, Any]) -> None:
    """One Ray Train worker of a trial: the trial's Runner on this process's share."""
    import ray

    from ablate.tracking import tags
    from ablate.trial.train import train_rank

    if config.get("login") is not None:  # the tracking server's credentials, as the trial's task has them
        os.environ.update(ray.get(config["login"]))
    gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids()) or "none"
    train_rank(
        config["spec"],
        config["tracking_uri"],
        config["experiment_id"],
        config["run_id"],
        config["resume"],
        placement={tags.GPU_IDS: gpu_ids},
    )


def launch_on_workers(spec: TrialSpec, tracking_uri: str, experiment_id: str, run_id: str, resume: bool) -> None:
    """What `train_trial` calls for a trial of several workers, with its run already open. The
    tracking server's credentials reach the workers as an object reference, so the trainer Ray
    Train may save to the work dir holds no password."""
    import ray

    from ablate.tracking.credentials import credential_environment

    login = credential_environment()
    run_on_workers(
        spec,
        _train_rank,
        dict(
            spec=spec,
            tracking_uri=tracking_uri,
            experiment_id=experiment_id,
            run_id=run_id,
            resume=resume,
            login=ray.put(login) if login else None,
        ),
    )
