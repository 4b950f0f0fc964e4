"""Runs -> the rows of Table 1 and the steps of ladders, with their statistics.

Sort order of Table 1 (kept simple and stable, so tables of different studies line up):
  1. zoo rows, by family as the paper lists them (baseline/FCN, UNet, DeepLabV3+, Swin, SegFormer,
     PSPNet, then anything else), then by FLOPs, then by name;
  2. ladder rungs, by rung;
  3. leave-one-out rows (full recipe first, then each "minus trick"), by rung;
  4. every other trial, by FLOPs, then by name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from ablate.report.collect import Collection, TrialRun
from ablate.report.stats import Comparison, Summary, compare, default_method, summarize

FAMILIES = ("baseline", "UNet", "DeepLabV3+", "Swin", "SegFormer", "PSPNet")
# Checked in this order (most specific first: UNet uses an FCN head, Swin here a SegFormer head).
_FAMILY_PATTERNS = (
    ("Swin", r"swin"),
    ("UNet", r"unet"),
    ("DeepLabV3+", r"deeplab|aspp"),
    ("PSPNet", r"psp"),
    ("SegFormer", r"segformer|mit-?b\d|mixvision"),
    ("baseline", r"baseline|fcn"),
)
_SHAPE_ORDER = {"zoo": 0, "ladder": 1, "leave_one_out": 2}


def family(*texts: str) -> str:
    """The model family named anywhere in a run's model name, config stem or module types."""
    text = " ".join(texts).lower()
    for name, pattern in _FAMILY_PATTERNS:
        if re.search(pattern, text):
            return name
    return "other"


def class_key(name: str) -> str:
    """Metric key of a class, the way the tracker writes it (spaces -> underscores)."""
    return name.replace(" ", "_")


@dataclass(frozen=True)
class ModelRow:
    """One Table 1 row: a model variant (zoo) or a named trial, over its seeds."""

    label: str
    experiment: str
    shape: str
    model: str
    family: str
    enc_pretrained: bool
    dec_pretrained: bool
    rung: Optional[int]
    runs: tuple[TrialRun, ...]
    miou: Summary
    flops_g: float
    params_m: float
    duration_s: float
    reference: Optional[float]
    tta: bool

    @property
    def trial_name(self) -> str:
        return self.runs[0].name

    @property
    def seeds(self) -> list[Optional[int]]:
        return [r.seed for r in self.runs]

    @property
    def best_run(self) -> TrialRun:
        return max(self.runs, key=lambda r: (r.miou, -r.start_time))

    @property
    def pretraining(self) -> str:
        """Legend group of Figure 1: what the variant starts from."""
        if self.dec_pretrained:
            return "encoder + decoder pretrained"
        if self.enc_pretrained:
            return "encoder pretrained"
        return "from scratch"

    def class_iou(self, classes: Sequence[str]) -> list[float]:
        """Mean IoU per class over seeds; NaN where no seed saw the class."""
        out = []
        for name in classes:
            values = [r.metric(f"IoU.{class_key(name)}") for r in self.runs]
            finite = [v for v in values if not math.isnan(v)]
            out.append(float(np.mean(finite)) if finite else float("nan"))
        return out


def _mean(values: Sequence[Optional[float]]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _group_key(run: TrialRun) -> tuple[str, ...]:
    if run.shape == "zoo":
        return (run.experiment, "zoo", run.model, str(run.enc_pretrained), str(run.dec_pretrained))
    return (run.experiment, run.shape, run.name)


def _sort_key(row: ModelRow) -> tuple:
    flops = row.flops_g if not math.isnan(row.flops_g) else math.inf
    if row.shape == "zoo":
        rank = FAMILIES.index(row.family) if row.family in FAMILIES else len(FAMILIES)
        return (0, rank, flops, row.label)
    if row.shape in _SHAPE_ORDER and row.rung is not None:
        return (_SHAPE_ORDER[row.shape], row.rung, 0.0, row.label)
    return (3, 0, flops, row.label)


def _marks(row: ModelRow) -> str:
    return f"enc {'yes' if row.enc_pretrained else 'no'}, dec {'yes' if row.dec_pretrained else 'no'}"


def _unique_labels(rows: list[ModelRow]) -> list[ModelRow]:
    """Labels key figures and per-class tables, so a name shared by two variants gets told apart."""
    from dataclasses import replace

    multi_experiment = len({r.experiment for r in rows}) > 1
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    out = []
    for row in rows:
        label = row.label
        if counts[label] > 1:  # (experiment, shape, name) / (experiment, model, marks) are unique
            label = f"{row.experiment}/{label}" if multi_experiment else label
            label = f"{label} ({_marks(row) if row.shape == 'zoo' else row.shape})"
        out.append(replace(row, label=label))
    return out


def model_rows(collection: Collection, reference: Optional[Mapping[str, float]] = None) -> list[ModelRow]:
    """Table 1: finished runs grouped by model variant (zoo) or trial name, in the documented order."""
    reference = reference or {}
    groups: dict[tuple[str, ...], list[TrialRun]] = {}
    for run in collection.table_runs:
        groups.setdefault(_group_key(run), []).append(run)
    rows = []
    for runs in groups.values():
        runs.sort(key=lambda r: (r.seed if r.seed is not None else -1, r.start_time))
        first = runs[0]
        label = first.model if first.shape == "zoo" else first.name
        ref = reference.get(first.name)
        rows.append(
            ModelRow(
                label=label,
                experiment=first.experiment,
                shape=first.shape,
                model=first.model,
                family=family(first.model, first.name, first.params.get("backbone", ""), first.params.get("decode_head", "")),
                enc_pretrained=first.enc_pretrained,
                dec_pretrained=first.dec_pretrained,
                rung=first.rung,
                runs=tuple(runs),
                miou=summarize([r.miou for r in runs]),
                flops_g=_mean([r.metric("flops_g") for r in runs]),
                params_m=_mean([r.metric("params_m") for r in runs]),
                duration_s=_mean([r.duration_s for r in runs]),
                reference=float(ref) if ref is not None else None,
                tta=all(r.tta for r in runs),
            )
        )
    rows.sort(key=_sort_key)
    return _unique_labels(rows)


@dataclass(frozen=True)
class LadderStep:
    """One rung: its mIoU over seeds, the change from the previous rung (or, leave-one-out, from
    the full recipe), and the test of that change when there are repeats."""

    rung: int
    trick: str
    name: str
    values: tuple[float, ...]
    miou: Summary
    delta: Optional[float]
    cumulative: Optional[float]
    comparison: Optional[Comparison]
    reference: Optional[float]
    class_iou: tuple[float, ...]
    class_delta: tuple[float, ...]


@dataclass(frozen=True)
class Ladder:
    """A trick ladder (`kind="ladder"`) or a leave-one-out study (`kind="leave_one_out"`)."""

    experiment: str
    kind: str
    steps: tuple[LadderStep, ...]
    method: str
    classes: tuple[str, ...]

    @property
    def is_loo(self) -> bool:
        return self.kind == "leave_one_out"

    @property
    def tested(self) -> bool:
        return any(s.comparison is not None for s in self.steps)

    @property
    def step_labels(self) -> list[str]:
        """Axis labels: `+trick` for ladder rungs, `-trick` for recipe-minus-trick rows."""
        labels = []
        for s in self.steps:
            if s.rung == 0:
                labels.append("full recipe" if self.is_loo else s.trick or "base")
            else:
                labels.append(f"{'-' if self.is_loo else '+'}{s.trick}")
        return labels


def _ladder(experiment: str, kind: str, runs: list[TrialRun], classes: Sequence[str], reference: Mapping[str, float], method: str) -> Ladder:
    by_rung: dict[int, list[TrialRun]] = {}
    for run in runs:
        by_rung.setdefault(run.rung if run.rung is not None else 0, []).append(run)
    steps: list[LadderStep] = []
    # (values, class IoU) of rung 0 and of the rung just below; a missing rung leaves a gap
    # (no delta) rather than a delta that silently spans two tricks.
    anchor: Optional[tuple[list[float], list[float]]] = None
    previous: Optional[tuple[list[float], list[float]]] = None
    for rung in sorted(by_rung):
        group = sorted(by_rung[rung], key=lambda r: (r.seed if r.seed is not None else -1, r.start_time))
        values = [r.miou for r in group]
        summary = summarize(values)
        cls = [
            _mean([r.metric(f"IoU.{class_key(c)}") for r in group]) for c in classes
        ]
        if previous is not None and rung - 1 not in by_rung:
            previous = None
        base = anchor if kind == "leave_one_out" else previous
        delta = summary.mean - summarize(base[0]).mean if base is not None else None
        cumulative = summary.mean - summarize(anchor[0]).mean if anchor is not None and kind == "ladder" else None
        comparison = compare(base[0], values, method) if base is not None else None
        class_delta = tuple(c - b for c, b in zip(cls, base[1])) if base is not None else tuple(float("nan") for _ in classes)
        steps.append(
            LadderStep(
                rung=rung, trick=group[0].trick, name=group[0].name, values=tuple(values), miou=summary,
                delta=delta, cumulative=cumulative, comparison=comparison,
                reference=reference.get(group[0].name), class_iou=tuple(cls), class_delta=class_delta,
            )
        )
        if rung == 0:
            anchor = (values, cls)
        previous = (values, cls)
    return Ladder(experiment, kind, tuple(steps), method, tuple(classes))


def ladders(collection: Collection, classes: Sequence[str], reference: Optional[Mapping[str, float]] = None, method: Optional[str] = None) -> list[Ladder]:
    """One ladder per experiment and shape (ladder, leave_one_out) that has finished runs."""
    method = method or default_method()
    grouped: dict[tuple[str, str], list[TrialRun]] = {}
    for run in collection.table_runs:
        if run.shape in ("ladder", "leave_one_out"):
            grouped.setdefault((run.experiment, run.shape), []).append(run)
    return [
        _ladder(experiment, kind, runs, classes, reference or {}, method)
        for (experiment, kind), runs in sorted(grouped.items(), key=lambda kv: (kv[0][0], _SHAPE_ORDER[kv[0][1]]))
    ]
