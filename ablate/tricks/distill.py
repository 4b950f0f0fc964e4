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

import copy
from typing import Any, Optional

from pydantic import Field

from ablate.errors import ConfigError
from ablate.tracking.checkpoints import is_remote
from ablate.tricks.base import Trick, TrickContext, TrickParams, decode_heads, register_trick

DISTILLER = "DistillEncoderDecoder"  # ablate.models.distiller
STUDENT_TYPES = ("EncoderDecoder",)
DISTILL_KEYS = ("teacher", "distill_loss", "distill_features", "feature_loss")


def plain_model_config(model: Any) -> dict:
    """A model config as a stand-alone teacher: no distillation of its own, no weights to fetch
    (the teacher's checkpoint holds them all) and no preprocessor (it sees the student's inputs)."""
    model = copy.deepcopy(dict(model))
    if model.get("type") == DISTILLER:
        model["type"] = "EncoderDecoder"
    for key in (*DISTILL_KEYS, "data_preprocessor", "init_cfg"):
        model.pop(key, None)
    model["pretrained"] = None
    backbone = model.get("backbone")
    if isinstance(backbone, dict):
        backbone = dict(backbone)
        backbone.pop("init_cfg", None)
        backbone.pop("pretrained", None)
        model["backbone"] = backbone
    return model


def split_distillation(cfg: Any) -> tuple[Any, Optional[Any]]:
    """(student, teacher) configs of a distillation config, each a plain segmentor's config;
    `(cfg, None)` for any other. Lets a student share FLOPs counts (and their cache entries) with
    the same model trained alone."""
    from mmengine.config import Config

    teacher = cfg.model.get("teacher")
    if cfg.model.get("type") != DISTILLER or not isinstance(teacher, dict):
        return cfg, None
    student = copy.deepcopy(cfg)
    student.model.type = "EncoderDecoder"
    for key in DISTILL_KEYS:
        student.model.pop(key, None)
    return student, Config(dict(model=plain_model_config(teacher["model"])))


class DistillParams(TrickParams):
    teacher: str = Field(min_length=1, description="pretrain entry or zoo row (trained first), or a checkpoint file")
    config: Optional[str] = Field(None, description="the teacher's mmseg config file; needed for a checkpoint")
    tau: float = Field(4.0, gt=0, description="softmax temperature over each channel's H x W positions")
    loss_weight: float = Field(3.0, gt=0)
    features: tuple[int, ...] = Field((), description="encoder outputs (indices) also distilled, besides the logits")
    feature_loss_weight: Optional[float] = Field(None, gt=0, description="default: loss_weight")

    @property
    def source(self) -> str:
        """The study entry this trick depends on, when `teacher` names one (see the study's checks)."""
        return self.teacher


def _stages(model: Any) -> Optional[list[int]]:
    from mmengine.config import Config

    from ablate.tricks.aux_head import stage_channels

    if model.get("neck") is not None:
        return None  # extract_feat returns the neck's maps, whose widths the backbone does not tell
    try:
        return stage_channels(Config(dict(model=model)))
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def _classes(model: Any) -> Optional[int]:
    head = model.get("decode_head")
    head = head[-1] if isinstance(head, (list, tuple)) else head
    return head.get("num_classes") if isinstance(head, dict) else None


def add_import(cfg: Any, module: str) -> None:
    """Name a module in `custom_imports`, so the dumped config builds under a plain Runner too."""
    imports = dict(cfg.get("custom_imports") or {"imports": [], "allow_failed_imports": False})
    if module not in imports["imports"]:
        imports["imports"] = [*imports["imports"], module]
    cfg.custom_imports = imports


@register_trick
class Distill(Trick):
    name = "distill"
    Params = DistillParams
    summary = "channel-wise distillation (tau=4, weight 3) from a frozen teacher; only the student counts"

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
                return [("features", f"{beyond[0]} is beyond the {len(stages)} encoder outputs; use 0..{len(stages) - 1}")]
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
            if other is None or any(i >= len(other) for i in params.features):
                raise ConfigError(f"distill.features: the teacher has no encoder outputs {list(params.features)} of known width")
            cfg.model.distill_features = [
                dict(index=i, student_channels=student[i], teacher_channels=other[i]) for i in params.features
            ]
            cfg.model.feature_loss = dict(loss, loss_weight=params.feature_loss_weight or params.loss_weight)
        add_import(cfg, "ablate.models")
