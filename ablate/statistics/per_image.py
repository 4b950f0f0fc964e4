"""The per-image table of a trial's final evaluation: one row per evaluated image.

The trial writes it as the run artifact `per_image.csv` and the report's failure gallery reads it
back; both sides use the names defined here, so the two cannot drift. Values are percent and
written unrounded, so the worst images a trial saved (ranked on exact numbers) are the worst
images the report finds in the table.

Per-image mIoU is the mean IoU over the classes present in the image's ground truth. A class the
model predicts but the image does not contain lowers that mean through the pixels it takes from
the classes that are there, not as an extra zero: counted as a zero, a handful of stray pixels
would weigh as much as a missed road. Such classes are listed in `extra_classes` instead.
An image without a labelled pixel has no mIoU (NaN) and is never ranked among the worst.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PER_IMAGE_FILE = "per_image.csv"
WORST_DIR = "worst_predictions"  # <image>_{img,gt,pred}.png of the worst images, next to `predictions/`
WORST_FRACTION = 0.1  # `worst10_mIoU`: the mean of the worst 10% of images
IMAGE, MIOU, AACC, PIXELS, EXTRA = "image", "mIoU", "aAcc", "pixels", "extra_classes"


def metric_key(prefix: str, class_name: str) -> str:
    """`IoU.traffic_light`: class names with spaces become tracker-friendly keys."""
    return f"{prefix}.{class_name.replace(' ', '_')}"


@dataclass(frozen=True)
class ImageScore:
    """One image of the final evaluation; `class_iou` is NaN for classes absent from its ground truth."""

    image: str
    miou: float
    aacc: float
    pixels: int
    class_iou: tuple[float, ...]
    extra: tuple[str, ...] = ()

    @property
    def ranked(self) -> bool:
        return not math.isnan(self.miou)


@dataclass(frozen=True)
class PerImageTable:
    """Rows in evaluation order, with the class names their `class_iou` follow."""

    classes: tuple[str, ...]
    rows: tuple[ImageScore, ...]


def rank_key(row: ImageScore) -> tuple[float, str]:
    """Worst first, ties by name: the trial and the report order equal scores the same way."""
    return (row.miou, row.image)


def worst(rows: Iterable[ImageScore], count: int) -> list[ImageScore]:
    """The `count` images with the lowest mIoU (images without labelled pixels left out)."""
    return sorted((r for r in rows if r.ranked), key=rank_key)[: max(0, count)]


def worst_fraction_mean(rows: Sequence[ImageScore], fraction: float = WORST_FRACTION) -> float:
    """Mean mIoU of the worst `fraction` of the ranked images, at least one image; NaN without any."""
    ranked = [r for r in rows if r.ranked]
    if not ranked:
        return float("nan")
    shown = worst(ranked, max(1, math.ceil(fraction * len(ranked))))
    return sum(r.miou for r in shown) / len(shown)


def _number(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _parse(text: str) -> float:
    try:
        return float(text) if text.strip() else float("nan")
    except ValueError:
        return float("nan")


def write_table(path: Path, table: PerImageTable) -> Path:
    """`image, mIoU, aAcc, pixels, extra_classes, IoU.<class>...`; blank cells are NaN."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([IMAGE, MIOU, AACC, PIXELS, EXTRA, *(metric_key("IoU", c) for c in table.classes)])
        for row in table.rows:
            writer.writerow(
                [
                    row.image,
                    _number(row.miou),
                    _number(row.aacc),
                    row.pixels,
                    " ".join(row.extra),
                    *(_number(v) for v in row.class_iou),
                ]
            )
    return path


def read_table(path: Path) -> PerImageTable:
    """The table `write_table` wrote; class names come back in their key form (underscores)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if header[:5] != [IMAGE, MIOU, AACC, PIXELS, EXTRA]:
            raise ValueError(f"{path}: not a per-image table (header {header[:5]})")
        classes = tuple(h.split(".", 1)[1] for h in header[5:])
        rows = tuple(
            ImageScore(
                image=cells[0],
                miou=_parse(cells[1]),
                aacc=_parse(cells[2]),
                pixels=int(cells[3]) if cells[3].strip().isdigit() else 0,
                class_iou=tuple(_parse(c) for c in cells[5:]),
                extra=tuple(cells[4].split()),
            )
            for cells in reader
            if cells
        )
    return PerImageTable(classes, rows)
