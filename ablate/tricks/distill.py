"""Channel-wise knowledge distillation (CWD) from a teacher: the report's named next step.

The trial's model becomes the student of a `DistillEncoderDecoder` (ablate.models.distiller),
trained with `ChannelWiseDivergence(tau, loss_weight)` between its decode-head logits and those of
a frozen teacher; the student alone is evaluated, saved and counted.

`teacher` names, in this order of lookup:
  * a `pretrain:` entry or a `zoo:` row of the same study: trained first (a dependency, whose id
    becomes part of the student's trial id, as for `transfer`), its `best.pth` is the teacher.
    A zoo row teaches the student of the same seed. The teacher's model is that trial's resolved
    model config, or `config:` when given (required for a pretrain entry that is a checkpoint file);
  * otherwise a checkpoint file, whose mmseg config `config:` must give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from ablate.config.distillation import plain_model_config
from ablate.config.keys import DISTILLER, MODELS_MODULE
from ablate.config.resolve import add_import
from ablate.errors import ConfigError
from ablate.tracking.checkpoints import is_remote
from ablate.tricks.base import StudyEntries, Trick, TrickContext, TrickParams, decode_heads, register_trick

STUDENT_TYPES = ("EncoderDecoder",)


class DistillParams(TrickParams):
    teacher: str = Field(min_length=1, description="pretrain entry or zoo row (trained first), or a checkpoint file")
    config: str | None = Field(None, description="the teacher's mmseg config file; needed for a checkpoint")
    tau: float = Field(4.0, gt=0, description="softmax temperature over each channel's H x W positions")
    loss_weight: float = Field(3.0, gt=0)
    features: tuple[int, ...] = Field((), description="encoder outputs (indices) also distilled, besides the logits")
    feature_loss_weight: float | None = Field(None, gt=0, description="default: loss_weight")


def _stages(model: Any) -> list[int] | None:
    from mmengine.config import Config

    from ablate.tricks.aux_head import stage_channels

    if model.get("neck") is not None:
        return None  # extract_feat returns the neck's maps, whose widths the backbone does not tell
    try:
        return stage_channels(Config(dict(model=model)))
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def _classes(model: Any) -> int | None:
    head = model.get("decode_head")
    head = head[-1] if isinstance(head, (list, tuple)) else head
    return head.get("num_classes") if isinstance(head, dict) else None


@register_trick
class Distill(Trick[DistillParams]):
    name = "distill"
    Params = DistillParams
    summary = "channel-wise distillation (tau=4, weight 3) from a frozen teacher; only the student counts"

    def source(self, params: DistillParams) -> str | None:
        return params.teacher

    def teacher(self, params: DistillParams) -> str | None:
        return params.teacher

    def files(self, params: DistillParams) -> list[tuple[str, str, str]]:
        return [("config", params.config, "teacher config file")] if params.config is not None else []

    def checkpoint_file(self, params: DistillParams, entries: frozenset[str]) -> tuple[str, str, str] | None:
        return None if params.teacher in entries else ("teacher", params.teacher, "teacher checkpoint")

    def source_problems(self, params: DistillParams, path: str, entries: StudyEntries) -> list[tuple[str, str]]:
        """A teacher is a trained pretrain entry or zoo row, or a checkpoint file with `config:`."""
        teacher, config = params.teacher, params.config
        if teacher == entries.own:
            return [
                (
                    f"{path}.teacher",
                    f"zoo row '{teacher}' would distill from itself (the recipe applies to "
                    "every zoo row): put distill in a ladder, or the teacher under pretrain:",
                )
            ]
        if teacher in entries.files and config is None:
            return [
                (f"{path}.config", f"pretrain entry '{teacher}' is a checkpoint file: give the teacher's mmseg config")
            ]
        if teacher not in entries.trained | entries.files and config is None:
            known = ", ".join(sorted(entries.trained | entries.files)) or "none"
            return [
                (
                    f"{path}.teacher",
                    f"no pretrain entry or zoo row named '{teacher}' (known: {known}); "
                    "a checkpoint file as teacher also needs `config:` (its mmseg config)",
                )
            ]
        return []

    def problems(self, cfg: Any, params: DistillParams) -> list[tuple[str, str]]:
        kind = cfg.model.get("type")
        if kind == DISTILLER:
            return [("", "the model is already a distillation student; list distill once")]
        if kind not in STUDENT_TYPES:
            return [("", f"the student must be an mmseg EncoderDecoder; this config builds a {kind}")]
        if params.features:
            stages = _stages(cfg.model)
            if stages is None:
                return [("features", "cannot tell this model's feature widths (a neck, or an unknown backbone)")]
            beyond = [i for i in params.features if i >= len(stages)]
            if beyond:
                return [
                    ("features", f"{beyond[0]} is beyond the {len(stages)} encoder outputs; use 0..{len(stages) - 1}")
                ]
        return []

    def teacher_model(self, params: DistillParams, ctx: TrickContext) -> Any:
        from ablate.config import load_base, use_plain_bn

        if params.config is not None:
            teacher_cfg = load_base(ctx.path_of(params.config))
            use_plain_bn(teacher_cfg)
            model = teacher_cfg.model
        else:
            model = ctx.model_of(params.teacher)
            if model is None:
                raise ConfigError(f"distill.config: teacher '{params.teacher}' is a checkpoint; give its mmseg config")
        return plain_model_config(model)

    def apply(self, cfg: Any, params: DistillParams, ctx: TrickContext) -> None:
        self.check(cfg, params)
        teacher = self.teacher_model(params, ctx)
        ours, theirs = _classes(cfg.model), _classes(teacher)
        if ours != theirs:
            raise ConfigError(f"distill.teacher: the teacher predicts {theirs} classes, the student {ours}")
        checkpoint: str | Path
        try:
            checkpoint = ctx.checkpoint_of(params.teacher)
        except KeyError:  # not a study entry: a checkpoint file
            checkpoint = params.teacher if is_remote(params.teacher) else ctx.path_of(params.teacher)
        align = bool(decode_heads(cfg)[0].get("align_corners", False)) if decode_heads(cfg) else False
        loss = dict(type="ChannelWiseDivergence", tau=params.tau, loss_weight=params.loss_weight, align_corners=align)
        cfg.model.type = DISTILLER
        cfg.model.teacher = dict(model=teacher, checkpoint=str(checkpoint))
        cfg.model.distill_loss = loss
        if params.features:
            student, other = _stages(cfg.model), _stages(teacher)
            assert student is not None  # `check` above refuses features of a student of unknown widths
            if other is None or any(i >= len(other) for i in params.features):
                raise ConfigError(
                    f"distill.features: the teacher has no encoder outputs {list(params.features)} of known width"
                )
            cfg.model.distill_features = [
                dict(index=i, student_channels=student[i], teacher_channels=other[i]) for i in params.features
            ]
            cfg.model.feature_loss = dict(loss, loss_weight=params.feature_loss_weight or params.loss_weight)
        add_import(cfg, MODELS_MODULE)
