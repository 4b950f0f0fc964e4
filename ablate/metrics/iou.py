"""IoU metric that returns per-class IoU/Acc next to the means, and scores every image.

mmseg's `IoUMetric` prints a per-class table but returns only aAcc/mIoU/mAcc, so per-class
numbers would never reach MLflow or the report. This subclass returns them as `IoU.<class>` and
`Acc.<class>` (percent, like the means; NaN where a class is absent from both prediction and
ground truth).

The intersections and unions mmseg keeps per image are also turned into a per-image table (see
`ablate.statistics.per_image` for what an image's mIoU means), from the same pass: the summary
numbers `image_mIoU` (mean over images), `worst10_mIoU` (mean of the worst 10% of images) and
`min_class_IoU` are returned with the others, and the table is left in the runner's MessageHub
under `PER_IMAGE_INFO` for the hook that writes the final evaluation's artifacts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mmengine.logging import MessageHub, print_log
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from ablate.statistics.per_image import ImageScore, PerImageTable, metric_key, worst_fraction_mean

PER_IMAGE_INFO = "ablate.per_image"

__all__ = ["PER_IMAGE_INFO", "ImageAreas", "PerClassIoUMetric", "image_scores", "metric_key"]


@dataclass(frozen=True)
class ImageAreas:
    """Per-image scores (percent) of a stack of images, from their per-class pixel areas."""

    miou: np.ndarray  # (N,), NaN: no labelled pixel
    aacc: np.ndarray  # (N,)
    pixels: np.ndarray  # (N,) labelled pixels
    class_iou: np.ndarray  # (N, C), NaN: class absent from the image's ground truth
    extra: np.ndarray  # (N, C) bool: predicted, absent from the ground truth


def _stack(values: Sequence[Any] | Any) -> np.ndarray:
    if isinstance(values, (list, tuple)):
        return np.stack([_numpy(v) for v in values]).astype(float)
    return np.atleast_2d(_numpy(values)).astype(float)


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def image_scores(intersect: Any, union: Any, pred_area: Any, label_area: Any) -> ImageAreas:
    """Scores of each image over the classes of its ground truth; the metric and the prediction
    hook both call this, so the images a trial saves as its worst are the table's worst."""
    inter, uni, pred, label = (_stack(v) for v in (intersect, union, pred_area, label_area))
    present = label > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        class_iou = np.where(present, inter / np.where(uni > 0, uni, 1.0) * 100, np.nan)
        pixels = label.sum(axis=1)
        aacc = np.where(pixels > 0, inter.sum(axis=1) / np.where(pixels > 0, pixels, 1.0) * 100, np.nan)
    counts = present.sum(axis=1)
    miou = np.where(counts > 0, np.nansum(np.nan_to_num(class_iou), axis=1) / np.maximum(counts, 1), np.nan)
    return ImageAreas(miou, aacc, pixels.astype(int), class_iou, (pred > 0) & ~present)


def image_name(sample: Any) -> str:
    """The file stem the prediction PNGs are named after."""
    path = sample.get("img_path") if isinstance(sample, dict) else getattr(sample, "img_path", None)
    return Path(str(path)).stem if path else ""


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """`IoUMetric` whose result dict also holds every class's IoU and accuracy and per-image summaries."""

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        before = len(self.results)
        super().process(data_batch, data_samples)
        if len(self.results) - before == len(data_samples):  # one entry per image: tag it with its name
            for offset, sample in enumerate(data_samples):
                self.results[before + offset] = (*self.results[before + offset][:4], image_name(sample))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if self.format_only:
            return super().compute_metrics(results)
        areas = [tuple(r[:4]) for r in results]
        intersect, union, pred_area, label_area = (sum(part) for part in zip(*areas))
        per_metric = self.total_area_to_metrics(
            intersect, union, pred_area, label_area, self.metrics, self.nan_to_num, self.beta
        )
        metrics: dict[str, float] = OrderedDict()
        for name, values in per_metric.items():
            mean = float(np.nanmean(values)) * 100 if np.size(values) else float("nan")
            metrics[name if name == "aAcc" else f"m{name}"] = round(mean, 4)
        classes = tuple(self.dataset_meta["classes"])
        for name, values in per_metric.items():
            if name == "aAcc":
                continue
            for cls, value in zip(classes, np.asarray(values, dtype=float)):
                metrics[metric_key(name, cls)] = round(float(value) * 100, 4)
        table = self._table(results, classes)
        metrics.update(self._summary(table, [metrics[metric_key("IoU", c)] for c in classes]))
        shown = ", ".join(f"{c}={metrics[metric_key('IoU', c)]:.1f}" for c in classes)
        print_log(f"per-class IoU: {shown}", logger="current")
        print_log(
            f"per-image: mean mIoU {metrics['image_mIoU']:.2f}, worst 10% {metrics['worst10_mIoU']:.2f} "
            f"over {len(table.rows)} images",
            logger="current",
        )
        MessageHub.get_current_instance().update_info(PER_IMAGE_INFO, table, resumed=False)
        return metrics

    @staticmethod
    def _table(results: list, classes: tuple[str, ...]) -> PerImageTable:
        if not results:
            return PerImageTable(classes, ())
        scores = image_scores(*(list(part) for part in zip(*(r[:4] for r in results))))
        names = [r[4] if len(r) > 4 and r[4] else f"image_{i}" for i, r in enumerate(results)]
        rows = tuple(
            ImageScore(
                image=names[i],
                miou=float(scores.miou[i]),
                aacc=float(scores.aacc[i]),
                pixels=int(scores.pixels[i]),
                class_iou=tuple(float(v) for v in scores.class_iou[i]),
                extra=tuple(c for c, flag in zip(classes, scores.extra[i]) if flag),
            )
            for i in range(len(results))
        )
        return PerImageTable(classes, rows)

    @staticmethod
    def _summary(table: PerImageTable, class_iou: list[float]) -> dict[str, float]:
        ranked = [r.miou for r in table.rows if r.ranked]
        finite = [v for v in class_iou if not math.isnan(v)]
        return {
            "image_mIoU": round(float(np.mean(ranked)), 4) if ranked else float("nan"),
            "worst10_mIoU": round(worst_fraction_mean(table.rows), 4),
            "min_class_IoU": min(finite) if finite else float("nan"),
        }
