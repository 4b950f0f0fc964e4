"""Transfer learning: start the whole segmentor (encoder + decoder) from a checkpoint."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from ablate.tricks.base import StudyEntries, Trick, TrickContext, TrickParams, register_trick


class TransferParams(TrickParams):
    checkpoint: str | None = None  # a file, e.g. a downloaded Cityscapes checkpoint
    from_: str | None = Field(None, alias="from")  # or a `pretrain:` entry of the same study

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_source(self) -> TransferParams:
        if (self.checkpoint is None) == (self.from_ is None):
            raise ValueError("give exactly one of 'checkpoint' (a file) or 'from' (a pretrain entry)")
        return self


@register_trick
class Transfer(Trick[TransferParams]):
    name = "transfer"
    Params = TransferParams
    summary = "load_from a checkpoint (path or a pretrain trial's best)"
    loads_weights = True

    def source(self, params: TransferParams) -> str | None:
        return params.from_

    def checkpoint_file(self, params: TransferParams, entries: frozenset[str]) -> tuple[str, str, str] | None:
        return ("checkpoint", params.checkpoint, "checkpoint") if params.checkpoint is not None else None

    def source_problems(self, params: TransferParams, path: str, entries: StudyEntries) -> list[tuple[str, str]]:
        if params.from_ is None or params.from_ in entries.pretrain:
            return []
        known = ", ".join(sorted(entries.pretrain)) or "none"
        return [(f"{path}.from", f"no pretrain entry named '{params.from_}' (known: {known})")]

    def apply(self, cfg: Any, params: TransferParams, ctx: TrickContext) -> None:
        path = ctx.checkpoint_of(params.from_) if params.from_ else params.checkpoint
        cfg.load_from = str(path)
