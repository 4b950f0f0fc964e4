"""The per-class views: which classes a report has columns for, the per-class IoU of every model
(CSV, heatmap, bars of the best) and Figure 4, the dataset's class distribution."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ablate.errors import AblateError
from ablate.report import figures, tables
from ablate.report.collect import Collection
from ablate.report.folder import Writer
from ablate.report.groups import ModelRow
from ablate.report.html import FigureRef, Section

MAX_HEATMAP_ROWS = 40
TOP_BARS = 4


def class_names(collection: Collection) -> tuple[str, ...]:
    """The 19 Cityscapes classes, then any other `IoU.<name>` a run logged (other datasets)."""
    from ablate.data import CLASSES

    known = {c.replace(" ", "_") for c in CLASSES}
    extra = sorted(
        {
            k.split(".", 1)[1]
            for r in collection.table_runs
            for k in r.metrics
            if k.startswith("IoU.") and k.split(".", 1)[1] not in known
        }
    )
    return tuple(CLASSES) + tuple(extra)


def per_class_section(rows: Sequence[ModelRow], classes: tuple[str, ...], writer: Writer) -> Section:
    """The CSV keeps every row; the heatmap only the best, so it stays readable in a large study."""
    s = Section("Per-class IoU", "per_class")
    with_classes = [r for r in rows if np.isfinite(r.class_iou(classes)).any()]
    if not with_classes:
        s.notes.append("no run logged IoU.<class> metrics: per-class figures skipped")
        return s
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\n")
    table.writerow(["model", *classes])
    for row in with_classes:
        table.writerow([row.label, *(tables.raw_number(v) for v in row.class_iou(classes))])
    s.links.append(("per-class IoU (CSV)", writer.text("per_class_iou.csv", buf.getvalue())))
    shown = with_classes
    if len(shown) > MAX_HEATMAP_ROWS:
        keep = {id(r) for r in sorted(shown, key=lambda r: -r.miou.mean)[:MAX_HEATMAP_ROWS]}
        shown = [r for r in shown if id(r) in keep]
        s.notes.append(f"heatmap shows the {MAX_HEATMAP_ROWS} best of {len(with_classes)} rows; the CSV has all")
    s.figures.append(
        FigureRef(
            "Per-class IoU (%) of every model (mean over seeds; grey: class absent)",
            writer.record(
                figures.class_heatmap(
                    [r.label for r in shown],
                    classes,
                    np.asarray([r.class_iou(classes) for r in shown]),
                    writer.figure_stem("per_class_heatmap"),
                    writer.formats,
                    "Per-class IoU (%)",
                )
            ),
        )
    )
    top = sorted(with_classes, key=lambda r: -r.miou.mean)[:TOP_BARS]
    s.figures.append(
        FigureRef(
            f"Per-class IoU of the top {len(top)} models by mIoU",
            writer.record(
                figures.class_bars(
                    [r.label for r in top],
                    classes,
                    np.asarray([r.class_iou(classes) for r in top]),
                    writer.figure_stem("per_class_bars"),
                    writer.formats,
                )
            ),
        )
    )
    return s


def distribution_section(data_root: Path | None, writer: Writer) -> Section:
    """A dataset that cannot be read is a note: the report of the runs must not fail on it."""
    s = Section("Figure 4: class distribution", "distribution")
    if data_root is None:
        s.notes.append("no dataset known: pass --data DIR or a study file to draw the class distribution")
        return s
    from ablate.data import PALETTE, class_stats

    try:
        stats = class_stats(data_root)
    except AblateError as exc:
        s.notes.append(f"class distribution skipped: {exc}")
        return s
    s.paragraphs.append(
        f"Train split of {data_root}: {stats.images} images, {stats.total:,} labelled pixels, "
        f"{stats.ignored_pixels:,} ignored."
    )
    s.figures.append(
        FigureRef(
            "Share of labelled train pixels per class (log scale)",
            writer.record(
                figures.class_distribution(
                    stats.classes,
                    stats.frequencies,
                    PALETTE,
                    stats.images,
                    writer.figure_stem("class_distribution"),
                    writer.formats,
                )
            ),
        )
    )
    return s
