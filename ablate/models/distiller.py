"""A segmentor that trains its student under a frozen teacher (knowledge distillation).

`DistillEncoderDecoder` *is* the student: an mmseg `EncoderDecoder` whose config keeps the usual
top-level `backbone`, `decode_head`, `auxiliary_head` keys, so every trick that edits those
(OHEM, class-balanced loss, auxiliary head) edits the student, and prediction, test-time
augmentation, checkpoints and FLOPs / parameter counting see the student alone. It adds:

* `teacher`: `dict(model=<mmseg model config>, checkpoint=<path>)`. The teacher is built and
  loaded on the first training step, not at construction: a study plans (and counts the FLOPs
  of) a student before its teacher has been trained. It is held outside the module tree, so it
  never reaches `state_dict`, the optimizer, `model.to()`, the runner's `init_weights` or the
  complexity counter; it is moved to the student's device when used, kept in eval mode and
  frozen (no gradients).
* `distill_loss`: a loss called as `loss(student_logits, teacher_logits)` on the decode heads'
  logits, logged as `distill.<loss_name>` (`ChannelWiseDivergence` by default).
* `distill_features` (optional): backbone/neck outputs also distilled, each
  `dict(index=i, student_channels=c_s, teacher_channels=c_t)`. When the channels differ a 1x1
  conv maps the student's map to the teacher's width (as in Shu et al.); like an auxiliary head,
  those adapters are trained and saved with the student and count in its parameters, not in its
  FLOPs (inference never runs them). Off by default.

The teacher sees the student's preprocessed inputs, so both must share normalisation, and it
must predict the same classes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from mmengine.config import ConfigDict
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import nn

import ablate.losses  # noqa: F401  (registers ChannelWiseDivergence)


def load_teacher(model: dict, checkpoint: str) -> EncoderDecoder:
    """Build the teacher, load every one of its weights, freeze it and put it in eval mode."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from ablate.compat import install_checkpoint_loader
    from ablate.config.distillation import plain_model_config

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"teacher checkpoint {path} not found (has the teacher trial finished?)")
    teacher = MODELS.build(ConfigDict(plain_model_config(model)))
    install_checkpoint_loader()  # weights-only loading of mmengine checkpoints (ablate.compat)
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    missing, _unexpected = teacher.load_state_dict(state, strict=False)
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise RuntimeError(
            f"teacher checkpoint {path} lacks {len(missing)} weights of the teacher model ({shown}): "
            "does the teacher's config match the checkpoint?"
        )
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


def _loss_name(loss: nn.Module) -> str:
    """mmseg sums every logged key containing 'loss' into the total: keep that word in the name."""
    name = str(getattr(loss, "loss_name", "loss_distill"))
    return name if "loss" in name else f"loss_{name}"


@MODELS.register_module()
class DistillEncoderDecoder(EncoderDecoder):
    """The student `EncoderDecoder`, trained with an added distillation loss from a frozen teacher.

    Args:
        teacher: `dict(model=..., checkpoint=...)`, see the module docstring.
        distill_loss: Loss on (student, teacher) decode-head logits.
        distill_features: Feature maps also distilled (index into `extract_feat`'s outputs).
        feature_loss: Loss on feature pairs; default: `distill_loss`'s config.
        **kwargs: `EncoderDecoder`'s arguments: the student.
    """

    def __init__(
        self,
        teacher: dict,
        distill_loss: dict | None = None,
        distill_features: Sequence[dict] = (),
        feature_loss: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "model" not in teacher or "checkpoint" not in teacher:
            raise ValueError("teacher needs 'model' (an mmseg model config) and 'checkpoint' (a path)")
        self.teacher_cfg = copy.deepcopy(dict(teacher))
        distill_loss = distill_loss or dict(type="ChannelWiseDivergence")
        self.distill_loss = MODELS.build(distill_loss)
        self.feature_pairs = tuple(int(f["index"]) for f in distill_features)
        if self.feature_pairs:
            self.feature_loss = MODELS.build(feature_loss or distill_loss)
            self.distill_adapters = nn.ModuleList(
                nn.Conv2d(int(f["student_channels"]), int(f["teacher_channels"]), 1)
                if int(f["student_channels"]) != int(f["teacher_channels"])
                else nn.Identity()
                for f in distill_features
            )
        # the teacher lives in a plain attribute, outside the module tree (see the module docstring)
        self.__dict__["_teacher"] = None

    @property
    def teacher(self) -> EncoderDecoder | None:
        """The loaded teacher, or None before the first training step."""
        return self.__dict__["_teacher"]

    def teacher_on(self, device: torch.device) -> EncoderDecoder:
        """The teacher on the student's device; `model.to()` cannot reach it, so it follows here."""
        teacher = self.__dict__["_teacher"]
        if teacher is None:
            teacher = load_teacher(self.teacher_cfg["model"], self.teacher_cfg["checkpoint"])
            self.__dict__["_teacher"] = teacher
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        return teacher

    def _student_logits_and_losses(self, x: list[torch.Tensor], data_samples: Any) -> tuple[torch.Tensor, dict]:
        """The decode head's logits and its losses, from one forward where the head allows it."""
        head = self.decode_head
        if type(head).loss is BaseDecodeHead.loss:  # the plain forward + loss_by_feat
            logits = head.forward(x)
            return logits, add_prefix(head.loss_by_feat(logits, data_samples), "decode")
        return head.forward(x), self._decode_head_forward_train(x, data_samples)

    def loss(self, inputs: torch.Tensor, data_samples: Any) -> dict:
        x = self.extract_feat(inputs)
        logits, losses = self._student_logits_and_losses(x, data_samples)
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        teacher = self.teacher_on(inputs.device)
        if teacher.training:  # someone switched it; a teacher's BN statistics must not move
            teacher.eval()
        with torch.no_grad():
            teacher_x = teacher.extract_feat(inputs)
            teacher_logits = teacher.decode_head.forward(teacher_x)
        distill = {_loss_name(self.distill_loss): self.distill_loss(logits, teacher_logits)}
        for adapter, index in zip(getattr(self, "distill_adapters", ()), self.feature_pairs):
            student_map = adapter(x[index])
            teacher_map = teacher_x[index]
            if student_map.shape[2:] != teacher_map.shape[2:]:
                student_map = resize(student_map, size=teacher_map.shape[2:], mode="bilinear", align_corners=False)
            distill[f"{_loss_name(self.feature_loss)}_feat{index}"] = self.feature_loss(student_map, teacher_map)
        losses.update(add_prefix(distill, "distill"))
        return losses
