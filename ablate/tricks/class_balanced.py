"""Class-balanced cross-entropy from the effective number of samples (Cui et al., CVPR 2019).

w_c is proportional to (1 - beta) / (1 - beta^n_c), n_c the train pixel count of class c, and the
weights are normalised to sum to the number of classes. Pixel counts are large (1e5..1e8), so
the default beta is derived from the data: beta = 1 - 1/median(n_c). Then a class with far fewer
pixels than the median is weighted about inversely to its count and a class with far more
saturates, which is the regime the paper's beta values have for image counts. Classes absent from
the train split never appear as targets; they get weight 0 (it has no effect) and are excluded
from the normalisation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from ablate.config import keys
from ablate.config.resolve import add_import, set_data_root
from ablate.errors import ConfigError, DataError
from ablate.tricks.base import (
    Trick,
    TrickContext,
    TrickParams,
    decode_heads,
    head_classes,
    head_losses,
    register_trick,
)


class ClassBalancedParams(TrickParams):
    beta: Literal["auto"] | float = "auto"
    split: Literal["train", "val"] = "train"
    heads: Literal["decode", "all"] = Field("all", description="also weight auxiliary heads' losses")

    @field_validator("beta", mode="before")
    @classmethod
    def _beta_in_range(cls, value: Any) -> Any:
        # One message for both wrong kinds: a union would report each member's complaint.
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise PydanticCustomError(
                "beta_range",
                "Input should be 'auto' or a number strictly between 0 and 1, got {value}",
                {"value": repr(value)},
            )
        return float(value)


def effective_number_weights(counts: Sequence[int], beta: str | float = "auto") -> list[float]:
    """Per-class weights; see the module docstring for beta='auto' and absent classes."""
    n = np.asarray(counts, dtype=np.float64)
    present = n > 0
    if not present.any():
        raise ValueError("no labelled pixels: cannot compute class weights")
    # q = 1 - beta, kept separately: for pixel counts beta is within 1e-6 of 1
    q = 1.0 / float(np.median(n[present])) if beta == "auto" else 1.0 - float(beta)
    if not 0.0 < q <= 1.0:
        raise ValueError(f"beta must be in [0, 1), got {1.0 - q}")
    weights = np.zeros_like(n)
    if q == 1.0:  # beta = 0: every class counts as one sample
        weights[present] = 1.0
    else:  # (1 - beta) / (1 - beta^n), with beta^n = exp(n * log(1 - q))
        weights[present] = q / -np.expm1(n[present] * np.log1p(-q))
    weights *= len(n) / weights.sum()
    return [float(w) for w in weights]


def _on_root(cfg: Any, root: Path) -> Any:
    """The config's datasets read from the trial's data root (a plan has already set it there)."""
    if str(cfg.get("data_root")) == str(root):
        return cfg
    moved = copy.deepcopy(cfg)
    set_data_root(moved, root)
    return moved


@register_trick
class ClassBalancedLoss(Trick[ClassBalancedParams]):
    name = "class_balanced_loss"
    Params = ClassBalancedParams
    summary = "CrossEntropy class_weight from the effective number of samples"

    def apply(self, cfg: Any, params: ClassBalancedParams, ctx: TrickContext) -> None:
        from ablate.data import config_meta, split_stats

        heads = decode_heads(cfg)
        fields = [f for f, _ in head_classes(cfg) if f.startswith("model.decode_head")]
        if params.heads == "all":
            aux = cfg.model.get("auxiliary_head")
            heads += list(aux) if isinstance(aux, (list, tuple)) else ([aux] if aux else [])
            fields += [f for f, _ in head_classes(cfg) if f.startswith("model.auxiliary_head")]
        meta = ctx.dataset_meta if ctx.dataset_meta is not None else config_meta(cfg, params.split)
        for field, head in zip(fields, heads, strict=True):
            count = head.get("num_classes")
            if count is not None and count != meta.num_classes:
                raise ConfigError(
                    f"class_balanced_loss: {field} is {count} but the dataset has {meta.num_classes} classes; "
                    f"one weight per class needs {field}={meta.num_classes}"
                )
        weights: list[float] | None = None  # before the data exists (`plan`): the weights are unknown
        if ctx.data_ready:
            counts = split_stats(_on_root(cfg, ctx.data_root), params.split).pixel_counts
            if not any(counts):
                raise DataError(
                    f"{ctx.data_root}: the {params.split} split has no labelled pixels; "
                    "class_balanced_loss needs labels to weight the classes"
                )
            weights = effective_number_weights(counts, params.beta)
        for head in heads:
            for loss in head_losses(head):
                if loss.get("type") in ("CrossEntropyLoss", "BalancedCrossEntropyLoss"):
                    loss["type"] = "BalancedCrossEntropyLoss"  # mmseg's CE breaks on 255 with weights
                    loss["class_weight"] = weights
        add_import(cfg, keys.LOSSES_MODULE)
