"""What a distillation student's config holds, and the teacher's model as a config of its own.

The `distill` trick writes a student (`keys.DISTILLER` with the `keys.DISTILL_KEYS` in its
`model`); the student model (`ablate.models.distiller`) builds its teacher from it and the plan
counts the two models' FLOPs apart. Plain dict work: no model is built here.
"""

from __future__ import annotations

import copy
from typing import Any

from ablate.config.keys import DISTILL_KEYS, DISTILLER


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


def split_distillation(cfg: Any) -> tuple[Any, Any | None]:
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
