"""The processes of a multi-worker (DDP) trial: which one speaks for the trial, and how a
failure on one of them reaches the trial's result.

Only rank 0 writes what belongs to the trial (its MLflow run, `best.pth`, predictions, the
progress file); the others train and evaluate their share. A rank that fails leaves its own
traceback in the work dir (`traceback.rank<N>.txt`), since the job that ran it hands back only
the exception: the earliest one written is the failure (the others usually just lost their peer).

Kept free of torch and mmengine: the driver's side reads these files, and `is_main_rank` asks
torch only when the process has already imported it.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from ablate.errors import TrialPruned
from ablate.util.text import LINE_LIMIT, one_line

RANK_TRACEBACK = "traceback.rank{rank}.txt"


def world_rank() -> int:
    """This process's rank in its torch process group (0 outside one)."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return 0
    return int(dist.get_rank())


def is_main_rank() -> bool:
    """True in a one-process trial, and on rank 0 of a DDP trial."""
    return world_rank() == 0


class WorkerFailed(RuntimeError):
    """A worker of a DDP trial failed: its rank, its error and its traceback."""

    def __init__(self, rank: int | None, world_size: int, summary: str, trace: str) -> None:
        where = f"rank {rank} of {world_size}" if rank is not None else f"one of {world_size} workers"
        super().__init__(f"{summary} ({where})")
        self.rank = rank
        self.world_size = world_size
        self.summary = summary
        self.trace = trace


def record_failure(work_dir: Path, rank: int) -> None:
    """Called in a worker's `except` block: keep its traceback for the trial's result."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / RANK_TRACEBACK.format(rank=rank)).write_text(traceback.format_exc())


def clear_failures(work_dir: Path, world_size: int) -> None:
    """Tracebacks of an earlier attempt must not be taken for this one's."""
    for rank in range(world_size):
        (work_dir / RANK_TRACEBACK.format(rank=rank)).unlink(missing_ok=True)


def _last_line(trace: str) -> str:
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def failure_of(work_dir: Path, errors: Mapping[int, BaseException], world_size: int) -> Exception:
    """The exception a trial ends with when its workers failed with `errors` (rank -> exception).

    A pruned rank prunes the trial; otherwise the first rank to fail (by its traceback file)
    is the failure, with its traceback; without any file, the lowest failed rank's exception.
    """
    for error in errors.values():
        if isinstance(error, TrialPruned):
            return TrialPruned(str(error))
    written = sorted(
        (
            (path.stat().st_mtime, rank, path)
            for rank in range(world_size)
            if (path := work_dir / RANK_TRACEBACK.format(rank=rank)).exists()
        ),
    )
    if written:
        _, rank, path = written[0]
        trace = path.read_text()
        return WorkerFailed(rank, world_size, _last_line(trace)[:LINE_LIMIT], trace)
    if errors:
        rank = min(errors)
        error = errors[rank]
        summary = one_line(error)
        return WorkerFailed(rank, world_size, summary, summary + "\n")
    return WorkerFailed(None, world_size, "the workers failed without an error", "")
