"""Measured inference latency: what a deployed model costs on a given device, not only in FLOPs.

One image (batch 1) at the dataset's image size through the same forward that the FLOPs count
(`flops._logits_at_input_size`: the segmentor's logits resized to the input), in the trial's
precision (autocast), without gradients. A few warm-up passes first (cuDNN autotuning, caches,
lazy allocations), then timed passes, each one synchronised on CUDA, until the median stops
moving or a time cap is reached. Reported: the median, the 90th percentile and images/s at the
median.

Latency depends on the device, so it is cached by model config, size, device and precision in
the same on-disk cache as the FLOPs (`ablate.analysis.cache`): the seeds of one model are timed
once per kind of device.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ablate.analysis.cache import model_dict, model_key, read_table, write_entry

LATENCY = "latency"
PROTOCOL = "batch1-median-v1"  # part of the cache key: a changed protocol re-measures
AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}
# model-config keys no inference forward runs (see `_inference_only`)
_NOT_INFERENCE = {
    "init_cfg",
    "pretrained",
    "loss_decode",
    "sampler",
    "auxiliary_head",
    "data_preprocessor",
    "train_cfg",
    "test_cfg",
    "teacher",
    "distill_loss",
    "distill_features",
    "feature_loss",
}


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    fps: float  # images/s at the median (batch 1)
    passes: int  # timed passes behind the figures
    device: str
    precision: str
    height: int
    width: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """The run metrics a trial logs."""
        return {"latency_ms": self.median_ms, "latency_p90_ms": self.p90_ms, "fps": self.fps}


@dataclass(frozen=True)
class Budget:
    """How long to time: passes until the median is stable, never much past `max_s`.

    The median is checked every `chunk` passes once `min_passes` are in; it is stable when it
    moved less than `tolerance` (relative) since the last check. The time cap is checked after
    every pass, so a slow model on a CPU stops after `floor_passes` timed passes at worst.
    """

    warmup_passes: int = 3
    warmup_s: float = 0.5  # and at least this long (GPU clocks and cuDNN autotuning settle)
    min_passes: int = 10
    floor_passes: int = 3
    max_passes: int = 300
    max_s: float = 5.0
    tolerance: float = 0.01
    chunk: int = 10


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_label(device: Any) -> str:
    """`NVIDIA H100 80GB HBM3`, or `cpu:<model> (<n> threads)` (CPU latency depends on both)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu:{cpu_name()} ({threads} thread{'s' if threads != 1 else ''})"
    return device.type


def time_passes(step: Callable[[], Any], sync: Callable[[], None], budget: Budget = Budget()) -> list[float]:
    """Seconds of each timed pass of `step`, after the warm-up."""
    start = time.perf_counter()
    done = 0
    while done < budget.warmup_passes or (time.perf_counter() - start < budget.warmup_s and done < budget.max_passes):
        step()
        done += 1
    sync()
    times: list[float] = []
    start = time.perf_counter()
    previous = math.inf
    while True:
        begin = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - begin)
        n = len(times)
        if n >= budget.max_passes or (n >= budget.floor_passes and time.perf_counter() - start >= budget.max_s):
            return times
        if n >= budget.min_passes and n % budget.chunk == 0:
            median = statistics.median(times)
            if abs(median - previous) <= budget.tolerance * median:
                return times
            previous = median


def measure_latency(model: Any, height: int, width: int, precision: str = "fp32", budget: Budget = Budget()) -> Latency:
    """Time batch-1 inference of a built segmentor on the device its weights are on."""
    import numpy as np
    import torch

    from ablate.analysis.flops import _logits_at_input_size

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    inputs = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    forward = _logits_at_input_size(model)
    dtype = getattr(torch, AUTOCAST[precision]) if precision in AUTOCAST else None
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            forward(inputs)

    try:
        times = time_passes(step, sync, budget)
    finally:
        model.train(was_training)
    median = float(np.median(times)) * 1000
    return Latency(
        median_ms=round(median, 4),
        p90_ms=round(float(np.percentile(times, 90)) * 1000, 4),
        fps=round(1000.0 / median, 3),
        passes=len(times),
        device=device_label(device),
        precision=precision if dtype is not None else "fp32",
        height=height,
        width=width,
    )


def _inference_only(node: Any) -> Any:
    """The model config as the timed forward sees it: initial weights, losses, samplers, the
    auxiliary head, a distillation teacher and train/test settings run no inference, so trials
    that differ only there (most rungs of a ladder, the seeds of a zoo row, a distilled student
    and the same model trained alone) share one measurement."""
    if isinstance(node, dict):
        return {
            k: ("EncoderDecoder" if k == "type" and v == "DistillEncoderDecoder" else _inference_only(v))
            for k, v in node.items()
            if k not in _NOT_INFERENCE
        }
    if isinstance(node, (list, tuple)):
        return [_inference_only(v) for v in node]
    return node


def cached_latency(
    cfg: Any, model: Any, height: int, width: int, precision: str = "fp32", budget: Budget = Budget()
) -> Latency:
    """Latency of `model` (built from `cfg`) at (height, width), timed the first time this model
    (as inference sees it), size, device and precision are seen, then read from the cache."""
    device = device_label(next(model.parameters()).device)
    key = model_key(_inference_only(model_dict(cfg)), height, width, device, precision, PROTOCOL)
    hit = read_table(LATENCY).get(key)
    if isinstance(hit, dict):
        try:
            return Latency(**hit)
        except TypeError:  # an entry of another shape: time again
            pass
    result = measure_latency(model, height, width, precision, budget)
    write_entry(LATENCY, key, result.to_dict())
    return result
