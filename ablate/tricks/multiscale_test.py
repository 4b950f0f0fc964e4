"""Multi-scale (and flipped) test-time augmentation for the trial's final evaluation.

mmseg's `SegTTAModel` averages the logits of every augmented view; the views come from a
`TestTimeAug` pipeline. Scales are ratios of the test image scale the config resizes to.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field, PositiveFloat

from ablate.config import keys
from ablate.errors import ConfigError
from ablate.tricks.base import Trick, TrickContext, TrickParams, register_trick


class MultiScaleParams(TrickParams):
    scales: tuple[PositiveFloat, ...] = Field((0.5, 0.75, 1.0, 1.25, 1.5, 1.75), min_length=1)
    flip: bool = True


def test_scale(cfg: Any) -> tuple[int, int]:
    """The (w, h) the test pipeline resizes images to."""
    for step in cfg.test_dataloader.dataset.pipeline:
        if step.get("type") == "Resize" and step.get("scale"):
            return tuple(step["scale"])
    raise ConfigError("multiscale_test: the config's test pipeline has no Resize(scale=...) step to scale from")


def _test_step(cfg: Any, kind: str) -> dict[str, Any]:
    """The test pipeline's own loading step (its backend, `reduce_zero_label`, ...), or the default."""
    for step in cfg.test_dataloader.dataset.get("pipeline") or []:
        if isinstance(step, dict) and step.get("type") == kind:
            return copy.deepcopy(dict(step))
    return dict(type=kind)


@register_trick
class MultiScaleTest(Trick[MultiScaleParams]):
    name = "multiscale_test"
    Params = MultiScaleParams
    summary = "TTA over scale ratios (+ flip), logits averaged, for the final evaluation"

    def apply(self, cfg: Any, params: MultiScaleParams, ctx: TrickContext) -> None:
        width, height = test_scale(cfg)
        resizes = [
            dict(type="Resize", scale=(round(width * r), round(height * r)), keep_ratio=True) for r in params.scales
        ]
        flips = [dict(type="RandomFlip", prob=0.0, direction="horizontal")]
        if params.flip:
            flips.append(dict(type="RandomFlip", prob=1.0, direction="horizontal"))
        cfg.tta_model = dict(type="SegTTAModel")
        cfg.tta_pipeline = [
            _test_step(cfg, "LoadImageFromFile"),
            dict(
                type="TestTimeAug",
                transforms=[resizes, flips, [_test_step(cfg, "LoadAnnotations")], [dict(type="PackSegInputs")]],
            ),
        ]
        cfg[keys.FINAL_EVAL] = keys.FINAL_EVAL_TTA
