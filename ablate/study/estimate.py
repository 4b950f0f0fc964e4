"""How long trials will take, per trial and for a study, from measured speed.

The time model: a trial's wall time is `fixed + iters x s_per_iter + validations x val_s`
(`ablate.hooks.speed` measures the three terms of every trial it trains; `validations` is
ceil(iters / val_interval), the training loop also validating at its last iteration). The
terms come from, best first:

* **store**: earlier FINISHED runs in the tracking store (any experiment) with the same speed
  key (model config without weight paths, training crop, batch size, precision request,
  compile switch and kind of final evaluation) on the same kind of device, whose last attempt
  trained every iteration: the median of each term over the newest `STORE_RUNS`. `fixed` is
  what the run's duration leaves after its iterations and validations (building, the first
  iteration, final evaluation, latency timing), so a trial with the same budget is estimated
  at the duration its predecessors took;
* **calibrated**: a probe of this machine (`ablate plan --calibrate`, `ablate.analysis.speed`):
  its seconds per training step, one inference at the image size per validation image, and
  the model's build time as `fixed`. Data loading is not probed;
* **rough**: the FLOPs-based cost (`TrialSpec.cost`, forward GFLOPs x iterations x batch)
  times 3 for forward + backward, at a nominal sustained throughput of the device class
  (`NOMINAL_GFLOPS`); no evaluation. Marked rough wherever it is shown.

A study's wall time replays the scheduler (`ablate.dispatch.Scheduler`: dependencies, critical
path first) on a clock over the given number of slots; GPU-hours are each trial's time x the
GPUs it holds (none on a CPU).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ablate.config import keys
from ablate.trial.spec import LaunchEstimate, TrialResult, TrialSpec, TrialState
from ablate.util.text import one_line

if TYPE_CHECKING:
    from ablate.tracking import RunStore

STORE, CALIBRATED, ROUGH = "store", "calibrated", "rough"
SOURCES = (STORE, CALIBRATED, ROUGH)
STORE_RUNS = 5  # newest matching runs whose median is the estimate
# Sustained training throughput assumed by rough estimates (GFLOP/s): a mid-range GPU at
# mixed utilisation, and a few cores of a server CPU.
NOMINAL_GFLOPS = {"gpu": 20_000.0, "cpu": 100.0}
TRAIN_FORWARDS = 3.0  # a training step costs about a forward and a backward of twice its FLOPs
_WEIGHT_KEYS = ("init_cfg", "pretrained", "checkpoint")


def _without_weights(node: Any) -> Any:
    """Where weights come from changes no speed (and differs by seed for a teacher)."""
    if isinstance(node, dict):
        return {k: _without_weights(v) for k, v in node.items() if k not in _WEIGHT_KEYS}
    if isinstance(node, (list, tuple)):
        return [_without_weights(v) for v in node]
    return node


def speed_key(cfg: Any, crop: Sequence[int], batch_size: int) -> str:
    """Trials with equal keys train at the same speed on the same device."""
    model = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)
    identity = {
        "model": _without_weights(model),
        "crop": [int(v) for v in crop],
        "batch_size": int(batch_size),
        "amp": str(cfg.get(keys.AMP) or "off"),
        "compile": bool(cfg.get("compile", False)),
        "final_eval": str(cfg.get(keys.FINAL_EVAL) or ""),
        "tta": cfg.get("tta_pipeline"),
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def validations(iters: int, val_interval: int | None) -> int:
    """Validation runs of an iteration-based training: every `val_interval`, and at the end."""
    return math.ceil(iters / (val_interval or iters))


def is_gpu(device: str) -> bool:
    return not device.lower().startswith("cpu")


@dataclass(frozen=True)
class Speed:
    """The three terms of the time model for one speed key on one kind of device."""

    s_per_iter: float
    val_s: float
    fixed_s: float
    source: str
    basis: str  # what it rests on, for a reader: "3 runs on ...", "probe of 5 steps", ...

    def seconds(self, iters: int, val_runs: int) -> float:
        return self.fixed_s + iters * self.s_per_iter + val_runs * self.val_s


@dataclass(frozen=True)
class TrialEstimate:
    """One trial's estimated wall time (None: nothing to base it on) and the GPUs it holds."""

    trial_id: str
    name: str
    seed: int
    seconds: float | None
    source: str  # store | calibrated | rough, "" without an estimate
    basis: str
    gpus: float

    @property
    def gpu_hours(self) -> float | None:
        return None if self.seconds is None else self.seconds * self.gpus / 3600.0

    @property
    def launch(self) -> LaunchEstimate | None:
        """What a trial carries when launched (its run records it, so the report can put it beside
        the actual time); None without an estimate."""
        return None if self.seconds is None else LaunchEstimate(self.seconds, self.source)


def from_runs(runs: Sequence[Any], device: str) -> Speed | None:
    """The store's answer: median terms of the newest runs (`TrialRun`) on a matching device
    that trained their whole budget in their last attempt."""
    from ablate.analysis.speed import device_matches

    rows = []
    for run in runs:
        iters = _int(run.params.get("iters"))
        duration = run.duration_s
        if (
            iters is None
            or duration is None
            or not device_matches(run.device_kind, device)
            or run.timed_iters != iters
            or not math.isfinite(run.s_per_iter)
        ):
            continue
        val_s = run.val_s if math.isfinite(run.val_s) else 0.0
        val_runs = run.val_runs if math.isfinite(run.val_runs) else 0.0
        fixed = max(0.0, duration - iters * run.s_per_iter - val_runs * val_s)
        rows.append((run.s_per_iter, val_s, fixed, run.device_kind))
        if len(rows) == STORE_RUNS:
            break
    if not rows:
        return None
    devices = sorted({r[3] for r in rows})
    return Speed(
        statistics.median(r[0] for r in rows),
        statistics.median(r[1] for r in rows),
        statistics.median(r[2] for r in rows),
        STORE,
        f"{len(rows)} earlier run{'s' if len(rows) > 1 else ''} on {', '.join(devices)}",
    )


def _int(text: Any) -> int | None:
    try:
        return int(str(text))
    except (TypeError, ValueError):
        return None


def val_images(spec: TrialSpec) -> int:
    """Images one validation run evaluates, as the config's val dataset lists them when the trial
    was planned (0 while the dataset does not exist yet)."""
    return int((spec.data_splits or {}).get("val", 0))


def from_probe(probe: Any, images: int) -> Speed:
    evaluation = f", {images} validation images" if images else ", evaluation not included (no dataset yet)"
    return Speed(
        probe.s_per_iter,
        probe.eval_s_per_image * images,
        probe.build_s,
        CALIBRATED,
        f"probe of {probe.steps} steps on {probe.device}{evaluation}",
    )


def rough(spec: TrialSpec, device: str) -> Speed | None:
    """Training FLOPs at a nominal throughput; None without a FLOPs cost (`plan --no-cost`)."""
    if spec.cost <= 0 or spec.iters <= 0:
        return None
    kind = "gpu" if is_gpu(device) else "cpu"
    seconds = spec.cost * TRAIN_FORWARDS / NOMINAL_GFLOPS[kind]
    return Speed(
        seconds / spec.iters,
        0.0,
        0.0,
        ROUGH,
        f"FLOPs at a nominal {NOMINAL_GFLOPS[kind]:,.0f} GFLOP/s ({kind}), no evaluation",
    )


class Estimator:
    """Estimates for the trials of one study on one kind of device, each speed key looked up once.

    `tracking_uri=None` (or a store that does not exist yet) skips the store.
    """

    def __init__(self, tracking_uri: str | None, device: str, gpus_per_trial: float) -> None:
        self.tracking_uri = tracking_uri
        self.device = device
        self.gpus = gpus_per_trial if is_gpu(device) else 0.0
        self._store: dict[str, Speed | None] = {}
        self._runs: RunStore | None = None
        if tracking_uri is not None:
            from ablate.tracking import RunStore, store_exists

            if store_exists(tracking_uri):
                self._runs = RunStore.open(tracking_uri)

    def stored(self, spec: TrialSpec) -> Speed | None:
        key = spec.speed_key
        if not key or self._runs is None:
            return None
        if key not in self._store:
            self._store[key] = from_runs(self._runs.speed_runs(key), self.device)
        return self._store[key]

    def speed(self, spec: TrialSpec) -> Speed | None:
        from ablate.analysis.speed import cached_probe

        found = self.stored(spec)
        if found is not None:
            return found
        key = spec.speed_key
        probe = cached_probe(key, self.device) if key else None
        if probe is not None:
            return from_probe(probe, val_images(spec))
        return rough(spec, self.device)

    def estimate(self, spec: TrialSpec) -> TrialEstimate:
        speed = self.speed(spec)
        seconds = None if speed is None else speed.seconds(spec.iters, validations(spec.iters, _val_interval(spec)))
        return TrialEstimate(
            spec.trial_id,
            spec.name,
            spec.seed,
            seconds,
            speed.source if speed else "",
            speed.basis if speed else "no FLOPs cost and no measured speed",
            self.gpus,
        )


def _val_interval(spec: TrialSpec) -> int | None:
    return _int(spec.params.get("val_interval"))


def estimated_seconds(spec: TrialSpec) -> float | None:
    """The estimate a launched trial carries (`TrialEstimate.launch`)."""
    return None if spec.estimate is None else spec.estimate.seconds


def makespan(trials: Sequence[TrialSpec], seconds: Mapping[str, float], slots: int) -> float:
    """Wall time of `trials` on `slots` parallel slots, as the scheduler would order them (a
    trial without an estimate takes no time). Names sharing a trial id train once."""
    from ablate.dispatch.scheduler import Scheduler

    scheduler = Scheduler(trials)
    now = 0.0
    ends: list[tuple[float, int, str]] = []
    order = 0
    while not scheduler.done:
        for spec in scheduler.ready()[: max(1, slots) - len(scheduler.running)]:
            scheduler.started(spec.trial_id)
            order += 1
            heapq.heappush(ends, (now + float(seconds.get(spec.trial_id) or 0.0), order, spec.trial_id))
        if not ends:  # nothing can start: the scheduler refuses cycles, so this does not happen
            break
        now, _, trial_id = heapq.heappop(ends)
        spec = next(s for s in trials if s.trial_id == trial_id)
        scheduler.finished(trial_id, TrialResult(trial_id, spec.name, spec.seed, TrialState.FINISHED))
    return now


@dataclass(frozen=True)
class Calibration:
    """One probe `ablate plan --calibrate` ran (or why it could not)."""

    speed_key: str
    trial: str
    probe: Any = None  # ablate.analysis.speed.Probe
    error: str = ""


def calibrate(trials: Sequence[TrialSpec], estimator: Estimator) -> list[Calibration]:
    """Probe this machine for every distinct speed key the store has no run of, and cache it."""
    from mmengine.config import Config

    from ablate.analysis.speed import probe_training, record_probe

    done: list[Calibration] = []
    seen: set[str] = set()
    for spec in trials:
        key = spec.speed_key
        if not key or key in seen or estimator.stored(spec) is not None:
            continue
        seen.add(key)
        try:
            cfg = Config.fromstring(spec.config_text, ".py")
            crop = training_crop(cfg, None, spec.image_size)
            probe = probe_training(cfg, crop, spec.batch_size, spec.image_size)
        except Exception as exc:  # a model that cannot be probed here keeps its rough estimate
            done.append(Calibration(key, spec.name, error=one_line(exc)))
            continue
        record_probe(key, probe)
        done.append(Calibration(key, spec.name, probe))
    return done


def training_crop(cfg: Any, crop: Sequence[int] | None, image_size: Sequence[int]) -> tuple[int, int]:
    """(h, w) a trial trains at: the study's crop, else the model's preprocessor size, else the image."""
    chosen = crop or cfg.model.get("data_preprocessor", {}).get("size") or image_size
    return (int(chosen[0]), int(chosen[1]))
