"""Per-class pixel counts, which drive class weights and the imbalance figures in reports."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ablate.data.classes import CLASSES, IGNORE_INDEX
from ablate.data.layout import ANN_DIR, SPLITS, check_layout, dataset_fingerprint
from ablate.errors import DataError
from ablate.util.files import atomic_write

_CACHE_VERSION = 1


@dataclass(frozen=True)
class ClassStats:
    """Pixel counts of one split; immutable so it can be cached and shared freely."""

    classes: tuple[str, ...]
    pixel_counts: tuple[int, ...]
    ignored_pixels: int
    images: int

    def __post_init__(self) -> None:
        if len(self.pixel_counts) != len(self.classes):
            raise DataError(
                f"class stats: {len(self.pixel_counts)} pixel counts for {len(self.classes)} classes; "
                "delete the stats_*.json cache and recompute"
            )

    @property
    def total(self) -> int:
        """Labelled pixels only: ignored pixels carry no class and are excluded."""
        return int(sum(self.pixel_counts))

    @property
    def frequencies(self) -> tuple[float, ...]:
        """Share of each class among labelled pixels (all zeros for a split with no labels)."""
        total = self.total
        if total == 0:
            return tuple(0.0 for _ in self.pixel_counts)
        return tuple(c / total for c in self.pixel_counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "pixel_counts": list(self.pixel_counts),
            "ignored_pixels": self.ignored_pixels,
            "images": self.images,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassStats:
        try:
            return cls(
                classes=tuple(str(c) for c in data["classes"]),
                pixel_counts=tuple(int(c) for c in data["pixel_counts"]),
                ignored_pixels=int(data["ignored_pixels"]),
                images=int(data["images"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"class stats: malformed record ({exc!r}); delete the stats_*.json cache and recompute"
            ) from exc


def _scan_labels(ann_split: Path) -> tuple[np.ndarray, int]:
    """Histogram of label values (length 256) over every PNG of one split, and the image count."""
    counts = np.zeros(256, dtype=np.int64)
    files = sorted(ann_split.glob("*.png"))
    n_classes = len(CLASSES)
    for path in files:
        with Image.open(path) as im:
            if im.mode != "L":
                raise DataError(
                    f"{path}: label mode is {im.mode!r}, expected 8-bit single-channel 'L'; regenerate the dataset"
                )
            arr = np.asarray(im)
        hist = np.bincount(arr.ravel(), minlength=256)
        bad = np.flatnonzero(hist[n_classes:IGNORE_INDEX]) + n_classes
        if bad.size:
            raise DataError(
                f"{path}: label values {bad[:5].tolist()} are not train ids 0..{n_classes - 1} "
                f"or {IGNORE_INDEX}; convert label ids with `ablate data kitti` or regenerate the dataset"
            )
        counts += hist
    return counts, len(files)


def class_stats(root: Path, split: str = "train") -> ClassStats:
    """Count pixels per class, cached in `root/stats_<split>.json` and keyed by the dataset fingerprint."""
    root = Path(root)
    if split not in SPLITS:
        raise DataError(f"split: {split!r} is not one of {', '.join(SPLITS)}; pass train or val")
    check_layout(root)
    fingerprint = dataset_fingerprint(root)
    cache = root / f"stats_{split}.json"
    cached = _read_cache(cache, fingerprint, split)
    if cached is not None:
        return cached
    counts, images = _scan_labels(root / ANN_DIR / split)
    stats = ClassStats(
        classes=CLASSES,
        pixel_counts=tuple(int(c) for c in counts[: len(CLASSES)]),
        ignored_pixels=int(counts[IGNORE_INDEX]),
        images=images,
    )
    _write_cache(
        cache,
        {"version": _CACHE_VERSION, "fingerprint": fingerprint, "split": split, "stats": stats.to_dict()},
    )
    return stats


def _read_cache(cache: Path, fingerprint: str, split: str) -> ClassStats | None:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if (
            data.get("version") != _CACHE_VERSION
            or data.get("fingerprint") != fingerprint
            or data.get("split") != split
        ):
            return None
        stats = ClassStats.from_dict(data["stats"])
    except (OSError, ValueError, KeyError, AttributeError, TypeError, DataError):
        return None
    return stats if stats.classes == CLASSES else None


def _write_cache(cache: Path, payload: Mapping[str, Any]) -> None:
    """Best effort: a read-only dataset still gets stats, just without the cache."""
    with contextlib.suppress(OSError):
        atomic_write(cache, json.dumps(payload, indent=2, sort_keys=True) + "\n")
