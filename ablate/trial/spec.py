"""What a trial is (spec), where it stands (state) and what it produced (result)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional


class TrialState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CACHED = "CACHED"  # finished in an earlier `ablate run`; not retrained
    PRUNED = "PRUNED"  # stopped early by the search's pruner

    @property
    def is_done(self) -> bool:
        return self in (TrialState.FINISHED, TrialState.CACHED)


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to train one trial; plain data so it can cross processes."""

    study: str
    name: str
    trial_id: str
    seed: int
    base: str
    config_text: str  # the fully resolved mmseg config (Python syntax)
    overrides: dict[str, Any]
    work_dir: Path
    data_root: Path
    data_fingerprint: str
    iters: int
    batch_size: int
    image_size: tuple[int, int]  # (h, w) FLOPs are counted at
    log_interval: int = 50
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()  # trial ids whose checkpoints this one loads
    resolved_overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys vs the base config
    cost: float = 0.0  # GFLOPs x iters x batch at the training crop: for ordering and `plan`
    hooks: tuple[dict[str, Any], ...] = ()  # extra mmengine hooks at run time (not part of the id)
    study_file: Optional[Path] = None  # whose repository's git state the run records (not part of the id)
    # Placement (`resources` of the study): processes training it together as one DDP job (world
    # size), and what each holds; None takes the dispatcher's default (1 GPU; 1 CPU with GPUs, all
    # CPUs without). `batch_size` is per worker: `total_batch` images make one step.
    workers: int = 1
    gpus_per_worker: Optional[float] = None
    cpus_per_worker: Optional[float] = None

    def with_runtime(self, *, tags: dict[str, str], hooks: tuple[dict[str, Any], ...] = ()) -> "TrialSpec":
        return replace(self, tags=tags, hooks=self.hooks + hooks)

    @property
    def best_checkpoint(self) -> Path:
        """Where the trial leaves its best checkpoint for trials that transfer from it."""
        return self.work_dir / "best.pth"

    @property
    def total_batch(self) -> int:
        """Images per optimizer step over all workers."""
        return self.batch_size * self.workers

    @property
    def label(self) -> str:
        return f"{self.name} (seed {self.seed})"


@dataclass
class TrialResult:
    trial_id: str
    name: str
    seed: int
    state: TrialState
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: Optional[str] = None
    error: Optional[str] = None
    duration_s: float = 0.0

    @property
    def miou(self) -> Optional[float]:
        return self.metrics.get("mIoU")
