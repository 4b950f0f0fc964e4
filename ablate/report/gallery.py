"""The failure gallery: the images the best models fail on, and the images they disagree on.

Inputs are artifacts of a few runs only (the best seed of the top Table 1 rows by mIoU): each
run's per-image table (`per_image.csv`) and the PNGs its final evaluation saved of its worst
images (`worst_predictions/`) and of its first images (`predictions/`). Which images are the
worst, and how far models disagree, is read from the tables; the PNGs only illustrate them. An
image whose PNGs a run did not keep is still listed in the tables and CSVs; the disagreement
figure draws the most disputed of the images every compared run kept a prediction of.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.report import figures
from ablate.report.collect import TrialRun
from ablate.report.folder import Writer, slug
from ablate.report.groups import ModelRow
from ablate.report.html import FigureRef, Section
from ablate.report.label_space import LabelSpace, colour_key
from ablate.report.predictions import list_predictions, load_image
from ablate.report.tables import Table, fmt, raw_number
from ablate.statistics.per_image import PER_IMAGE_FILE, WORST_DIR, ImageScore, PerImageTable, read_table, worst
from ablate.tracking import RunStore, TrackingUnavailable

MAX_MODELS = 4
MAX_CHECKED = 8
WORST_SHOWN = 4
DISAGREEMENTS = 5  # listed in the table
DRAWN = 3  # drawn, among the images every compared run kept a prediction of


@dataclass
class ModelImages:
    """One compared model: its best run, that run's per-image table and the PNGs it kept."""

    row: ModelRow
    run: TrialRun
    table: PerImageTable
    files: dict[str, dict[str, str]]  # image -> img/gt/pred -> artifact path

    @property
    def scores(self) -> dict[str, ImageScore]:
        return {r.image: r for r in self.table.rows}


@dataclass
class Disagreement:
    """An image scored by several compared models: their per-image mIoU (NaN: not scored)."""

    image: str
    scores: list[float]

    @property
    def spread(self) -> float:
        finite = [s for s in self.scores if not math.isnan(s)]
        return max(finite) - min(finite) if len(finite) > 1 else float("nan")


def _table(store: RunStore, run_id: str, dest: Path) -> PerImageTable | None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
        local = store.download_artifact(run_id, PER_IMAGE_FILE, dest)
        return read_table(Path(local))
    except TrackingUnavailable:
        raise
    except Exception:  # no table (a run older than it) or an unreadable one: the run is skipped
        return None


def _files(store: RunStore, run_id: str) -> dict[str, dict[str, str]]:
    """The worst-image PNGs first; the first-image PNGs fill in images the worst folder lacks."""
    found = list_predictions(store, run_id, WORST_DIR)
    for image, kinds in list_predictions(store, run_id).items():
        found.setdefault(image, kinds)
    return found


def select(rows: Sequence[ModelRow], store: RunStore, workdir: Path) -> list[ModelImages]:
    """The best-seed run of the top rows by mIoU that logged a per-image table (up to MAX_MODELS)."""
    chosen: list[ModelImages] = []
    ranked = sorted((r for r in rows if not math.isnan(r.miou.mean)), key=lambda r: -r.miou.mean)
    for index, row in enumerate(ranked[:MAX_CHECKED]):
        run = row.best_run
        table = _table(store, run.run_id, workdir / f"table{index}")
        if table is None or not any(r.ranked for r in table.rows):
            continue
        chosen.append(ModelImages(row, run, table, _files(store, run.run_id)))
        if len(chosen) == MAX_MODELS:
            break
    return chosen


def failures(model: ModelImages, count: int = WORST_SHOWN) -> list[ImageScore]:
    return worst(model.table.rows, count)


def disagreements(models: Sequence[ModelImages]) -> list[Disagreement]:
    """Every image scored by at least two of the models, largest spread of per-image mIoU first."""
    if len(models) < 2:
        return []
    scores = [m.scores for m in models]
    images = sorted({name for table in scores for name in table})
    found = [
        Disagreement(name, [table[name].miou if name in table else float("nan") for table in scores]) for name in images
    ]
    found = [d for d in found if not math.isnan(d.spread)]
    return sorted(found, key=lambda d: (-d.spread, d.image))


def drawable(models: Sequence[ModelImages], ranked: Sequence[Disagreement], count: int = DRAWN) -> list[Disagreement]:
    """The first of `ranked` that every compared run kept a prediction of (its first and worst
    images): a disagreement is only seen with every model's prediction side by side."""
    return [d for d in ranked if all("pred" in m.files.get(d.image, {}) for m in models)][:count]


def _image(store: RunStore, models: Sequence[ModelImages], image: str, kind: str, dest: Path) -> np.ndarray | None:
    """The input or ground truth of an image from whichever compared run kept it."""
    for model in models:
        artifact = model.files.get(image, {}).get(kind)
        if artifact is not None:
            found = load_image(store, model.run.run_id, artifact, dest)
            if found is not None:
                return found
    return None


def failure_cells(
    store: RunStore, model: ModelImages, shown: Sequence[ImageScore], workdir: Path
) -> list[list[np.ndarray | None]]:
    """Per worst image: the image, its ground truth and the model's prediction."""
    cells = []
    for index, score in enumerate(shown):
        kinds = model.files.get(score.image, {})
        dest = workdir / str(index)
        cells.append([load_image(store, model.run.run_id, kinds.get(kind), dest) for kind in ("img", "gt", "pred")])
    return cells


def disagreement_cells(
    store: RunStore,
    models: Sequence[ModelImages],
    shown: Sequence[Disagreement],
    workdir: Path,
) -> list[list[np.ndarray | None]]:
    """Per image: the image, its ground truth, then every model's prediction where its run kept one."""
    cells = []
    for index, item in enumerate(shown):
        dest = workdir / str(index)
        row = [_image(store, models, item.image, kind, dest / kind) for kind in ("img", "gt")]
        row += [
            load_image(store, m.run.run_id, m.files.get(item.image, {}).get("pred"), dest / str(k))
            for k, m in enumerate(models)
        ]
        cells.append(row)
    return cells


def failures_csv(models: Sequence[ModelImages], count: int = WORST_SHOWN) -> str:
    """Every shown failure with its numbers; `saved` says whether the run kept its three PNGs."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["experiment", "model", "run_id", "rank", "image", "mIoU", "aAcc", "pixels", "extra_classes", "saved"]
    )
    for model in models:
        for rank, score in enumerate(failures(model, count), start=1):
            kinds = model.files.get(score.image, {})
            writer.writerow(
                [
                    model.row.experiment,
                    model.row.label,
                    model.run.run_id,
                    rank,
                    score.image,
                    raw_number(score.miou),
                    raw_number(score.aacc),
                    score.pixels,
                    " ".join(score.extra),
                    all(k in kinds for k in ("img", "gt", "pred")),
                ]
            )
    return buf.getvalue()


def disagreement_table(models: Sequence[ModelImages], shown: Sequence[Disagreement]) -> Table:
    header = ["Image", *(m.row.label for m in models), "Spread"]
    rows = [[d.image, *(fmt(s, 1) for s in d.scores), fmt(d.spread, 1)] for d in shown]
    caption = (
        "Images on which the compared models disagree most: per-image mIoU (%) of each model's best-seed run, "
        "spread = best minus worst model on that image (blank: the model's table lacks the image); "
        "every shared image in disagreement.csv."
    )
    return Table("Disagreement", caption, header, rows, "l" + "r" * (len(models) + 1), "disagreement")


def disagreement_csv(
    models: Sequence[ModelImages], ranked: Sequence[Disagreement], drawn: Sequence[Disagreement]
) -> str:
    """Every image scored by two or more models, largest spread first; `drawn`: in the figure."""
    shown = {d.image for d in drawn}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "spread", "drawn", *(f"{m.row.label} ({m.run.run_id})" for m in models)])
    for d in ranked:
        writer.writerow([d.image, raw_number(d.spread), d.image in shown, *(raw_number(s) for s in d.scores)])
    return buf.getvalue()


def section(rows: Sequence[ModelRow], store: RunStore, writer: Writer, space: LabelSpace | None = None) -> Section:
    """Per compared model its worst images, then the images the models disagree on most; `space`
    names the dataset's colours seen in the label maps."""
    s = Section("Failure analysis", "failures")
    workdir = Path(tempfile.mkdtemp(prefix="ablate-failures-"))
    try:
        models = select(rows, store, workdir / "tables")
        if not models:
            s.notes.append(f"none of the top trials logged a {PER_IMAGE_FILE} artifact: failure gallery skipped")
            return s
        s.paragraphs.append(
            f"Per model (the best seed of the top {len(models)} by mIoU), up to {WORST_SHOWN} validation images with "
            "the lowest per-image mIoU: the mean IoU (%) over the classes in the image's ground truth."
        )
        for index, model in enumerate(models):
            shown = failures(model)
            cells = failure_cells(store, model, shown, workdir / f"worst{index}")
            paths = figures.qualitative(
                cells,
                [f"{f.image}\nmIoU {f.miou:.1f}" for f in shown],
                ["image", "ground truth", f"prediction: {model.row.label}"],
                writer.figure_stem(f"failures_{index}_{slug(model.row.label)}"),
                writer.formats,
                colour_key(cells, space) if space is not None else (),
            )
            s.figures.append(
                FigureRef(f"{model.row.label}: worst images (run {model.run.run_id})", writer.record(paths))
            )
        s.links.append(("worst images (CSV)", writer.text("failures.csv", failures_csv(models))))
        _disagreement(s, models, store, writer, workdir / "disagreement", space)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return s


def _disagreement(
    s: Section,
    models: list[ModelImages],
    store: RunStore,
    writer: Writer,
    workdir: Path,
    space: LabelSpace | None = None,
) -> None:
    ranked = disagreements(models)
    if not ranked:
        if len(models) > 1:
            s.notes.append("the compared models share no scored image: no disagreement to show")
        return
    drawn = drawable(models, ranked)
    s.tables.append(disagreement_table(models, ranked[:DISAGREEMENTS]))
    s.links.append(
        (
            "disagreement, every shared image (CSV)",
            writer.text("disagreement.csv", disagreement_csv(models, ranked, drawn)),
        )
    )
    if not drawn:
        s.notes.append("no image has a kept prediction of every compared model: disagreement figure skipped")
        return
    cells = disagreement_cells(store, models, drawn, workdir)
    paths = figures.qualitative(
        cells,
        [f"{d.image}\nspread {d.spread:.1f}" for d in drawn],
        ["image", "ground truth", *(m.row.label for m in models)],
        writer.figure_stem("disagreement"),
        writer.formats,
        colour_key(cells, space) if space is not None else (),
    )
    s.figures.append(
        FigureRef(
            "Of the images every compared run kept a prediction of (its first and worst images), those the models "
            "disagree on most (spread: best minus worst per-image mIoU)",
            writer.record(paths),
        )
    )
