"""Per-class pixel counts, which drive class weights and the imbalance figures in reports."""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ablate.data.classes import CLASSES, IGNORE_INDEX
from ablate.data.layout import ANN_DIR, SPLITS, check_layout, dataset_fingerprint
from ablate.errors import DataError
from ablate.util.files import atomic_write, cache_dir

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


def _read_cache(cache: Path, fingerprint: str, split: str, classes: tuple[str, ...] = CLASSES) -> ClassStats | None:
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
    return stats if stats.classes == classes else None


def _write_cache(cache: Path, payload: Mapping[str, Any]) -> None:
    """Best effort: a read-only dataset still gets stats, just without the cache."""
    with contextlib.suppress(OSError):
        atomic_write(cache, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def split_stats(cfg: Any, split: str = "train") -> ClassStats:
    """Pixel counts per class of a config's split, labels read as the dataset's own
    `LoadAnnotations` reads them (`reduce_zero_label`, the label map of a `metainfo` class
    subset), over the files mmseg lists; classes, ignore index from the dataset's metainfo.

    Cached per machine (`$ABLATE_CACHE_DIR/stats`), keyed by the label files' content and every
    setting that changes how they are read.
    """
    from ablate.data.configured import config_meta, list_split

    meta = config_meta(cfg, split)
    listed = list_split(cfg, split)
    jobs: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (loader step, sample) of every labelled image
    for ds in listed:
        step = _label_step(ds.node)
        jobs.extend((step, s) for s in ds.samples if s.get("seg_map_path"))
    labels = sorted({(str(s["seg_map_path"]), Path(s["seg_map_path"])) for _, s in jobs})
    key = _stats_key(meta, split, labels, [(step, s.get("label_map"), s.get("reduce_zero_label")) for step, s in jobs])
    cache = cache_dir() / "stats" / f"{key}.json"
    cached = _read_cache(cache, key, split, meta.classes)
    if cached is not None:
        return cached
    counts = _count_labels(jobs, meta)
    stats = ClassStats(
        classes=meta.classes,
        pixel_counts=tuple(int(c) for c in counts[: meta.num_classes]),
        ignored_pixels=int(counts[meta.ignore_index]) if 0 <= meta.ignore_index < counts.size else 0,
        images=len(jobs),
    )
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
    _write_cache(cache, {"version": _CACHE_VERSION, "fingerprint": key, "split": split, "stats": stats.to_dict()})
    return stats


def _label_step(node: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset pipeline's `LoadAnnotations` step (its settings), or mmseg's default one."""
    for step in node.get("pipeline") or []:
        if isinstance(step, Mapping) and step.get("type") == "LoadAnnotations":
            return dict(step)
    return {"type": "LoadAnnotations"}


def _stats_key(meta: Any, split: str, labels: list[tuple[str, Path]], reading: list[Any]) -> str:
    from ablate.data.layout import files_fingerprint

    content = files_fingerprint(f"labels:{split}:{len(labels)}:{labels[0][0] if labels else ''}", labels)
    payload = json.dumps(
        {"labels": content, "meta": meta.to_dict(), "reading": sorted({repr(r) for r in reading})}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _count_labels(jobs: list[tuple[dict[str, Any], dict[str, Any]]], meta: Any) -> np.ndarray:
    from mmseg.registry import TRANSFORMS

    counts = np.zeros(256, dtype=np.int64)
    loaders: dict[str, Any] = {}
    n = meta.num_classes
    for step, sample in jobs:
        name = repr(sorted(step.items()))
        if name not in loaders:
            with warnings.catch_warnings():  # mmseg's note that the step's own reduce_zero_label is deprecated
                warnings.simplefilter("ignore")
                loaders[name] = TRANSFORMS.build(dict(step))
        results = dict(sample, seg_fields=[])
        path = str(sample["seg_map_path"])
        try:
            loaders[name](results)
        except Exception as exc:  # noqa: BLE001  (decoders raise many types for a broken file)
            raise DataError(f"{path}: cannot read the label map: {' '.join(str(exc).split())}") from exc
        label = np.asarray(results["gt_seg_map"])
        if label.ndim != 2:
            raise DataError(f"{path}: label map has shape {label.shape}; expected one channel of class indices")
        hist = np.bincount(label.astype(np.int64).ravel(), minlength=256)[:256]
        bad = [v for v in np.flatnonzero(hist[n:]) + n if v != meta.ignore_index]
        if bad:
            how = ", reduce_zero_label" if sample.get("reduce_zero_label") else ""
            raise DataError(
                f"{path}: label values {bad[:5]} are not classes 0..{n - 1} or the ignore index "
                f"{meta.ignore_index} (as the dataset reads them{how}); fix the labels or the config's metainfo"
            )
        counts += hist
    return counts
