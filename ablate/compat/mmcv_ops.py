"""Pure-PyTorch stand-ins for the few `mmcv.ops` names mmseg imports unconditionally.

mmcv-lite ships `mmcv/ops/*.py` but not the compiled `mmcv._ext`, so `import mmcv.ops` fails and
with it `import mmseg`. When (and only when) `mmcv._ext` is missing, a small module is placed at
`mmcv.ops` that provides `point_sample` and `sigmoid_focal_loss` and raises `ModuleNotFoundError`
for every other operator, which is what mmseg's guarded imports (`try: ... except
ModuleNotFoundError`) expect.

Installing only registers an import finder for the name `mmcv.ops`: nothing is imported until
mmseg (or anyone) imports `mmcv.ops`, so `import ablate` stays cheap (no torch) for commands that
never build a model.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_MARK = "__ablate_lite_ops__"

# Which mmseg / mmengine feature needs which compiled operator: the error message names it.
_FEATURES: dict[str, str] = {
    "CrissCrossAttention": "CCNet (CCHead)",
    "PSAMask": "PSANet (PSAHead)",
    "DeformConv2d": "deformable convolutions (DCN)",
    "ModulatedDeformConv2d": "modulated deformable convolutions (DCNv2)",
    "SyncBatchNorm": "mmcv's MMSyncBN (use torch SyncBN or plain BN instead)",
    "MultiScaleDeformableAttention": "multi-scale deformable attention (Mask2Former)",
    "CARAFEPack": "CARAFE upsampling",
    "nms": "non-maximum suppression",
    "roi_align": "RoI Align",
}


def has_compiled_ops() -> bool:
    """True when a full mmcv build (with its compiled `mmcv._ext`) is installed.

    Looks for the extension file in mmcv's folder instead of asking for `mmcv._ext`, which would
    import mmcv (and torch) on every `import ablate`.
    """
    try:
        spec = importlib.util.find_spec("mmcv")
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    return any(
        entry.name.startswith("_ext")
        for folder in spec.submodule_search_locations or ()
        for entry in Path(folder).iterdir()
    )


def point_sample(input: Any, points: Any, align_corners: bool = False, **kwargs: Any) -> Any:
    """Bilinear sampling at normalised [0, 1] point coordinates (mmcv semantics).

    `input` is (N, C, H, W); `points` is (N, P, 2) or (N, Hg, Wg, 2) with (x, y) in [0, 1].
    Returns (N, C, P) or (N, C, Hg, Wg).
    """
    import torch.nn.functional as F

    flat = points.dim() == 3
    grid = points.unsqueeze(2) if flat else points
    out = F.grid_sample(input, grid * 2.0 - 1.0, align_corners=align_corners, **kwargs)
    return out.squeeze(3) if flat else out


def sigmoid_focal_loss(
    input: Any,
    target: Any,
    gamma: float = 2.0,
    alpha: float = 0.25,
    weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """Sigmoid focal loss with class-index targets, numerically matching mmcv's CUDA op.

    `input` is (N, C) logits, `target` is (N,) class indices; an index outside [0, C) (mmcv uses C
    for background) makes every class a negative. `weight` is per sample, shape (N,).
    """
    import torch
    import torch.nn.functional as F

    num_classes = input.size(1)
    classes = torch.arange(num_classes, device=input.device).unsqueeze(0)
    positive = (target.long().unsqueeze(1) == classes).to(input.dtype)
    prob = input.sigmoid()
    ce = F.binary_cross_entropy_with_logits(input, positive, reduction="none")
    p_t = prob * positive + (1 - prob) * (1 - positive)
    alpha_t = alpha * positive + (1 - alpha) * (1 - positive)
    loss = alpha_t * (1 - p_t).pow(gamma) * ce
    if weight is not None:
        loss = loss * weight.view(-1, 1)
    if reduction == "mean":
        return loss.sum() / input.numel()
    if reduction == "sum":
        return loss.sum()
    return loss


class _LiteOps(types.ModuleType):
    """`mmcv.ops` for mmcv-lite: two pure-PyTorch ops, a clear error for everything else."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        feature = _FEATURES.get(name, f"the compiled operator '{name}'")
        raise ModuleNotFoundError(
            f"mmcv.ops.{name} is not available with mmcv-lite: {feature} needs the full mmcv with "
            "compiled ops (pip install mmcv==2.1.0 built for your torch/CUDA).",
            name="mmcv.ops",
        )


class _LiteOpsFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers the import of `mmcv.ops` (and only that name) with the lite module."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> Any:
        if fullname != "mmcv.ops":
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        module = _LiteOps("mmcv.ops", __doc__)
        module.point_sample = point_sample  # type: ignore[attr-defined]
        module.sigmoid_focal_loss = sigmoid_focal_loss  # type: ignore[attr-defined]
        module.__all__ = ["point_sample", "sigmoid_focal_loss"]  # type: ignore[attr-defined]
        setattr(module, _MARK, True)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install_mmcv_ops() -> bool:
    """Serve the lite `mmcv.ops` unless compiled ops exist. Returns True if it is (or will be) ours."""
    existing = sys.modules.get("mmcv.ops")
    if existing is not None:
        return bool(getattr(existing, _MARK, False))
    if any(isinstance(finder, _LiteOpsFinder) for finder in sys.meta_path):
        return True
    if importlib.util.find_spec("mmcv") is None or has_compiled_ops():
        return False
    sys.meta_path.insert(0, _LiteOpsFinder())
    return True
