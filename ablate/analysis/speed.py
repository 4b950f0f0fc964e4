"""Training speed measured on this machine: a short timed probe of one model, crop and batch.

`ablate plan --calibrate` runs it for every distinct trial model that has no earlier run of its
own in the tracking store: the model is built (timed: part of a trial's fixed cost), a random
batch at the training crop goes through mmseg's own `train_step` (data preprocessor, loss,
backward, optimizer step, in the precision the trial would train in) a few times, and a batch-1
inference forward at the image size is timed as the cost of one evaluated image. Data loading is
not part of it, so the estimate it gives is a little short for loader-bound trials.

Results are kept per model key and device (`speed.json` in the analysis cache folder), so a
machine is probed once per model, crop and batch.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

from ablate.analysis.cache import read_table, write_entry

PROBE_TABLE = "speed"


@dataclass(frozen=True)
class ProbeBudget:
    """How long a probe runs: `warmup` untimed steps, then at least `min_steps` timed steps,
    more until `min_s` seconds were timed, never more than `max_steps`."""

    warmup: int = 1
    min_steps: int = 3
    min_s: float = 1.0
    max_steps: int = 20
    eval_passes: int = 2


@dataclass(frozen=True)
class Probe:
    """Seconds per training step, per evaluated image and to build the model, on `device`."""

    device: str
    s_per_iter: float
    eval_s_per_image: float
    build_s: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def this_device() -> str:
    """The kind of device a trial started here trains on: the GPU's name, else the CPU's
    (`cpu:<model> (<n> threads)`), as training runs record it (`ablate.device_kind`)."""
    import torch

    from ablate.analysis.latency import device_label

    return device_label("cuda" if torch.cuda.is_available() else "cpu")


def device_matches(recorded: str, wanted: str) -> bool:
    """`wanted` names a device kind by any part of its name, case-insensitively (`H100`)."""
    return bool(recorded) and wanted.strip().lower() in recorded.lower()


def _entry_key(speed_key: str, device: str) -> str:
    return f"{speed_key}|{device}"


def cached_probe(speed_key: str, device: str) -> Probe | None:
    """The newest probe of this model key on a device matching `device`."""
    found: list[tuple[float, Probe]] = []
    for key, value in read_table(PROBE_TABLE).items():
        if not key.startswith(speed_key + "|") or not isinstance(value, dict):
            continue
        try:
            probe = Probe(
                str(value["device"]),
                float(value["s_per_iter"]),
                float(value["eval_s_per_image"]),
                float(value["build_s"]),
                int(value["steps"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
        if device_matches(probe.device, device):
            found.append((float(value.get("measured_at", 0.0)), probe))
    return max(found, key=lambda item: item[0])[1] if found else None


def record_probe(speed_key: str, probe: Probe) -> None:
    write_entry(PROBE_TABLE, _entry_key(speed_key, probe.device), {**probe.to_dict(), "measured_at": time.time()})


def _random_batch(batch_size: int, height: int, width: int, classes: int) -> dict[str, Any]:
    """What a segmentation data loader hands `train_step`: uint8 images and label maps."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8))
        sample = SegDataSample(
            metainfo=dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width))
        )
        sample.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, height, width), dtype=torch.long))
        samples.append(sample)
    return {"inputs": inputs, "data_samples": samples}


def _classes(model_cfg: Any) -> int:
    head = model_cfg.get("decode_head")
    head = head[-1] if isinstance(head, list) else head
    return int((head or {}).get("num_classes", 19))


def probe_training(
    cfg: Any, crop: tuple[int, int], batch_size: int, image_size: tuple[int, int], budget: ProbeBudget = ProbeBudget()
) -> Probe:
    """Time `cfg`'s training step at `crop` x `batch_size`, and one inference at `image_size`."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS

    from ablate.config.precision import fit_to_device
    from ablate.registry import register_all

    register_all()
    cfg = copy.deepcopy(cfg)
    fit_to_device(cfg)  # AMP where this device runs it, as the trial would
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    model = MODELS.build(cfg.model).to(device)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    sync()
    build_s = time.perf_counter() - started
    batch = _random_batch(batch_size, crop[0], crop[1], _classes(cfg.model))
    for _ in range(budget.warmup):
        model.train_step(batch, optim_wrapper)
    sync()
    steps, timed = 0, 0.0
    while steps < budget.max_steps and (steps < budget.min_steps or timed < budget.min_s):
        tick = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        sync()
        timed += time.perf_counter() - tick
        steps += 1
    model.eval()
    image = _random_batch(1, image_size[0], image_size[1], _classes(cfg.model))
    with torch.no_grad():
        model.test_step(image)
        sync()
        tick = time.perf_counter()
        for _ in range(budget.eval_passes):
            model.test_step(image)
        sync()
    eval_s = (time.perf_counter() - tick) / budget.eval_passes
    from ablate.analysis.latency import device_label

    return Probe(device_label(device), timed / steps, eval_s, build_s, steps)
