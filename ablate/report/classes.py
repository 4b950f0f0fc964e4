"""The per-class views: which classes a report has columns for, the per-class IoU of every model
(CSVs, heatmap, bars of the best) and Figure 4, the dataset's class distribution.

A dataset of many classes (ADE20K's 150) keeps every class in the CSVs; its figures show named,
sorted subsets (the worst classes, the classes the models disagree on most), so they stay legible.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ablate.report import class_figures, tables
from ablate.report.class_figures import MAX_CLASS_COLUMNS
from ablate.report.collect import Collection
from ablate.report.folder import Writer
from ablate.report.groups import ModelRow
from ablate.report.html import FigureRef, Section
from ablate.report.label_space import LabelSpace, label_space
from ablate.tracking import RunStore

if TYPE_CHECKING:
    from ablate.data.meta import DatasetMeta
    from ablate.data.stats import ClassStats

MAX_HEATMAP_ROWS = 40
TOP_BARS = 4


def class_names(collection: Collection, store: RunStore | None = None) -> tuple[str, ...]:
    """The classes of the runs' datasets (see `label_space`); Cityscapes for runs that logged none."""
    return label_space(collection, store).classes


def _column_stats(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: mean and spread (max - min) of the finite values; NaN where there are too few."""
    data = np.asarray(matrix, dtype=float)
    data = data.reshape(1, -1) if data.ndim == 1 else data
    means, spreads = [], []
    for column in data.T:
        finite = column[np.isfinite(column)]
        means.append(float(finite.mean()) if finite.size else math.nan)
        spreads.append(float(finite.max() - finite.min()) if finite.size > 1 else math.nan)
    return np.asarray(means), np.asarray(spreads)


def worst_classes(matrix: np.ndarray, count: int = MAX_CLASS_COLUMNS) -> list[int]:
    """Columns of the `count` classes with the lowest mean over rows, worst first (unseen classes left out)."""
    means, _ = _column_stats(matrix)
    return sorted((i for i in range(means.size) if math.isfinite(means[i])), key=lambda i: (means[i], i))[:count]


def spread_classes(matrix: np.ndarray, count: int = MAX_CLASS_COLUMNS) -> list[int]:
    """Columns of the `count` classes the rows disagree on most (max - min), largest first."""
    _, spreads = _column_stats(matrix)
    found = [i for i in range(spreads.size) if math.isfinite(spreads[i]) and spreads[i] > 0]
    return sorted(found, key=lambda i: (-spreads[i], i))[:count]


def largest_changes(deltas: np.ndarray, significant: np.ndarray, count: int = MAX_CLASS_COLUMNS) -> list[int]:
    """Columns of the classes a rung changed most (largest |change| on any row), those with a
    significant change first: the columns a per-rung heatmap of many classes keeps."""
    data = np.abs(np.asarray(deltas, dtype=float))
    marked = np.asarray(significant, dtype=bool)
    reach = [float(np.nanmax(col)) if np.isfinite(col).any() else math.nan for col in data.T]
    found = [i for i in range(len(reach)) if math.isfinite(reach[i])]
    return sorted(found, key=lambda i: (not marked[:, i].any(), -reach[i], i))[:count]


def _ranked_csv(rows: Sequence[ModelRow], classes: Sequence[str], matrix: np.ndarray) -> str:
    """One line per class, worst mean IoU first: the full table beside the figures' subsets."""
    means, spreads = _column_stats(matrix)
    order = sorted(range(len(classes)), key=lambda i: (not math.isfinite(means[i]), means[i], i))
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\n")
    table.writerow(["rank", "class", "mean", "min", "max", "spread", *(r.label for r in rows)])
    for rank, i in enumerate(order, start=1):
        column = matrix[:, i]
        finite = column[np.isfinite(column)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
        table.writerow(
            [rank, classes[i], *(tables.raw_number(v) for v in (means[i], low, high, spreads[i]))]
            + [tables.raw_number(v) for v in column]
        )
    return buf.getvalue()


def _heatmap(
    s: Section,
    writer: Writer,
    stem: str,
    caption: str,
    title: str,
    labels: list[str],
    classes: Sequence[str],
    matrix: np.ndarray,
    columns: Sequence[int],
) -> None:
    s.figures.append(
        FigureRef(
            caption,
            writer.record(
                class_figures.class_heatmap(
                    labels,
                    [classes[i] for i in columns],
                    matrix[:, list(columns)],
                    writer.figure_stem(stem),
                    writer.formats,
                    title,
                )
            ),
        )
    )


def per_class_section(
    rows: Sequence[ModelRow], classes: tuple[str, ...], writer: Writer, notes: Sequence[str] = ()
) -> Section:
    """The CSVs keep every row and class; the figures the best rows and, past `MAX_CLASS_COLUMNS`
    classes, the worst classes and those the models differ on most."""
    s = Section("Per-class IoU", "per_class")
    with_classes = [r for r in rows if np.isfinite(r.class_iou(classes)).any()]
    if not with_classes:
        s.notes.append("no run logged IoU.<class> metrics: per-class figures skipped")
        return s
    s.notes.extend(notes)
    full = np.asarray([r.class_iou(classes) for r in with_classes], dtype=float)
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\n")
    table.writerow(["model", *classes])
    for row, values in zip(with_classes, full):
        table.writerow([row.label, *(tables.raw_number(v) for v in values)])
    s.links.append(("per-class IoU (CSV)", writer.text("per_class_iou.csv", buf.getvalue())))
    s.links.append(
        (
            "classes ranked by mean IoU (CSV)",
            writer.text("per_class_ranked.csv", _ranked_csv(with_classes, classes, full)),
        )
    )
    order = sorted(range(len(with_classes)), key=lambda k: -with_classes[k].miou.mean)
    shown = sorted(order[:MAX_HEATMAP_ROWS])
    if len(with_classes) > MAX_HEATMAP_ROWS:
        s.notes.append(f"heatmap shows the {MAX_HEATMAP_ROWS} best of {len(with_classes)} rows; the CSV has all")
    labels = [with_classes[k].label for k in shown]
    matrix = full[shown]
    many = len(classes) > MAX_CLASS_COLUMNS
    if not many:
        _heatmap(
            s,
            writer,
            "per_class_heatmap",
            "Per-class IoU (%) of every model (mean over seeds; grey: class absent)",
            "Per-class IoU (%)",
            labels,
            classes,
            matrix,
            range(len(classes)),
        )
    else:
        worst = worst_classes(matrix)
        _heatmap(
            s,
            writer,
            "per_class_heatmap",
            f"Per-class IoU (%) of the {len(worst)} classes with the lowest mean IoU of {len(classes)}, worst first "
            "(mean over seeds; grey: class absent); every class in per_class_ranked.csv",
            f"Per-class IoU (%): the {len(worst)} worst of {len(classes)} classes",
            labels,
            classes,
            matrix,
            worst,
        )
        spread = spread_classes(matrix)
        if spread:
            _heatmap(
                s,
                writer,
                "per_class_heatmap_spread",
                f"Per-class IoU (%) of the {len(spread)} classes the models differ on most (best minus worst model), "
                "largest difference first; every class in per_class_ranked.csv",
                f"Per-class IoU (%): the {len(spread)} of {len(classes)} classes that differ most",
                labels,
                classes,
                matrix,
                spread,
            )
    top = order[:TOP_BARS]
    bars = np.asarray([full[k] for k in top])
    columns = worst_classes(bars) if many else list(range(len(classes)))
    what = f"their {len(columns)} worst of {len(classes)} classes, worst first" if many else "every class"
    s.figures.append(
        FigureRef(
            f"Per-class IoU of the top {len(top)} models by mIoU ({what})",
            writer.record(
                class_figures.class_bars(
                    [with_classes[k].label for k in top],
                    [classes[i] for i in columns],
                    bars[:, columns],
                    writer.figure_stem("per_class_bars"),
                    writer.formats,
                    f"the {len(columns)} worst of {len(classes)} classes, worst first" if many else "",
                )
            ),
        )
    )
    return s


def _distribution_csv(stats: ClassStats) -> str:
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\n")
    table.writerow(["class", "pixels", "share"])
    for name, pixels, share in zip(stats.classes, stats.pixel_counts, stats.frequencies):
        table.writerow([name, pixels, tables.raw_number(share)])
    return buf.getvalue()


def distribution_section(stats: ClassStats | None, meta: DatasetMeta, writer: Writer, about: str) -> Section:
    """Figure 4 of any class count, coloured in the dataset's palette. `about` names what `stats`
    counted, or, without stats, says why there are none (a note: the report must not fail on it)."""
    s = Section("Figure 4: class distribution", "distribution")
    if stats is None:
        s.notes.append(about)
        return s
    space = LabelSpace(meta)
    s.paragraphs.append(
        f"{about}: {stats.images} images, {len(stats.classes)} classes, {stats.total:,} labelled pixels, "
        f"{stats.ignored_pixels:,} ignored."
    )
    many = len(stats.classes) > MAX_CLASS_COLUMNS
    s.figures.append(
        FigureRef(
            "Share of labelled train pixels per class (log scale)"
            + ("; every class ranked, the most frequent and rarest named" if many else ""),
            writer.record(
                class_figures.class_distribution(
                    stats.classes,
                    stats.frequencies,
                    [space.colour(name) for name in stats.classes],
                    stats.images,
                    writer.figure_stem("class_distribution"),
                    writer.formats,
                )
            ),
        )
    )
    s.links.append(("pixels per class (CSV)", writer.text("class_distribution.csv", _distribution_csv(stats))))
    return s
