"""What a dataset says about its labels: class names, colours, ignore index and whether label 0 is
"other" (mmseg's `reduce_zero_label`).

Trials log it beside their metrics so a report can name and colour classes of any dataset without
importing mmseg or reading the study's config again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ablate.data.classes import CLASSES, IGNORE_INDEX, PALETTE
from ablate.errors import DataError

META_ARTIFACT = "dataset_meta.json"
"""Artifact file name of a trial run's `DatasetMeta`."""


@dataclass(frozen=True)
class DatasetMeta:
    """Label space of one dataset; index i of `classes` is train id i of the model's output."""

    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX
    reduce_zero_label: bool = False

    def __post_init__(self) -> None:
        if len(self.palette) != len(self.classes):
            raise DataError(
                f"dataset metainfo: {len(self.palette)} palette colours for {len(self.classes)} classes; "
                "give one colour per class in `metainfo.palette` or leave the palette out"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
            "reduce_zero_label": self.reduce_zero_label,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetMeta:
        classes = tuple(str(c) for c in data["classes"])
        palette = data.get("palette") or default_palette(len(classes))
        return cls(
            classes=classes,
            palette=tuple((int(c[0]), int(c[1]), int(c[2])) for c in palette),
            ignore_index=int(data.get("ignore_index", IGNORE_INDEX)),
            reduce_zero_label=bool(data.get("reduce_zero_label", False)),
        )


def default_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """Distinct, reproducible colours for datasets that declare none (the same for every run)."""
    import numpy as np

    rng = np.random.default_rng(20231203)
    colours = rng.integers(0, 256, size=(n, 3))
    return tuple((int(r), int(g), int(b)) for r, g, b in colours)


CITYSCAPES_META = DatasetMeta(classes=CLASSES, palette=PALETTE)
"""The label space of the KITTI/Cityscapes layout the converters and `ablate data synth` write."""
