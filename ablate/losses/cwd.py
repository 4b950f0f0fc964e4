"""Channel-wise distillation loss (Shu et al., "Channel-wise Knowledge Distillation for Dense
Prediction", ICCV 2021).

Pixel-wise distillation asks the student to copy the teacher's class distribution at every
position, which spends the student's capacity on the background pixels that dominate a driving
scene. CWD instead turns each channel into a distribution over the H x W positions, so the
student learns *where* the teacher puts each class (or feature), the most salient regions
weighing most. Written as the report states it:

    loss = loss_weight * tau^2 / (N * C) * sum_{n, c} KL(p_T(n, c) || p_S(n, c)),
    p(n, c) = softmax over the H x W positions of logits[n, c] / tau.

The temperature softens both distributions; tau^2 keeps the gradient scale independent of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class ChannelWiseDivergence(nn.Module):
    """KL(teacher || student) between per-channel spatial distributions, averaged over N x C.

    Args:
        tau: Softmax temperature (4.0 in Shu et al.).
        loss_weight: Factor on the loss (3.0 in Shu et al.'s segmentation setting).
        align_corners: Used when the student's map is resized to the teacher's size.
    """

    def __init__(
        self, tau: float = 4.0, loss_weight: float = 3.0, align_corners: bool = False, loss_name: str = "loss_cwd"
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.tau = float(tau)
        self.loss_weight = float(loss_weight)
        self.align_corners = align_corners
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """The key in the loss dict (mmseg counts keys containing 'loss' into the total)."""
        return self._loss_name

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.dim() != 4 or teacher.dim() != 4:
            raise ValueError(f"CWD needs (N, C, H, W) maps, got {tuple(student.shape)} and {tuple(teacher.shape)}")
        if student.shape[:2] != teacher.shape[:2]:
            raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ in N or C")
        if student.shape[2:] != teacher.shape[2:]:
            student = F.interpolate(student, size=teacher.shape[2:], mode="bilinear", align_corners=self.align_corners)
        n, c = teacher.shape[:2]
        # float32 at least: under autocast, half-precision log-softmax over H x W loses the tails
        s = student.reshape(n * c, -1).float() / self.tau
        t = teacher.detach().reshape(n * c, -1).float() / self.tau
        log_p_t = F.log_softmax(t, dim=1)
        kl = (log_p_t.exp() * (log_p_t - F.log_softmax(s, dim=1))).sum()
        return self.loss_weight * self.tau**2 * kl / (n * c)
