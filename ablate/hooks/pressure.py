"""Training pressure: what a trial cost to train besides its wall time.

Choosing a model is also choosing what it takes to train it: a model that needs twice the GPU
memory may not fit the cards a lab has. Logged once, at the end of training:
* `peak_gpu_mem_gb`: `torch.cuda.max_memory_allocated` of the training GPU (GiB, 2^30 bytes),
  the largest over the processes of a distributed run; the peak counter is reset when training
  starts, so trials sharing a process do not inherit each other's peaks;
* `peak_rss_gb` instead when training on the CPU: the process's peak resident memory (GiB;
  data-loader worker processes not included), reset at the start where the kernel allows it;
* `train_time_s`: wall time of the training loop without its validation runs;
* `train_images_per_s`: images trained (batch size x processes x iterations) per second of it.
A resumed run counts only the iterations it trained itself.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from mmengine.registry import HOOKS

from ablate.tracking.hook import TrackedHook

GIB = float(2**30)


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs restarts the peak-RSS counter that getrusage reports."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:  # not Linux, or not permitted: the peak then covers the whole process
        pass


def peak_rss_gb() -> float:
    """ru_maxrss is in kilobytes on Linux and in bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / GIB if sys.platform == "darwin" else peak * 1024 / GIB


def _device(runner: Any) -> Any:
    for param in runner.model.parameters():
        return param.device
    return None


@HOOKS.register_module()
class TrainingPressureHook(TrackedHook):
    """Peak memory, training time and throughput of the trial, logged after training."""

    priority = "VERY_LOW"  # starts after the FLOPs count, ends before the post-train evaluations

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None) -> None:
        super().__init__(tracking_uri, run_id)
        self._started: float | None = None
        self._start_iter = 0
        self._val_started: float | None = None
        self._val_s = 0.0

    def before_train(self, runner: Any) -> None:
        import torch

        device = _device(runner)
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            _reset_peak_rss()
        self._start_iter = runner.iter
        self._val_s = 0.0
        self._started = time.perf_counter()

    def before_val(self, runner: Any) -> None:
        self._val_started = time.perf_counter()

    def after_val(self, runner: Any) -> None:
        if self._val_started is not None and self._started is not None:
            self._val_s += time.perf_counter() - self._val_started
        self._val_started = None

    def after_train(self, runner: Any) -> None:
        iters = runner.iter - self._start_iter
        if self._started is None or iters <= 0:  # nothing trained in this process: keep what was logged
            return
        self.log_metrics(self.measure(runner, iters), step=runner.iter)

    def measure(self, runner: Any, iters: int) -> dict[str, float]:
        import torch
        from mmengine import dist

        device = _device(runner)
        on_gpu = device is not None and device.type == "cuda"
        if on_gpu:
            torch.cuda.synchronize(device)
        elapsed = max(time.perf_counter() - float(self._started or 0.0) - self._val_s, 1e-9)
        peak = torch.tensor(
            [torch.cuda.max_memory_allocated(device) / GIB if on_gpu else peak_rss_gb()],
            dtype=torch.float64,
            device=device if on_gpu else "cpu",
        )
        dist.all_reduce(peak, op="max")  # nothing happens outside a distributed run
        batch = int(getattr(runner.train_dataloader, "batch_size", None) or 1) * dist.get_world_size()
        return {
            "peak_gpu_mem_gb" if on_gpu else "peak_rss_gb": round(float(peak.item()), 4),
            "train_time_s": elapsed,
            "train_images_per_s": batch * iters / elapsed,
        }
