"""FLOPs and parameters of a segmentor's inference forward pass, as the paper's Table 1 counts them.

One forward pass of the encoder-decoder at the input size, traced *including* the final bilinear
resize of the logits back to that size (mmseg's `_forward` stops at the decoder's resolution).
mmengine's counter gives that resize (and batch norm) no FLOPs, exactly as in the numbers the paper
reports: SegFormer-B0 at 375x1242 counts 15.579 G here and in Table 1.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from ablate.config import use_plain_bn


@dataclass(frozen=True)
class Complexity:
    flops_g: float
    params_m: float
    height: int
    width: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _logits_at_input_size(segmentor: Any) -> Any:
    """The segmentor's logits resized to the input, as one traceable module (torch loaded here:
    importing this package must stay cheap for commands that only read cached counts)."""
    import torch.nn.functional as F
    from torch import nn

    class LogitsAtInputSize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.segmentor = segmentor

        def forward(self, inputs: Any) -> Any:
            logits = self.segmentor._forward(inputs)
            align = bool(getattr(getattr(self.segmentor, "decode_head", None), "align_corners", False))
            return F.interpolate(logits, size=inputs.shape[2:], mode="bilinear", align_corners=align)

    return LogitsAtInputSize()


def count_model(model: Any, height: int, width: int) -> Complexity:
    """Count on an already built model (kept in eval mode, no gradients, on CPU copy of inputs)."""
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    quiet = MMLogger.get_current_instance()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "unsupported operator" notes for zero-cost ops
    try:
        with torch.no_grad():
            info = get_model_complexity_info(
                _logits_at_input_size(model),
                inputs=(torch.zeros(1, 3, height, width, device=device),),
                show_table=False,
                show_arch=False,
            )
    finally:
        quiet.setLevel(level)
        model.train(was_training)
    return Complexity(
        flops_g=round(info["flops"] / 1e9, 3),
        params_m=round(info["params"] / 1e6, 3),
        height=height,
        width=width,
    )


def count_config(cfg: Any, height: int, width: int) -> Complexity:
    """Build the model of an mmseg config (plain BN, no weights loaded) and count it."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from ablate.registry import register_all

    register_all()
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance("ablate-flops", scope_name="mmseg")
    use_plain_bn(cfg)
    model_cfg = cfg.model.copy()
    model_cfg.pop("pretrained", None)
    model = MODELS.build(model_cfg)
    return count_model(model, height, width)
