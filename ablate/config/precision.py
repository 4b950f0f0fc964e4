"""What precision a trial trains in, and the settings that depend on the device it lands on.

A study asks (`budget.amp: bf16 | fp16 | off`); the answer depends on the machine, which only the
worker knows (a driver without a GPU plans trials that Ray places on GPUs). So the plan writes
the request into the config (`ablate_amp`, part of the trial id: the same study gives the same
ids everywhere) and the worker, just before it builds the Runner, turns it into mmengine's
`AmpOptimWrapper` when an accelerator can honour it. Done there, after every trick, a trick
that replaces `optim_wrapper` (poly_lr) cannot lose the precision.

Without an accelerator (mmengine's `AmpOptimWrapper` refuses CPU-only machines), or on a GPU
without bf16 for `bf16`, the trial trains in fp32 and says so: `PrecisionHook` tags the run
with the effective precision and the reason (`ablate.amp_fallback`), and warns in its log.
`off` adds nothing: a config that already names `AmpOptimWrapper` keeps it on an accelerator
(and falls back the same way without one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ablate.config import keys

OFF, FP32 = "off", "fp32"
DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
AMP_WRAPPER, PLAIN_WRAPPER = "AmpOptimWrapper", "OptimWrapper"
# devices mmengine's AmpOptimWrapper accepts (mmengine.device.get_device names)
_AMP_DEVICES = ("cuda", "npu", "mlu", "musa")


@dataclass(frozen=True)
class Accelerator:
    """The device a trial trains on, as far as precision is concerned."""

    kind: str  # mmengine's device name: cuda, npu, mlu, musa, mps or cpu
    name: str = ""
    bf16: bool = True

    @property
    def can_amp(self) -> bool:
        return self.kind in _AMP_DEVICES


@dataclass(frozen=True)
class Precision:
    requested: str  # bf16 | fp16 | off
    effective: str  # bf16 | fp16 | fp32
    fallback: str = ""  # why the request was not honoured; empty when it was

    def describe(self) -> str:
        """`bf16`, or `fp32 (bf16 requested)` for the board."""
        if self.fallback:
            return f"{self.effective} ({self.requested} requested)"
        return self.effective


def detect_accelerator() -> Accelerator:
    """This process's training device (what the Runner will pick)."""
    from mmengine.device import get_device

    kind = get_device()
    if kind != "cuda":
        return Accelerator(kind, kind)
    import torch

    return Accelerator(kind, torch.cuda.get_device_name(), bool(torch.cuda.is_bf16_supported()))


def request_amp(cfg: Any, amp: str) -> None:
    """Write the study's request into a trial's config (nothing for `off`: ids of studies
    without `amp` stay what they were)."""
    if amp not in (*DTYPES, OFF):
        raise ValueError(f"amp must be one of bf16, fp16, off; got {amp!r}")
    if amp == OFF:
        cfg.pop(keys.AMP, None)
    else:
        cfg[keys.AMP] = amp


def requested(cfg: Any) -> str:
    return str(cfg.get(keys.AMP) or OFF)


def _dtype_name(dtype: Any) -> str:
    text = str(dtype or "float16").replace("torch.", "")  # mmengine autocasts to fp16 by default
    return {v: k for k, v in DTYPES.items()}.get(text, text)


def unavailable(amp: str, accelerator: Accelerator) -> str:
    """Why `amp` cannot run on `accelerator` (empty when it can)."""
    if amp not in DTYPES:
        return ""
    if not accelerator.can_amp:
        return "no accelerator: trained in fp32"
    if amp == "bf16" and not accelerator.bf16:
        return f"{accelerator.name or accelerator.kind} has no bf16: trained in fp32"
    return ""


def fit_to_device(cfg: Any, accelerator: Accelerator | None = None) -> Precision:
    """Precision and data-loading settings for the device this process trains on, in place.

    Called by the worker on the trial's runtime config (never on the hashed one): the
    optimizer wrapper becomes `AmpOptimWrapper` with the requested dtype when the device can
    run it, and plain `OptimWrapper` when it cannot; loaders pin memory on CUDA. A config's
    own `AmpOptimWrapper` becomes an explicit request, so its fallback is recorded too.
    """
    accelerator = accelerator or detect_accelerator()
    wrapper = cfg.get("optim_wrapper")
    kind = str((wrapper or {}).get("type", PLAIN_WRAPPER))
    own = _dtype_name(wrapper.get("dtype")) if kind == AMP_WRAPPER else OFF
    if requested(cfg) == OFF and own in DTYPES:
        request_amp(cfg, own)
    amp = requested(cfg)
    why = unavailable(amp, accelerator)
    if amp in DTYPES and (wrapper is None or kind not in (PLAIN_WRAPPER, AMP_WRAPPER)):
        raise ValueError(
            "budget.amp needs mmengine's OptimWrapper or AmpOptimWrapper; "
            f"this config has {kind if wrapper else 'none'}"
        )
    if amp in DTYPES and not why:
        wrapper.update(type=AMP_WRAPPER, dtype=DTYPES[amp])
    elif kind == AMP_WRAPPER and (why or not accelerator.can_amp):
        wrapper.type = PLAIN_WRAPPER
        for key in ("dtype", "loss_scale", "use_fsdp"):
            wrapper.pop(key, None)
    if accelerator.kind == "cuda":
        for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
            loader = cfg.get(name)
            if loader and int(loader.get("num_workers", 0)) > 0:
                loader["pin_memory"] = True
    return Precision(amp, amp if amp in DTYPES and not why else FP32, why)


def trained_precision(optim_wrapper: Any) -> str:
    """The precision an mmengine optimizer wrapper (or a dict of them) trains in."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapperDict

    wrappers = optim_wrapper.values() if isinstance(optim_wrapper, OptimWrapperDict) else [optim_wrapper]
    for wrapper in wrappers:
        if isinstance(wrapper, AmpOptimWrapper):
            return _dtype_name(wrapper.cast_dtype)
    return FP32


def runner_precision(runner: Any, accelerator: Accelerator | None = None) -> Precision:
    """What a built Runner trains in, against what its config asked for."""
    asked = requested(runner.cfg)
    effective = trained_precision(runner.optim_wrapper)
    why = ""
    if asked in DTYPES and effective != asked:
        why = unavailable(asked, accelerator or detect_accelerator()) or f"{asked} not applied: trained in {effective}"
    return Precision(asked, effective, why)
