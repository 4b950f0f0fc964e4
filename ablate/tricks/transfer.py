"""Transfer learning: start the whole segmentor (encoder + decoder) from a checkpoint."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import ConfigDict, Field, model_validator

from ablate.tricks.base import Trick, TrickContext, TrickParams, register_trick


class TransferParams(TrickParams):
    checkpoint: Optional[str] = None  # a file, e.g. a downloaded Cityscapes checkpoint
    from_: Optional[str] = Field(None, alias="from")  # or a `pretrain:` entry of the same study

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_source(self) -> "TransferParams":
        if (self.checkpoint is None) == (self.from_ is None):
            raise ValueError("give exactly one of 'checkpoint' (a file) or 'from' (a pretrain entry)")
        return self


@register_trick
class Transfer(Trick):
    name = "transfer"
    Params = TransferParams
    summary = "load_from a checkpoint (path or a pretrain trial's best)"

    def apply(self, cfg: Any, params: TransferParams, ctx: TrickContext) -> None:
        path = ctx.checkpoint_of(params.from_) if params.from_ else params.checkpoint
        cfg.load_from = str(path)
