"""The report's figures, drawn on Agg canvases.

Figures are built as `matplotlib.figure.Figure` objects rather than through pyplot, so making a
report never touches a global backend or leaks open figures into a caller's session.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ablate.report.groups import ModelRow
from ablate.statistics import Ladder, LadderStep

DPI = 150
_LABEL_ALL_BELOW = 30  # more points than this: label only the Pareto front and the best ten
_PRETRAIN_STYLE = {
    "from scratch": ("o", "tab:gray"),
    "encoder pretrained": ("s", "tab:blue"),
    "encoder + decoder pretrained": ("*", "tab:red"),
}
_SAVE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}}


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, stem: Path, formats: Sequence[str], tight: bool = False) -> list[Path]:
    """One file per format; PDF/SVG without timestamps so reruns give identical files.

    `tight` is for figures drawn elsewhere (Optuna) whose layout may clip axis labels.
    """
    written = []
    for ext in formats:
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, format=ext, metadata=_SAVE_METADATA.get(ext), bbox_inches="tight" if tight else None)
        written.append(path)
    return written


def miou_vs_cost(
    rows: Sequence[ModelRow],
    front: Sequence[str],
    stem: Path,
    formats: Sequence[str],
    cost: Callable[[ModelRow], float],
    xlabel: str,
    title: str,
) -> list[Path]:
    """Accuracy against a cost (log scale), seeds as error bars, the Pareto front drawn."""
    points = [r for r in rows if not (math.isnan(cost(r)) or math.isnan(r.miou.mean)) and cost(r) > 0]
    fig = new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    for group, (marker, colour) in _PRETRAIN_STYLE.items():
        chosen = [r for r in points if r.pretraining == group]
        if not chosen:
            continue
        ax.errorbar(
            [cost(r) for r in chosen],
            [r.miou.mean for r in chosen],
            yerr=[r.miou.std or 0.0 for r in chosen],
            fmt=marker,
            color=colour,
            ecolor=colour,
            elinewidth=1,
            capsize=3,
            markersize=11 if marker == "*" else 7,
            label=group,
            linestyle="none",
        )
    by_label = {r.label: r for r in points}
    front_rows = [by_label[label] for label in front if label in by_label]
    if front_rows:
        ax.plot(
            [cost(r) for r in front_rows],
            [r.miou.mean for r in front_rows],
            drawstyle="steps-post",
            color="black",
            linestyle="--",
            linewidth=1,
            label="Pareto front",
            zorder=1,
        )
        ax.scatter(
            [cost(r) for r in front_rows],
            [r.miou.mean for r in front_rows],
            s=160,
            facecolors="none",
            edgecolors="black",
            linewidths=1,
            zorder=3,
        )
    if len(points) <= _LABEL_ALL_BELOW:
        labelled = points
    else:
        top = sorted(points, key=lambda r: -r.miou.mean)[:10]
        labelled = list({id(r): r for r in front_rows + top}.values())
    for r in labelled:
        ax.annotate(r.label, (cost(r), r.miou.mean), textcoords="offset points", xytext=(5, 5), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save(fig, stem, formats)


def miou_vs_flops(rows: Sequence[ModelRow], front: Sequence[str], stem: Path, formats: Sequence[str]) -> list[Path]:
    """Figure 1: accuracy against cost, log FLOPs, seeds as error bars, the Pareto front drawn."""
    return miou_vs_cost(rows, front, stem, formats, lambda r: r.flops_g, "GFLOPs (log scale)", "mIoU vs FLOPs")


def miou_vs_latency(
    rows: Sequence[ModelRow],
    front: Sequence[str],
    stem: Path,
    formats: Sequence[str],
    device: str,
) -> list[Path]:
    """Figure 1's twin: accuracy against measured batch-1 latency on `device`."""
    return miou_vs_cost(
        rows,
        front,
        stem,
        formats,
        lambda r: r.latency_ms,
        "latency, ms per image (log scale)",
        f"mIoU vs latency\n{device}",
    )


def _star(step: LadderStep) -> str:
    return "*" if step.comparison is not None and step.comparison.significant else ""


def waterfall(ladder: Ladder, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Trick ladder: rung 0's level, one floating bar per trick's change, the final level."""
    steps = ladder.steps
    labels = ladder.step_labels
    means = [s.miou.mean for s in steps]
    # the axis must hold every interval too, not only the levels (two seeds give wide intervals)
    reach = list(means)
    for i, step in enumerate(steps):
        if step.comparison is not None and step.delta is not None:
            start = means[i] - step.delta
            reach += [start + step.comparison.ci_low, start + step.comparison.ci_high]
    span = (max(reach) - min(reach)) or 1.0
    floor = min(reach) - 0.15 * span
    fig = new_figure(max(6.0, 1.1 * (len(steps) + 1)), 4.5)
    ax = fig.add_subplot()
    ax.bar(0, means[0] - floor, bottom=floor, color="tab:gray", width=0.6)
    ax.text(0, means[0], f"{means[0]:.2f}", ha="center", va="bottom", fontsize=8)
    for i in range(1, len(steps)):
        step = steps[i]
        if step.delta is None:  # a rung is missing below: show the level, not a fake change
            ax.bar(i, means[i] - floor, bottom=floor, color="tab:gray", width=0.6, hatch="//")
            continue
        start = means[i] - step.delta
        colour = "tab:green" if step.delta >= 0 else "tab:red"
        ax.bar(i, step.delta, bottom=start, color=colour, width=0.6)
        if step.comparison is not None:
            low, high = start + step.comparison.ci_low, start + step.comparison.ci_high
            ax.errorbar(
                i + 0.15, means[i], yerr=[[means[i] - low], [high - means[i]]], color="black", capsize=3, linewidth=1
            )
        ax.plot([i - 1 + 0.3, i - 0.3], [start, start], color="black", linewidth=0.6)
        ax.text(i - 0.05, max(means[i], start), f"{step.delta:+.2f}{_star(step)}", ha="right", va="bottom", fontsize=8)
    last = len(steps)
    ax.bar(last, means[-1] - floor, bottom=floor, color="tab:blue", width=0.6)
    ax.text(last, means[-1], f"{means[-1]:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(last + 1), labels + ["final"], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(floor, max(reach) + 0.1 * span)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(
        f"Trick ladder ({ladder.experiment}): change per rung"
        + ("\n95% CI; * p (Holm) < 0.05" if ladder.tested else ""),
        fontsize=10,
    )
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, stem, formats)


def loo_deltas(ladder: Ladder, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Leave-one-out: how far the recipe drops (or rises) when each trick is removed."""
    steps = [s for s in ladder.steps if s.rung != 0]
    labels = [label for s, label in zip(ladder.steps, ladder.step_labels) if s.rung != 0]
    fig = new_figure(6.5, max(2.5, 0.5 * len(steps) + 1.5))
    ax = fig.add_subplot()
    y = np.arange(len(steps))
    deltas = [s.delta if s.delta is not None else float("nan") for s in steps]
    colours = ["tab:red" if (d or 0) < 0 else "tab:green" for d in deltas]
    ax.barh(y, deltas, color=colours, height=0.6)
    reach = [abs(d) for d in deltas if not math.isnan(d)] + [0.1]
    for i, s in enumerate(steps):
        if s.comparison is not None:
            c = s.comparison
            ax.errorbar(
                c.delta,
                i + 0.12,
                xerr=[[c.delta - c.ci_low], [c.ci_high - c.delta]],
                color="black",
                capsize=3,
                linewidth=1,
            )
            reach += [abs(c.ci_low), abs(c.ci_high)]
        if not math.isnan(deltas[i]):  # on the far side of zero, clear of bar and interval
            ax.text(
                0, i, f" {deltas[i]:+.2f}{_star(s)} ", va="center", ha="left" if deltas[i] < 0 else "right", fontsize=8
            )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    full = next((s.miou.mean for s in ladder.steps if s.rung == 0), float("nan"))
    ax.set_xlabel("Δ mIoU vs full recipe (points)")
    ax.set_title(
        f"Recipe minus trick ({ladder.experiment}); full recipe {full:.2f}"
        + ("\n95% CI; * p (Holm) < 0.05" if ladder.tested else ""),
        fontsize=10,
    )
    ax.grid(True, axis="x", alpha=0.3)
    lim = max(reach) * 1.15
    ax.set_xlim(-lim, lim)
    return save(fig, stem, formats)


def qualitative(
    cells: Sequence[Sequence[np.ndarray | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    stem: Path,
    formats: Sequence[str],
    key: Sequence[tuple[str, tuple[int, int, int]]] = (),
) -> list[Path]:
    """Figure 2: test images, ground truth and each selected trial's prediction, one row per image;
    `key` names the dataset's colours seen in the label maps, below the grid."""
    first = next((c for row in cells for c in row if c is not None), None)
    aspect = (first.shape[1] / first.shape[0]) if first is not None else 3.0
    cell_w = 2.6
    columns = max(1, min(len(key), int(cell_w * len(col_labels) / 1.3)))
    key_h = 0.25 * math.ceil(len(key) / columns) + 0.3 if key else 0.0
    fig = new_figure(cell_w * len(col_labels), max(1.5, cell_w / aspect * len(cells) + 0.8) + key_h)
    axes = fig.subplots(len(cells), len(col_labels), squeeze=False)
    for i, row in enumerate(cells):
        for j, image in enumerate(row):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            else:
                ax.imshow(image)
            if i == 0:
                ax.set_title(col_labels[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=7)
    if key:
        fig.legend(
            handles=[Patch(facecolor=(r / 255, g / 255, b / 255), edgecolor="black", label=n) for n, (r, g, b) in key],
            loc="outside lower center",
            ncols=columns,
            fontsize=7,
            frameon=False,
        )
    return save(fig, stem, formats)
