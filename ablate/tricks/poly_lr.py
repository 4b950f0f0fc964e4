"""AdamW with polynomial decay: lr_i = lr0 * (1 - i/T)^power, T = the study's iterations."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ablate.tricks.base import Trick, TrickContext, TrickParams, register_trick


class PolyLRParams(TrickParams):
    lr: float = Field(1e-5, gt=0)  # the paper's lr0
    power: float = Field(1.0, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    eta_min: float = Field(0.0, ge=0)
    warmup_iters: int = Field(0, ge=0)  # optional linear warm-up
    warmup_ratio: float = Field(1e-6, gt=0, le=1)


@register_trick
class PolyLR(Trick[PolyLRParams]):
    name = "poly_lr"
    Params = PolyLRParams
    summary = "AdamW, PolyLR(lr0=1e-5, power=1.0) over the whole budget"

    def apply(self, cfg: Any, params: PolyLRParams, ctx: TrickContext) -> None:
        cfg.optim_wrapper = dict(
            type="OptimWrapper",
            optimizer=dict(type="AdamW", lr=params.lr, betas=(0.9, 0.999), weight_decay=params.weight_decay),
        )
        schedulers: list[dict] = []
        warmup = min(params.warmup_iters, ctx.iters)
        if warmup:
            schedulers.append(
                dict(type="LinearLR", start_factor=params.warmup_ratio, by_epoch=False, begin=0, end=warmup)
            )
        # mmengine's PolyLR reaches eta_min at iteration end-1; end = T + 1 gives exactly the
        # paper's lr_i = lr0 * (1 - i/T)^power for i = 0..T-1. A warm-up scales the first
        # iterations on top of it.
        schedulers.append(
            dict(type="PolyLR", eta_min=params.eta_min, power=params.power, begin=0, end=ctx.iters + 1, by_epoch=False)
        )
        cfg.param_scheduler = schedulers
