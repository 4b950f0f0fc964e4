"""The "which model" table: the numbers a model choice weighs, side by side for every Table 1 row.

Accuracy (mIoU over seeds), robustness (the worst 10% of images, the weakest class), cost of
inference (FLOPs, measured latency and FPS) and cost of training (peak memory, training time,
throughput). One table per study; the rows on the Pareto front of mIoU against latency are
marked (latencies of one device only: the device most of the study's rows were timed on),
against FLOPs when the study measured no latency. Every value is a mean over the row's seeds of
what its runs logged; a blank cell is a number no run logged.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ablate.report.folder import Writer, slug
from ablate.report.groups import ModelRow
from ablate.report.html import Section
from ablate.report.tables import CHECK, Table, fmt, fmt_duration, fmt_mean_std, raw_number
from ablate.statistics import mean_of, pareto_front

LATENCY, FLOPS = "latency", "FLOPs"


@dataclass(frozen=True)
class Choice:
    """One Table 1 row with its robustness and cost numbers (means over its seeds)."""

    row: ModelRow
    worst10_miou: float
    min_class_iou: float
    latency_ms: float
    fps: float
    peak_mem_gb: float
    peak_mem_kind: str  # GPU | RSS | "" (not logged)
    train_time_s: float
    train_images_per_s: float
    latency_device: str  # "" when not timed, or timed on several devices
    pareto: bool = False


def _peak(row: ModelRow) -> tuple[float, str]:
    """GPU peaks when any seed trained on a GPU (CPU peaks are not comparable with them), else RSS."""
    by_kind: dict[str, list[float]] = {}
    for run in row.runs:
        value, kind = run.peak_mem_gb
        if not math.isnan(value):
            by_kind.setdefault(kind, []).append(value)
    for kind in ("GPU", "RSS"):
        if kind in by_kind:
            return mean_of(by_kind[kind]), kind
    return float("nan"), ""


def choice(row: ModelRow) -> Choice:
    peak, kind = _peak(row)
    devices = {r.latency_device for r in row.runs if r.latency_device}
    return Choice(
        row=row,
        worst10_miou=mean_of([r.worst10_miou for r in row.runs]),
        min_class_iou=mean_of([r.min_class_iou for r in row.runs]),
        latency_ms=mean_of([r.latency_ms for r in row.runs]),
        fps=mean_of([r.fps for r in row.runs]),
        peak_mem_gb=peak,
        peak_mem_kind=kind,
        train_time_s=mean_of([r.train_time_s for r in row.runs]),
        train_images_per_s=mean_of([r.train_images_per_s for r in row.runs]),
        latency_device=devices.pop() if len(devices) == 1 else "",
    )


def latency_device(items: Sequence[Choice]) -> str:
    """The device most rows were timed on ("" when none was timed on a single device)."""
    counts = Counter(c.latency_device for c in items if c.latency_device and not math.isnan(c.latency_ms))
    return counts.most_common(1)[0][0] if counts else ""


def cost_axis(items: Sequence[Choice]) -> str:
    """Latency when rows of the study were timed on a device, else FLOPs."""
    return LATENCY if latency_device(items) else FLOPS


def _cost(item: Choice, axis: str, device: str) -> float:
    if axis == FLOPS:
        return item.row.flops_g
    return item.latency_ms if item.latency_device == device else float("nan")


def choices(rows: Sequence[ModelRow]) -> dict[str, list[Choice]]:
    """Study -> its rows in Table 1 order, with the Pareto front of the study marked."""
    by_study: dict[str, list[Choice]] = {}
    for row in rows:
        by_study.setdefault(row.experiment, []).append(choice(row))
    out = {}
    for study, items in by_study.items():
        axis, device = cost_axis(items), latency_device(items)
        front = set(pareto_front([(str(i), _cost(c, axis, device), c.row.miou.mean) for i, c in enumerate(items)]))
        out[study] = [replace(c, pareto=str(i) in front) for i, c in enumerate(items)]
    return out


def _memory(item: Choice) -> str:
    text = fmt(item.peak_mem_gb, 2)
    return f"{text} {item.peak_mem_kind}" if text else ""


HEADER = [
    "Model",
    "mIoU (%)",
    "n",
    "Worst 10% (%)",
    "Min class IoU (%)",
    "FLOPs (G)",
    "Latency (ms)",
    "FPS",
    "Peak mem. (GiB)",
    "Train time",
    "Train img/s",
    "Pareto",
]


PAPER_CAPTION = "Which model: accuracy, robustness and cost."


def choice_table(study: str, items: Sequence[Choice], multi: bool = False) -> Table:
    axis, device = cost_axis(items), latency_device(items)
    body = [
        [
            c.row.label,
            fmt_mean_std(c.row.miou.mean, c.row.miou.std) + ("†" if c.row.tta else ""),
            str(c.row.miou.n),
            fmt(c.worst10_miou),
            fmt(c.min_class_iou),
            fmt(c.row.flops_g, 1),
            fmt(c.latency_ms, 1),
            fmt(c.fps, 1),
            _memory(c),
            fmt_duration(c.train_time_s),
            fmt(c.train_images_per_s, 1),
            CHECK if c.pareto else "",
        ]
        for c in items
    ]
    devices = sorted({r.latency_device for c in items for r in c.row.runs if r.latency_device})
    against = f"latency on {device}" if axis == LATENCY else "FLOPs (no latency measured)"
    caption = (
        "mIoU mean ± std over n seeds; Worst 10%: mean per-image mIoU of the worst tenth of the "
        "validation images (per-image mIoU over the classes in the image's ground truth); Min class IoU: the weakest "
        "class; FLOPs of one inference pass; latency and FPS as measured"
        + (f" on {', '.join(devices)}" if devices else "")
        + "; peak memory while training (GPU: torch max allocated per GPU, RSS: peak resident memory of a CPU run); "
        "train time of the training loop without validation and its images per second. "
        "Means over seeds; blank: not logged. "
        f"Pareto: on the front of mIoU against {against} within this study."
    )
    notes = ["† multi-scale (+flip) test-time augmentation."] if any(c.row.tta for c in items) else []
    unplaced = [c.row.label for c in items if math.isnan(_cost(c, axis, device)) or math.isnan(c.row.miou.mean)]
    if unplaced:
        what = f"a latency on {device}" if axis == LATENCY else "FLOPs"
        notes.append(f"Without {what}, not placed on the front: {', '.join(unplaced)}.")
    title = "Which model" + (f" ({study})" if multi else "")
    return Table(title, caption, list(HEADER), body, "lrrrrrrrrrrc", f"choice-{study}", notes)


def choice_csv(items: Sequence[Choice]) -> str:
    """Unrounded values; `pareto_axis` names what the front was computed against."""
    axis = cost_axis(items)
    axis = f"latency on {latency_device(items)}" if axis == LATENCY else axis
    header = [
        "experiment",
        "model",
        "trial",
        "miou_mean",
        "miou_std",
        "n",
        "worst10_miou",
        "min_class_iou",
        "flops_g",
        "latency_ms",
        "fps",
        "latency_device",
        "peak_mem_gb",
        "peak_mem_kind",
        "train_time_s",
        "train_images_per_s",
        "pareto",
        "pareto_axis",
    ]
    rows = [
        [
            c.row.experiment,
            c.row.label,
            c.row.trial_name,
            raw_number(c.row.miou.mean),
            raw_number(c.row.miou.std),
            c.row.miou.n,
            raw_number(c.worst10_miou),
            raw_number(c.min_class_iou),
            raw_number(c.row.flops_g),
            raw_number(c.latency_ms),
            raw_number(c.fps),
            c.latency_device,
            raw_number(c.peak_mem_gb),
            c.peak_mem_kind,
            raw_number(c.train_time_s),
            raw_number(c.train_images_per_s),
            c.pareto,
            axis,
        ]
        for c in items
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def section(rows: Sequence[ModelRow], writer: Writer, multi: bool) -> Section:
    """One table per study, each exported as Markdown, LaTeX and CSV."""
    s = Section("Which model", "choice")
    if not rows:
        s.notes.append("no finished non-search trials: nothing to choose from")
        return s
    for study, items in choices(rows).items():
        table = choice_table(study, items, multi)
        s.tables.append(table)
        name, where = (f"choice-{slug(study)}", f" ({study})") if multi else ("choice", "")
        s.links += [
            (f"Markdown{where}", writer.text(f"{name}.md", table.markdown())),
            (f"LaTeX{where}", writer.text(f"{name}.tex", replace(table, short=PAPER_CAPTION).latex(wide=True))),
            (f"CSV{where}", writer.text(f"{name}.csv", choice_csv(items))),
        ]
    return s
