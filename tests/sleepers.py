"""Sleep-only stand-ins for training, run inside Ray workers (so kept light to import): placement
is under test, not training. A trial of several workers is a real Ray Train job."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ablate.dispatch.protocol import RunContext
from ablate.trial.ranks import WorkerFailed, record_failure
from ablate.trial.spec import TrialResult, TrialSpec, TrialState


def explode(rank: int) -> None:
    raise ValueError(f"boom on rank {rank}")


def rank_sleeper(config: dict[str, Any]) -> None:
    """One Ray Train worker of a sleep-only trial: where (GPUs, rendezvous port) and when it ran.
    It waits until every worker of every DDP trial of the test has started, so those trials
    provably ran at the same time."""
    import ray
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    work_dir, ready = Path(config["work_dir"]), Path(config["ready"])
    record = {"rank": rank, "gpus": ray.get_gpu_ids(), "port": os.environ.get("MASTER_PORT"), "start": time.time()}
    (ready / f"{work_dir.name}-{rank}").touch()
    deadline = time.time() + 240
    while len(list(ready.iterdir())) < config["all_ranks"] and time.time() < deadline:
        time.sleep(0.1)
    try:
        if rank == config["fail_rank"]:
            explode(rank)
        time.sleep(config["sleep_s"])
    except ValueError:
        record_failure(work_dir, rank)  # as `train_rank` does
        raise
    finally:
        record["end"] = time.time()
        (work_dir / f"rank{rank}.json").write_text(json.dumps(record))


def placed(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Sleep-only trainable (placement is under test, not training); several workers run as a
    real Ray Train job."""
    import ray

    done = dict(trial_id=spec.trial_id, name=spec.name, seed=spec.seed)
    if spec.workers == 1:
        start = time.time()
        time.sleep(spec.params["sleep_s"])
        record = {"rank": 0, "gpus": ray.get_gpu_ids(), "start": start, "end": time.time()}
        (spec.work_dir / "rank0.json").write_text(json.dumps(record))
        return TrialResult(state=TrialState.FINISHED, **done)
    try:
        from ablate.dispatch.workers import run_on_workers

        run_on_workers(spec, rank_sleeper, {"work_dir": str(spec.work_dir), "sleep_s": spec.params["sleep_s"],
                                            "fail_rank": spec.params.get("fail_rank", -1), "ready": spec.params["ready"],
                                            "all_ranks": spec.params["all_ranks"]})
    except WorkerFailed as exc:
        (spec.work_dir / "failure.txt").write_text(f"{exc}\n{exc.trace}")
        return TrialResult(state=TrialState.FAILED, error=str(exc), **done)
    return TrialResult(state=TrialState.FINISHED, **done)
