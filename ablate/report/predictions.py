"""Figure 2: prediction images logged as artifacts of a few selected trials, and their section.

Only these few runs are asked for artifacts (listing and downloading), so the cost does not grow
with the number of runs in the study.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.report import figures
from ablate.report.collect import TrialRun
from ablate.report.folder import Writer
from ablate.report.groups import ModelRow
from ablate.report.html import FigureRef, Section
from ablate.report.label_space import LabelSpace, colour_key
from ablate.tracking import RunStore, TrackingUnavailable

FOLDER = "predictions"
KINDS = ("img", "gt", "pred")
MAX_TRIALS = 4
MAX_CHECKED = 8
MAX_IMAGES = 4


@dataclass
class Grid:
    """Rows of images (None where a file is missing) with their row and column labels."""

    cells: list[list[np.ndarray | None]]
    row_labels: list[str]
    col_labels: list[str]
    trials: list[str]


def list_predictions(store: RunStore, run_id: str, folder: str = FOLDER) -> dict[str, dict[str, str]]:
    """stem -> kind (img/gt/pred) -> artifact path, from `<folder>/<stem>_<kind>.png`."""
    found: dict[str, dict[str, str]] = {}
    try:
        entries = store.list_artifacts(run_id, folder)
    except TrackingUnavailable:
        raise
    except Exception:  # no artifact store reachable for this run: treat as "no predictions"
        return found
    for entry in entries:
        name = Path(entry.path).name
        if entry.is_dir or not name.endswith(".png"):
            continue
        stem, _, kind = name[: -len(".png")].rpartition("_")
        if stem and kind in KINDS:
            found.setdefault(stem, {})[kind] = entry.path
    return found


def load_image(store: RunStore, run_id: str, artifact: str | None, dest: Path) -> np.ndarray | None:
    if artifact is None:
        return None
    from PIL import Image

    try:
        dest.mkdir(parents=True, exist_ok=True)
        local = store.download_artifact(run_id, artifact, dest)
        with Image.open(local) as image:
            return np.asarray(image.convert("RGB"))
    except TrackingUnavailable:
        raise
    except Exception:  # a missing or unreadable file is shown as "not available"
        return None


def select(rows: Sequence[ModelRow], store: RunStore) -> list[tuple[ModelRow, TrialRun, dict[str, dict[str, str]]]]:
    """The best-seed run of the top Table 1 rows by mIoU that logged `pred` images."""
    chosen = []
    ranked = sorted((r for r in rows if not math.isnan(r.miou.mean)), key=lambda r: -r.miou.mean)
    for row in ranked[:MAX_CHECKED]:
        run = row.best_run
        found = {stem: kinds for stem, kinds in list_predictions(store, run.run_id).items() if "pred" in kinds}
        if found:
            chosen.append((row, run, found))
        if len(chosen) == MAX_TRIALS:
            break
    return chosen


def grid(rows: Sequence[ModelRow], store: RunStore, workdir: Path) -> Grid | None:
    """None when no selected trial has predictions; else images shared by the trials (up to four)."""
    chosen = select(rows, store)
    if not chosen:
        return None
    common = set(chosen[0][2])
    for _, _, found in chosen[1:]:
        common &= set(found)
    stems = sorted(common or chosen[0][2])[:MAX_IMAGES]
    cells: list[list[np.ndarray | None]] = []
    for index, stem in enumerate(stems):
        row_dir = workdir / str(index)
        image = truth = None
        for _, run, found in chosen:  # the input and ground truth from whichever run logged them
            kinds = found.get(stem, {})
            if image is None and "img" in kinds:
                image = load_image(store, run.run_id, kinds["img"], row_dir)
            if truth is None and "gt" in kinds:
                truth = load_image(store, run.run_id, kinds["gt"], row_dir)
        preds = [
            load_image(store, run.run_id, found.get(stem, {}).get("pred"), row_dir / str(k))
            for k, (_, run, found) in enumerate(chosen)
        ]
        cells.append([image, truth, *preds])
    labels = ["image", "ground truth"] + [f"{row.label} ({row_run.miou:.1f})" for row, row_run, _ in chosen]
    return Grid(cells, stems, labels, [row.label for row, _, _ in chosen])


def section(rows: Sequence[ModelRow], store: RunStore, writer: Writer, space: LabelSpace | None = None) -> Section:
    """The downloaded images are only drawn, so they go to a scratch folder that is removed after;
    `space` names the dataset's colours seen in the label maps."""
    s = Section("Figure 2: qualitative results", "qualitative")
    workdir = Path(tempfile.mkdtemp(prefix="ablate-predictions-"))
    try:
        found = grid(rows, store, workdir)
        if found is None:
            s.notes.append(f"none of the top trials logged {FOLDER}/<image>_pred.png artifacts: figure skipped")
            return s
        s.figures.append(
            FigureRef(
                "Test images, ground truth and predictions of the best trials (mIoU in brackets)",
                writer.record(
                    figures.qualitative(
                        found.cells,
                        found.row_labels,
                        found.col_labels,
                        writer.figure_stem("qualitative"),
                        writer.formats,
                        colour_key(found.cells, space) if space is not None else (),
                    )
                ),
            )
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return s
