"""Cross-entropy with per-class weights that tolerates ignored pixels.

mmseg 1.2.2's `CrossEntropyLoss` computes its weighted average by indexing `class_weight` with the
raw labels, so any ignore pixel (255) raises an IndexError. This subclass keeps mmseg's semantics
(loss = sum of w_y * ce over pixels / sum of w_y over labelled pixels; OHEM pixel weights
multiply the numerator) and simply leaves ignored pixels out of both sums.

Under mixed precision the decode head hands over half-precision logits; both sums run over
every labelled pixel of the batch (hundreds of thousands at full size), far past float16's
65504 and bfloat16's 8-bit mantissa, so the loss is computed in float32 whatever comes in.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS


@MODELS.register_module()
class BalancedCrossEntropyLoss(CrossEntropyLoss):
    def forward(
        self,
        cls_score: torch.Tensor,
        label: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
        ignore_index: int = 255,
        **kwargs: Any,
    ) -> torch.Tensor:
        cls_score = cls_score.float()
        if self.class_weight is None:
            return super().forward(cls_score, label, weight, avg_factor, reduction_override, ignore_index, **kwargs)
        class_weight = cls_score.new_tensor(self.class_weight)
        per_pixel = F.cross_entropy(cls_score, label, weight=class_weight, reduction="none", ignore_index=ignore_index)
        if weight is not None:
            per_pixel = per_pixel * weight.float()
        valid = label != ignore_index
        denominator = class_weight[label[valid]].sum() if avg_factor is None else cls_score.new_tensor(avg_factor)
        return self.loss_weight * per_pixel.sum() / denominator.clamp(min=torch.finfo(cls_score.dtype).eps)
