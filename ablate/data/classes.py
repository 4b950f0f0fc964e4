"""The 19 Cityscapes train classes, derived from cityscapesscripts so ids and colours never drift."""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _LABELS

IGNORE_INDEX: int = 255
"""Label value that mmseg's losses and metrics skip."""

_TRAIN_LABELS = sorted((lab for lab in _LABELS if 0 <= lab.trainId < IGNORE_INDEX), key=lambda lab: lab.trainId)

if tuple(lab.trainId for lab in _TRAIN_LABELS) != tuple(range(19)):  # pragma: no cover - broken install
    raise ImportError("cityscapesscripts: label table does not define train ids 0..18; reinstall cityscapesscripts")

CLASSES: tuple[str, ...] = tuple(lab.name for lab in _TRAIN_LABELS)
"""Class names in train-id order; the index of a name is its value in label PNGs."""

PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (int(lab.color[0]), int(lab.color[1]), int(lab.color[2])) for lab in _TRAIN_LABELS
)
"""Cityscapes RGB colours in train-id order, for mmseg's `metainfo` and visualisations."""


def label_id_to_train_id() -> np.ndarray:
    """LUT for raw Cityscapes/KITTI label ids; a fresh copy so callers may modify it.

    Ids that are not trained on (unlabeled, parking, guard rail, ...) and ids outside the
    table map to IGNORE_INDEX.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for lab in _TRAIN_LABELS:
        if 0 <= lab.id < 256:
            lut[lab.id] = lab.trainId
    return lut
