"""What a trial's run records when it is opened: the only place a trial's fields become tags.

A study is an MLflow experiment; each `ablate run` / `ablate tune` is a parent run and each trial
a child run found again by its trial id (tag), so an interrupted trial resumes in its own run.
The trial arrives as a `PlannedTrial` (`ablate.trial.TrialSpec` is one): typed fields such as its
launch estimate and its pretraining/provider roles travel as data and are written as tags here,
with the names of `ablate.tracking.tags`, which `TrialRun.from_mlflow` decodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ablate.tracking import tags as T

REUSABLE = ("RUNNING", "FAILED", "KILLED", "SCHEDULED")  # run states a new attempt of the trial resumes
PROVIDES_CHECKPOINT = "checkpoint"  # the value of `ablate.provides`


class LaunchEstimateLike(Protocol):
    @property
    def seconds(self) -> float: ...

    @property
    def source(self) -> str: ...


class PlannedTrial(Protocol):
    """What the store reads of a trial to open its run."""

    @property
    def study(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def trial_id(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def base(self) -> str: ...
    @property
    def iters(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def data_root(self) -> Path: ...
    @property
    def data_fingerprint(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def overrides(self) -> Mapping[str, Any]: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def study_file(self) -> Path | None: ...
    @property
    def speed_key(self) -> str: ...
    @property
    def pretrain(self) -> str: ...
    @property
    def provides(self) -> bool: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def estimate(self) -> LaunchEstimateLike | None: ...


def trial_tags(trial: PlannedTrial, parent_run_id: str | None) -> dict[str, str]:
    out = {
        T.TRIAL_ID: trial.trial_id,
        T.STUDY: trial.study,
        T.KIND: T.Kind.TRIAL.value,
        T.TRIAL_NAME: trial.name,
        T.SEED: str(trial.seed),
        **trial.tags,
    }
    if trial.speed_key:
        out[T.SPEED_KEY] = trial.speed_key
    if trial.pretrain:
        out[T.PRETRAIN] = trial.pretrain
    if trial.provides:
        out[T.PROVIDES] = PROVIDES_CHECKPOINT
    if trial.aliases:
        out[T.ALIASES] = ",".join(trial.aliases)
    if trial.estimate is not None:
        out[T.EST_TIME_S] = f"{trial.estimate.seconds:.3f}"
        out[T.EST_SOURCE] = trial.estimate.source
    if parent_run_id:
        out[T.PARENT] = parent_run_id
    return out


def trial_params(trial: PlannedTrial) -> dict[str, Any]:
    return {
        "trial_name": trial.name,
        "base": trial.base,
        "seed": trial.seed,
        "iters": trial.iters,
        "batch_size": trial.batch_size,
        "dataset": f"{trial.data_root.name}@{trial.data_fingerprint}",
        **trial.params,
        **{f"override.{k}": v for k, v in trial.overrides.items()},
    }
