"""The per-class figures: IoU heatmaps and bars, and the class distribution (Figure 4).

No figure gives more than `MAX_CLASS_COLUMNS` classes a labelled column each, so a dataset of 150
classes still gives legible files; callers choose the named subset shown and write every class to
a CSV beside the figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Rectangle

from ablate.report.figures import new_figure, save

MAX_CLASS_COLUMNS = 30


def _with_bad(name: str) -> Any:
    """The colormap with NaN cells (class never seen) in grey, not in the colour of zero."""
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="lightgray")


def class_heatmap(
    row_labels: Sequence[str],
    classes: Sequence[str],
    matrix: np.ndarray,
    stem: Path,
    formats: Sequence[str],
    title: str,
    diverging: bool = False,
    significant: np.ndarray | None = None,
) -> list[Path]:
    """Rows x classes; absolute IoU on a 0-100 scale, or signed changes centred on zero.

    `significant` (same shape) frames those cells in black and stars their value; the frames
    carry the SVG id `significant-<row>-<col>` so the marks can be found in the file.
    """
    data = np.asarray(matrix, dtype=float)
    marked = np.zeros(data.shape, dtype=bool) if significant is None else np.asarray(significant, dtype=bool)
    fig = new_figure(max(8.0, 0.5 * len(classes) + 2.5), max(2.5, 0.35 * len(row_labels) + 2.0))
    ax = fig.add_subplot()
    if diverging:
        lim = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
        lim = lim or 1.0
        image = ax.imshow(
            np.ma.masked_invalid(data),
            cmap=_with_bad("RdBu"),
            vmin=-lim,
            vmax=lim,
            aspect="auto",
            interpolation="nearest",
        )
        bar_label = "Δ IoU (points)"
    else:
        image = ax.imshow(
            np.ma.masked_invalid(data),
            cmap=_with_bad("viridis"),
            vmin=0,
            vmax=100,
            aspect="auto",
            interpolation="nearest",
        )
        bar_label = "IoU (%)"
    if data.size <= 19 * 14:
        for (i, j), value in np.ndenumerate(data):
            if math.isfinite(value):
                dark = abs(value) > 0.6 * lim if diverging else value < 55
                text = f"{value:.0f}" if not diverging else f"{value:+.1f}"
                ax.text(
                    j,
                    i,
                    text + ("*" if marked[i, j] else ""),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if dark else "black",
                )
    for i, j in zip(*np.nonzero(marked)):
        frame = Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="black", linewidth=1.4)
        frame.set_gid(f"significant-{i}-{j}")
        ax.add_patch(frame)
    ax.set_xticks(range(len(classes)), list(classes), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(row_labels)), list(row_labels), fontsize=7)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=bar_label, shrink=0.9)
    return save(fig, stem, formats)


def class_bars(
    labels: Sequence[str],
    classes: Sequence[str],
    matrix: np.ndarray,
    stem: Path,
    formats: Sequence[str],
    subset: str = "",
) -> list[Path]:
    """Grouped bars: per-class IoU of a few models side by side; `subset` says which classes."""
    data = np.asarray(matrix, dtype=float)
    fig = new_figure(max(9.0, 0.6 * len(classes) + 2.0), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(classes))
    for k, label in enumerate(labels):
        ax.bar(x + (k - (len(labels) - 1) / 2) * width, np.nan_to_num(data[k], nan=0.0), width=width, label=label)
    ax.set_xticks(x, list(classes), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Per-class IoU of the top {len(labels)} models by mIoU" + (f"\n{subset}" if subset else ""))
    ax.legend(fontsize=7, ncols=min(4, len(labels)))
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, stem, formats)


def class_distribution(
    classes: Sequence[str],
    frequencies: Sequence[float],
    palette: Sequence[tuple[int, int, int]],
    images: int,
    stem: Path,
    formats: Sequence[str],
) -> list[Path]:
    """Figure 4: how unequal the classes are, which is why class-balanced loss and OHEM help."""
    share = np.asarray(frequencies, dtype=float) * 100
    if len(classes) > MAX_CLASS_COLUMNS:
        return _ranked_distribution(classes, share, palette, images, stem, formats)
    fig = new_figure(max(8.0, 0.5 * len(classes) + 2.0), 4.0)
    ax = fig.add_subplot()
    colours = [tuple(c / 255 for c in palette[i]) if i < len(palette) else (0.5, 0.5, 0.5) for i in range(len(classes))]
    heights = np.where(share > 0, share, np.nan)
    ax.bar(range(len(classes)), heights, color=colours, edgecolor="black", linewidth=0.4)
    for i, value in enumerate(share):
        if value <= 0:
            ax.text(i, 1e-3, "0", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(classes)), list(classes), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of labelled pixels (%, log scale)")
    ax.set_title(f"Class distribution of the train split ({images} images)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return save(fig, stem, formats)


def _ranked_distribution(
    classes: Sequence[str],
    share: np.ndarray,
    palette: Sequence[tuple[int, int, int]],
    images: int,
    stem: Path,
    formats: Sequence[str],
) -> list[Path]:
    """Many classes: every class as one bar of the ranked shares (unlabelled), beside the most
    frequent and the rarest classes by name; the CSV beside the figure has every count."""
    colours = [tuple(c / 255 for c in palette[i]) if i < len(palette) else (0.5, 0.5, 0.5) for i in range(len(classes))]
    order = sorted(range(len(classes)), key=lambda i: (-share[i], i))
    fig = new_figure(13.0, 6.5)
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1.0])
    left.bar(
        range(len(order)),
        [share[i] if share[i] > 0 else np.nan for i in order],
        color=[colours[i] for i in order],
        edgecolor="black",
        linewidth=0.2,
        width=1.0,
    )
    absent = sum(1 for v in share if v <= 0)
    left.set_yscale("log")
    ranked = f"class rank (all {len(classes)} classes, most frequent first)"
    left.set_xlabel(ranked + (f"; {absent} absent" if absent else ""))
    left.set_ylabel("share of labelled pixels (%, log scale)")
    left.set_xlim(-1, len(order))
    left.grid(True, axis="y", which="both", alpha=0.3)
    half = MAX_CLASS_COLUMNS // 2
    named = order[:half] + order[-half:]
    y = list(range(half)) + [half + 1 + k for k in range(half)]
    right.barh(
        y,
        [share[i] if share[i] > 0 else np.nan for i in named],
        color=[colours[i] for i in named],
        edgecolor="black",
        linewidth=0.4,
    )
    floor = min((v for v in share if v > 0), default=1e-3)
    for pos, i in zip(y, named):
        if share[i] <= 0:
            right.text(floor, pos, " 0", va="center", ha="left", fontsize=6)
    right.axhline(half, color="gray", linestyle=":", linewidth=0.8)
    right.set_yticks(y, [classes[i] for i in named], fontsize=6)
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlabel("share (%, log scale)")
    right.set_title(f"the {half} most frequent and the {half} rarest", fontsize=9)
    right.grid(True, axis="x", which="both", alpha=0.3)
    fig.suptitle(f"Class distribution of the train split ({images} images, {len(classes)} classes)")
    return save(fig, stem, formats)
