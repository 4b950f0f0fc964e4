"""Online hard example mining: train only on pixels the model is unsure of.

mmseg's `OHEMPixelSampler(thresh, min_kept)` keeps pixels whose predicted probability of the true
class is below `thresh`, and at least `min_kept` pixels per batch. The paper's 10,000 refers to
its own crop; with `scale_min_kept` (default) it is scaled by the ratio of the trial's crop area
to `reference_crop` (the KITTI config's 375x750 crop), so a 96x96 CPU demo keeps a comparable
share of its pixels rather than all of them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ablate.tricks.base import Trick, TrickContext, TrickParams, decode_heads, register_trick

MIN_KEPT = 2  # `OHEMPixelSampler` asserts min_kept > 1


class OHEMParams(TrickParams):
    thresh: float = Field(0.5, gt=0, le=1, description="keep pixels whose true-class probability is below it")
    min_kept: int = Field(10000, ge=2, description="mmseg's sampler keeps at least 2 pixels")
    scale_min_kept: bool = True
    reference_crop: tuple[int, int] = (375, 750)


def scaled_min_kept(params: OHEMParams, crop: tuple[int, int] | None) -> int:
    if not params.scale_min_kept or crop is None:
        return params.min_kept
    ratio = (crop[0] * crop[1]) / (params.reference_crop[0] * params.reference_crop[1])
    return max(MIN_KEPT, round(params.min_kept * min(ratio, 1.0)))  # mmseg refuses fewer than 2


def crop_of(cfg: Any) -> tuple[int, int] | None:
    """The training crop (h, w): the data preprocessor's padding size, else the train pipeline's
    RandomCrop (datasets whose configs pad nothing)."""
    size = (cfg.model.get("data_preprocessor") or {}).get("size")
    if size:
        return tuple(size)
    loader = cfg.get("train_dataloader") or {}
    for step in (loader.get("dataset") or {}).get("pipeline") or []:
        if isinstance(step, dict) and step.get("type") == "RandomCrop" and step.get("crop_size"):
            crop = step["crop_size"]
            return (int(crop[0]), int(crop[1])) if isinstance(crop, (list, tuple)) else (int(crop), int(crop))
    return None


@register_trick
class OHEM(Trick[OHEMParams]):
    name = "ohem"
    Params = OHEMParams
    summary = "OHEMPixelSampler(thresh=0.5, min_kept=10000) on the decode head"

    def apply(self, cfg: Any, params: OHEMParams, ctx: TrickContext) -> None:
        min_kept = scaled_min_kept(params, ctx.crop or crop_of(cfg))
        for head in decode_heads(cfg):
            head["sampler"] = dict(type="OHEMPixelSampler", thresh=params.thresh, min_kept=min_kept)
