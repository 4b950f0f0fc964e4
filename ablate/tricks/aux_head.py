"""Auxiliary FCN head on the second encoder stage (in_index=1), loss weight 0.4 vs 1.0.

The stage's channel count is read from the model config, for transformer and ResNet backbones
alike; an auxiliary head the base config already has is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from ablate.errors import ConfigError
from ablate.tricks.base import Trick, TrickContext, TrickParams, decode_heads, register_trick


class AuxHeadParams(TrickParams):
    in_index: int = Field(1, ge=0, description="encoder stage the head reads (0 = the first)")
    in_channels: int | None = Field(
        None, ge=1, description="that stage's channels; read from the backbone when omitted"
    )
    loss_weight: float = Field(0.4, gt=0)
    main_loss_weight: float = Field(1.0, gt=0)
    channels: int | None = Field(None, ge=1, description="hidden channels; default half the input's")
    num_convs: int = Field(1, ge=0)


_RESNET_EXPANSION = {18: 1, 34: 1, 50: 4, 101: 4, 152: 4}


def _known_stage_channels(cfg: Any) -> list[int] | None:
    backbone = cfg.model.backbone
    kind = backbone.get("type", "")
    if kind == "MixVisionTransformer":
        return [backbone["embed_dims"] * h for h in backbone["num_heads"]]
    if kind.startswith("ResNet") and backbone.get("depth", 50) in _RESNET_EXPANSION:
        expansion = _RESNET_EXPANSION[backbone.get("depth", 50)]
        base = backbone.get("base_channels", 64)
        return [base * expansion * 2**i for i in range(backbone.get("num_stages", 4))]
    if kind == "SwinTransformer":
        return [backbone["embed_dims"] * 2**i for i in range(len(backbone["depths"]))]
    stages = backbone.get("stage_channels") or backbone.get("out_channels")
    if isinstance(stages, (list, tuple)):
        return list(stages)
    heads = decode_heads(cfg)
    if heads and isinstance(heads[0].get("in_channels"), (list, tuple)):
        return list(heads[0]["in_channels"])
    return None


def _backbone(cfg: Any) -> str:
    name = Path(cfg.filename).name if getattr(cfg, "filename", None) else "the base config"
    return f"backbone '{cfg.model.backbone.get('type', '?')}' in {name}"


def stage_channels(cfg: Any) -> list[int]:
    """Output channels of each backbone stage, from the config alone."""
    stages = _known_stage_channels(cfg)
    if stages is None:
        raise ConfigError(f"aux_head.in_channels: cannot tell the stage channels of {_backbone(cfg)}; set it")
    return stages


def _dataset_classes(ctx: TrickContext) -> int:
    """The dataset's class count, for a main head that does not say its own (19: the KITTI layout's)."""
    meta = ctx.dataset_meta
    return int(meta.num_classes) if meta is not None else 19


@register_trick
class AuxHead(Trick[AuxHeadParams]):
    name = "aux_head"
    Params = AuxHeadParams
    summary = "FCN auxiliary head on encoder stage 2, loss weight 0.4"

    def problems(self, cfg: Any, params: AuxHeadParams) -> list[tuple[str, str]]:
        stages = _known_stage_channels(cfg)
        if stages is None:
            if params.in_channels is None:
                return [("in_channels", f"cannot tell the stage channels of {_backbone(cfg)}; set it")]
            return []
        if params.in_index >= len(stages):
            return [
                (
                    "in_index",
                    f"{params.in_index} is beyond the {len(stages)} stages of {_backbone(cfg)}; "
                    f"use 0..{len(stages) - 1}",
                )
            ]
        return []

    def apply(self, cfg: Any, params: AuxHeadParams, ctx: TrickContext) -> None:
        self.check(cfg, params)
        in_channels = params.in_channels or stage_channels(cfg)[params.in_index]
        main = decode_heads(cfg)[0]
        main_loss = main.get("loss_decode", {})
        if isinstance(main_loss, dict):
            main_loss["loss_weight"] = params.main_loss_weight
        aux_loss = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=params.loss_weight)
        balanced = main_loss.get("type") == "BalancedCrossEntropyLoss" if isinstance(main_loss, dict) else False
        if isinstance(main_loss, dict) and (balanced or main_loss.get("class_weight") is not None):
            aux_loss.update(type=main_loss["type"], class_weight=main_loss["class_weight"])
        cfg.model.auxiliary_head = dict(
            type="FCNHead",
            in_channels=in_channels,
            in_index=params.in_index,
            channels=params.channels or max(in_channels // 2, 16),
            num_convs=params.num_convs,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=main.get("num_classes", _dataset_classes(ctx)),
            norm_cfg=main.get("norm_cfg", dict(type="BN", requires_grad=True)),
            align_corners=main.get("align_corners", False),
            loss_decode=aux_loss,
        )
