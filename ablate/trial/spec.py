"""What a trial is (spec), where it stands (state) and what it produced (result)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


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
class LaunchEstimate:
    """A trial's expected wall time when it is launched, which its run records beside the actual
    time (`ablate.study.estimate`)."""

    seconds: float
    source: str  # store | calibrated | rough


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
    study_file: Path | None = None  # whose repository's git state the run records (not part of the id)
    # Placement (`resources` of the study): processes training it together as one DDP job (world
    # size), and what each holds; None takes the dispatcher's default (1 GPU; 1 CPU with GPUs, all
    # CPUs without). `batch_size` is per worker: `total_batch` images make one step.
    workers: int = 1
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None
    # Roles and runtime facts as data (the run store writes them as tags; none is part of the id)
    speed_key: str = ""  # trials with equal keys train at the same speed (`ablate.study.estimate`)
    pretrain: str = ""  # the `pretrain:` entry this trial trains, "" for any other trial
    provides: bool = False  # later trials load its best.pth: it stores it with its run for other machines
    estimate: LaunchEstimate | None = None  # set when it is about to train
    aliases: tuple[str, ...] = ()  # other names of the same trial id in the study (they train once, as this)
    # The config's dataset, as checked when planned (neither is part of the id): its label space
    # (`ablate.data.DatasetMeta`, logged with the run) and images per split (train/val/test).
    dataset_meta: Any = None
    data_splits: dict[str, int] = field(default_factory=dict)

    def with_runtime(self, *, tags: dict[str, str] | None = None, hooks: tuple[dict[str, Any], ...] = ()) -> TrialSpec:
        return replace(self, tags=self.tags if tags is None else tags, hooks=self.hooks + hooks)

    def absorbing(self, others: list[TrialSpec]) -> TrialSpec:
        """This spec training for `others` too (other names of its trial id): their tags and roles
        join its own (its own win), and their names become its aliases."""
        others = [s for s in others if s is not self and s.name != self.name]
        if not others:
            return self
        tags: dict[str, str] = {}
        for other in others:
            tags.update(other.tags)
        tags.update(self.tags)
        chain = [self, *reversed(others)]  # its own first, then the last other that has one
        return replace(
            self,
            tags=tags,
            aliases=tuple(dict.fromkeys(s.name for s in others)),
            speed_key=next((s.speed_key for s in chain if s.speed_key), ""),
            pretrain=next((s.pretrain for s in chain if s.pretrain), ""),
            provides=any(s.provides for s in chain),
            estimate=next((s.estimate for s in chain if s.estimate is not None), None),
        )

    @property
    def best_checkpoint(self) -> Path:
        """Where the trial leaves its best checkpoint for trials that transfer from it."""
        from ablate.tracking.checkpoints import BEST_CHECKPOINT

        return self.work_dir / BEST_CHECKPOINT

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
    run_id: str | None = None
    error: str | None = None
    duration_s: float = 0.0

    @property
    def miou(self) -> float | None:
        return self.metrics.get("mIoU")
