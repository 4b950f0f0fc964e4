"""Typed records of the runs ablate writes: what the report and the drivers read back.

`TrialRun.from_mlflow` is the only place a trial run's tags and params are decoded; the writer
(`ablate.tracking.runs`) uses the same tag names (`ablate.tracking.tags`), so the two cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ablate.tracking import tags as T
from ablate.tracking.environment import environment_keys
from ablate.tracking.inputs import DatasetRecord, datasets_of

FINISHED = "FINISHED"


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class TrialRun:
    """One trial run: tags decoded, metrics at their final values."""

    run_id: str
    experiment: str
    name: str
    trial_id: str
    seed: int | None
    status: str
    shape: str
    rung: int | None
    trick: str
    tricks: tuple[str, ...]
    model: str
    enc_pretrained: bool
    dec_pretrained: bool
    pretrain: bool
    tta: bool
    duration_s: float | None
    failure: str
    optuna_trial: int | None
    optuna_state: str
    start_time: int
    teacher: str = ""
    devices: str = ""
    precision: str = ""  # trained in: bf16 | fp16 | fp32 (empty for runs older than the tag)
    amp: str = ""  # asked for by the study: bf16 | fp16 | off
    amp_fallback: str = ""
    latency_device: str = ""
    device_kind: str = ""  # what it trained on (ablate.hooks.speed); empty for older runs
    speed_key: str = ""  # model, crop, batch and precision request (ablate.study.estimate.speed_key)
    est_time_s: float | None = None  # its estimated wall time when it was launched
    est_source: str = ""  # store | calibrated | rough
    world_size: int = 1  # processes (DDP workers) it trained on; runs older than the tag: one
    metrics: Mapping[str, float] = field(default_factory=dict, repr=False)
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    tags: Mapping[str, str] = field(default_factory=dict, repr=False)
    datasets: tuple[DatasetRecord, ...] = ()  # the run's MLflow dataset inputs

    @classmethod
    def from_mlflow(cls, run: Any, experiment: str = "") -> TrialRun:
        tags: Mapping[str, str] = run.data.tags
        params: Mapping[str, str] = run.data.params
        return cls(
            run_id=run.info.run_id,
            experiment=experiment,
            name=tags.get(T.TRIAL_NAME) or params.get("trial_name") or run.info.run_name or run.info.run_id,
            trial_id=tags.get(T.TRIAL_ID, run.info.run_id),
            seed=_int(tags.get(T.SEED, params.get("seed"))),
            status=run.info.status,
            shape=tags.get(T.SHAPE, T.SHAPE_TRIALS),
            rung=_int(tags.get(T.RUNG)),
            trick=tags.get(T.TRICK, ""),
            tricks=tuple(t for t in tags.get(T.TRICKS, "").split(",") if t),
            model=tags.get(T.MODEL) or params.get("model", ""),
            enc_pretrained=tags.get(T.ENC_PRETRAINED) == "yes",
            dec_pretrained=tags.get(T.DEC_PRETRAINED) == "yes",
            pretrain=tags.get(T.SHAPE) == T.SHAPE_PRETRAIN,
            tta=tags.get(T.FINAL_EVAL) == "tta",
            duration_s=_float(tags.get(T.DURATION_S)),
            failure=tags.get(T.FAILURE, ""),
            optuna_trial=_int(tags.get(T.OPTUNA_TRIAL)),
            optuna_state=tags.get(T.OPTUNA_STATE, ""),
            start_time=int(run.info.start_time or 0),
            teacher=tags.get(T.TEACHER, ""),
            devices=tags.get(T.DEVICES, ""),
            precision=tags.get(T.PRECISION, ""),
            amp=tags.get(T.AMP, ""),
            amp_fallback=tags.get(T.AMP_FALLBACK, ""),
            latency_device=tags.get(T.LATENCY_DEVICE, ""),
            device_kind=tags.get(T.DEVICE_KIND, ""),
            speed_key=tags.get(T.SPEED_KEY, ""),
            est_time_s=_float(tags.get(T.EST_TIME_S)),
            est_source=tags.get(T.EST_SOURCE, ""),
            world_size=_int(tags.get(T.WORLD_SIZE)) or 1,
            metrics=dict(run.data.metrics),
            params=dict(params),
            tags=dict(tags),
            datasets=tuple(datasets_of(run)),
        )

    def metric(self, key: str) -> float:
        """NaN when not logged, so group means skip it instead of failing."""
        value = self.metrics.get(key)
        return float("nan") if value is None else float(value)

    @property
    def miou(self) -> float:
        return self.metric("mIoU")

    @property
    def flops_g(self) -> float:
        return self.metric("flops_g")

    @property
    def params_m(self) -> float:
        return self.metric("params_m")

    @property
    def latency_ms(self) -> float:
        """Median batch-1 inference latency at the image size, on `latency_device`."""
        return self.metric("latency_ms")

    @property
    def fps(self) -> float:
        return self.metric("fps")

    @property
    def per_class_iou(self) -> dict[str, float]:
        """Class name (underscores for spaces) -> IoU in percent."""
        return {k.split(".", 1)[1]: float(v) for k, v in self.metrics.items() if k.startswith("IoU.")}

    @property
    def worst10_miou(self) -> float:
        """Mean per-image mIoU of the worst 10% of the final evaluation's images."""
        return self.metric("worst10_mIoU")

    @property
    def min_class_iou(self) -> float:
        """The weakest class's IoU; computed from the per-class metrics for runs that predate it."""
        logged = self.metric("min_class_IoU")
        finite = [v for v in self.per_class_iou.values() if not math.isnan(v)]
        return logged if not math.isnan(logged) or not finite else min(finite)

    @property
    def peak_mem_gb(self) -> tuple[float, str]:
        """(GiB, "GPU" | "RSS"): peak GPU memory when it trained on a GPU, else peak resident memory."""
        gpu = self.metric("peak_gpu_mem_gb")
        return (gpu, "GPU") if not math.isnan(gpu) else (self.metric("peak_rss_gb"), "RSS")

    @property
    def train_time_s(self) -> float:
        """Training loop wall time without validation (not the whole trial: see `duration_s`)."""
        return self.metric("train_time_s")

    @property
    def train_images_per_s(self) -> float:
        return self.metric("train_images_per_s")

    @property
    def s_per_iter(self) -> float:
        """Wall seconds of one training iteration after the first, validations left out."""
        return self.metric("s_per_iter")

    @property
    def val_s(self) -> float:
        """Mean wall seconds of one validation run during training."""
        return self.metric("val_s")

    @property
    def val_runs(self) -> float:
        return self.metric("val_runs")

    @property
    def timed_iters(self) -> float:
        """Iterations the last attempt trained (fewer than `iters` after a resume)."""
        return self.metric("timed_iters")

    @property
    def total_batch(self) -> int | None:
        """Images per optimizer step over all its workers (the batch size for one process)."""
        logged = _int(self.tags.get(T.TOTAL_BATCH)) or _int(self.params.get("total_batch_size"))
        if logged is None and self.world_size == 1:
            return _int(self.params.get("batch_size"))
        return logged

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def complete(self) -> bool:
        """Finished with its final metrics: the only kind of run a rerun may reuse."""
        return self.finished and not math.isnan(self.miou)

    @property
    def is_search(self) -> bool:
        """Optuna trials belong to the search section, not to the model table."""
        return self.optuna_trial is not None

    @property
    def reportable(self) -> bool:
        """Enters the tables and the ladder tests: finished, with an mIoU, neither pretraining nor search."""
        return self.finished and not self.pretrain and not self.is_search and not math.isnan(self.miou)

    @property
    def dataset(self) -> str:
        return self.params.get("dataset", "").split("@", 1)[0]

    @property
    def data_fingerprint(self) -> str:
        """The content digest of the dataset it trained on ("" for runs that logged none)."""
        return self.datasets[0].digest if self.datasets else ""

    @property
    def git_commit(self) -> str:
        return self.tags.get(T.GIT_COMMIT, "")

    @property
    def git_dirty(self) -> bool | None:
        """None when unknown (no repository, no git, or a run from before this was recorded)."""
        value = self.tags.get(T.GIT_DIRTY)
        return {"true": True, "false": False}.get(value or "")

    @property
    def node(self) -> str:
        """The IP address of the machine (Ray node) it trained on ("" for runs older than the tag)."""
        return self.tags.get(T.NODE, "")

    @property
    def stored_checkpoint(self) -> tuple[str, str] | None:
        """(artifact path, SHA-256) of the checkpoint it stored for trials that load it, if any."""
        path, digest = self.tags.get(T.CHECKPOINT), self.tags.get(T.CHECKPOINT_SHA256)
        return (path, digest) if path and digest else None

    @property
    def versions(self) -> dict[str, str]:
        """Package -> version as the trial ran it: python, torch, cuda, cudnn, mmseg, mmengine, mmcv, ..."""
        return {k[len(T.VERSION_PREFIX) :]: v for k, v in self.tags.items() if k.startswith(T.VERSION_PREFIX)}

    @property
    def environment(self) -> dict[str, str]:
        """The tags that describe where and with what it ran (versions, git, GPU, determinism)."""
        return environment_keys(dict(self.tags))


@dataclass(frozen=True)
class TuneRun:
    """An `ablate tune` parent run: where its Optuna study lives."""

    run_id: str
    experiment: str
    storage: str
    study_name: str
    status: str
    start_time: int

    @classmethod
    def from_mlflow(cls, run: Any, experiment: str = "") -> TuneRun:
        tags = run.data.tags
        return cls(
            run_id=run.info.run_id,
            experiment=experiment,
            storage=tags.get(T.OPTUNA_STORAGE, ""),
            study_name=tags.get(T.OPTUNA_STUDY, ""),
            status=run.info.status,
            start_time=int(run.info.start_time or 0),
        )


def deduplicate(trials: Iterable[TrialRun]) -> tuple[list[TrialRun], int]:
    """One run per (experiment, trial id): the newest finished one, else the newest attempt.

    `--rerun` and resumed trials leave several runs behind; averaging them would count one seed
    twice, and a failure that a later attempt fixed is not a failure.
    """
    best: dict[tuple[str, str], TrialRun] = {}
    total = 0
    for run in trials:
        total += 1
        key = (run.experiment, run.trial_id)
        held = best.get(key)
        if held is None or (run.finished, run.start_time) > (held.finished, held.start_time):
            best[key] = run
    kept = sorted(best.values(), key=lambda r: (r.experiment, r.start_time, r.run_id))
    return kept, total - len(kept)
