"""The classes a report names and the colours it keys them by, read from the runs' own datasets.

Trials log their dataset's label space (`dataset_meta.json`); it is read once per study and
dataset (name and content digest), not once per run, so a report of hundreds of runs costs a
handful of artifact reads. Runs older than that artifact are named from their metrics: the
Cityscapes classes when every `IoU.<name>` they logged is one of them, else the names they logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ablate.report.collect import Collection, TrialRun
from ablate.statistics.per_image import metric_key
from ablate.tracking import RunStore, TrackingUnavailable

if TYPE_CHECKING:
    from ablate.data.meta import DatasetMeta

READS_PER_DATASET = 3  # newest runs of one dataset asked for its label space before falling back
KEY_ENTRIES = 16  # classes named in the colour key of a qualitative figure
_IOU = "IoU."


@dataclass(frozen=True)
class LabelSpace:
    """The report's classes in order, one colour each, and what a reader should know about them."""

    meta: DatasetMeta
    notes: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.meta.classes

    def colour(self, name: str) -> tuple[int, int, int]:
        key = metric_key("", name)
        for cls, colour in zip(self.meta.classes, self.meta.palette):
            if metric_key("", cls) == key:
                return colour
        return (128, 128, 128)


def _logged(runs: Iterable[TrialRun]) -> list[str]:
    """`IoU.<name>` keys the runs logged, names as logged (spaces already underscores), sorted."""
    return sorted({k[len(_IOU) :] for r in runs for k in r.metrics if k.startswith(_IOU)})


def _read(store: RunStore, run_id: str) -> DatasetMeta | None:
    try:
        return store.dataset_meta(run_id)
    except TrackingUnavailable:
        raise
    except Exception:  # an unreadable artifact: the run is named like a run without one
        return None


def _fallback(runs: Sequence[TrialRun]) -> DatasetMeta:
    from ablate.data.meta import CITYSCAPES_META, DatasetMeta, default_palette

    logged = _logged(runs)
    known = {metric_key("", c) for c in CITYSCAPES_META.classes}
    if all(metric_key("", name) in known for name in logged):
        return CITYSCAPES_META
    return DatasetMeta(classes=tuple(logged), palette=default_palette(len(logged)))


def dataset_groups(runs: Iterable[TrialRun]) -> dict[tuple[str, str, str], list[TrialRun]]:
    """Runs by study and dataset (name, content digest), newest first: the runs of one group
    trained on one dataset, so they share its labels."""
    groups: dict[tuple[str, str, str], list[TrialRun]] = {}
    for run in runs:
        groups.setdefault((run.experiment, run.dataset, run.data_fingerprint), []).append(run)
    return {k: sorted(v, key=lambda r: -r.start_time) for k, v in groups.items()}


def label_space(collection: Collection, store: RunStore | None) -> LabelSpace:
    """The union of the datasets' classes in their own order (logged label spaces first); colours
    from the dataset that declared the class. Without runs, or a store, the Cityscapes classes."""
    from ablate.data.meta import CITYSCAPES_META, DatasetMeta

    runs = collection.table_runs or [r for r in collection.trials if r.finished]
    logged: list[DatasetMeta] = []
    guessed: list[DatasetMeta] = []
    for group in dataset_groups(runs).values():
        found = None
        if store is not None:
            found = next(
                (m for m in (_read(store, r.run_id) for r in group[:READS_PER_DATASET]) if m is not None), None
            )
        if found is not None:
            logged.append(found)
        else:
            guessed.append(_fallback(group))
    metas: list[DatasetMeta] = []
    for meta in logged + guessed:  # a declared label space orders the columns before a guessed one
        if meta not in metas:
            metas.append(meta)
    if not metas:
        return LabelSpace(CITYSCAPES_META)
    classes: dict[str, tuple[str, tuple[int, int, int]]] = {}
    for meta in metas:
        for name, colour in zip(meta.classes, meta.palette):
            classes.setdefault(metric_key("", name), (name, colour))
    for name in _logged(runs):  # a metric no label space names still gets a column
        classes.setdefault(metric_key("", name), (name, (128, 128, 128)))
    first = metas[0]
    merged = DatasetMeta(
        classes=tuple(n for n, _ in classes.values()),
        palette=tuple(c for _, c in classes.values()),
        ignore_index=first.ignore_index,
        reduce_zero_label=first.reduce_zero_label,
    )
    notes = []
    if len(metas) > 1:
        notes.append(
            f"the runs use {len(metas)} label spaces; per-class tables list the union of their classes "
            "(blank where a run has no such class)"
        )
    if logged and guessed:
        notes.append(
            f"{len(guessed)} dataset(s) without a logged label space (older runs): "
            "classes named from their IoU.<class> metrics"
        )
    return LabelSpace(merged, tuple(notes))


def colour_key(
    cells: Sequence[Sequence[np.ndarray | None]], space: LabelSpace, limit: int = KEY_ENTRIES
) -> list[tuple[str, tuple[int, int, int]]]:
    """Classes whose palette colour covers pixels of the label maps drawn (every column but the
    input image), most pixels first: the key of a qualitative figure of any class count."""
    lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(space.meta.palette)}
    counts = np.zeros(len(space.meta.palette), dtype=np.int64)
    for row in cells:
        for image in row[1:]:
            if image is None or image.ndim != 3 or image.shape[2] < 3:
                continue
            rgb = image[..., :3].astype(np.int64)
            codes, pixels = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2], return_counts=True)
            for code, n in zip(codes.tolist(), pixels.tolist()):
                index = lookup.get(code)
                if index is not None:
                    counts[index] += n
    order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:limit]
    return [(space.meta.classes[i], space.meta.palette[i]) for i in order]
