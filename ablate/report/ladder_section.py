"""The section of one trick ladder or leave-one-out study: its table in every format, the figure of
its changes (a waterfall, or the deltas of leaving each trick out) and its per-class changes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ablate.report import class_figures, figures, ladder_tables
from ablate.report.class_figures import MAX_CLASS_COLUMNS
from ablate.report.classes import largest_changes
from ablate.report.folder import Writer, slug
from ablate.report.html import FigureRef, Section
from ablate.statistics import Ladder


def section(ladder: Ladder, writer: Writer, classes: tuple[str, ...], multi: bool) -> Section:
    """The files of several studies' ladders carry the study's name, so they cannot overwrite each other."""
    base = "leave_one_out" if ladder.is_loo else "ladder"
    name = f"{base}-{slug(ladder.experiment)}" if multi else base
    title = ("Leave-one-out" if ladder.is_loo else "Trick ladder") + (f" ({ladder.experiment})" if multi else "")
    s = Section(title, name)
    table = ladder_tables.ladder_table(ladder)
    s.tables.append(table)
    s.links += [
        ("Markdown", writer.text(f"{name}.md", table.markdown())),
        (
            "LaTeX",
            writer.text(f"{name}.tex", ladder_tables.paper_ladder(table, ladder, f"{name}_full.tex").latex()),
        ),
        (
            "LaTeX, every column",
            writer.text(
                f"{name}_full.tex",
                replace(table, short=f"{table.title}: changes and their tests.").latex(wide=True),
            ),
        ),
        ("CSV", writer.text(f"{name}.csv", ladder_tables.ladder_csv(ladder))),
    ]
    if ladder.is_loo:
        if any(st.rung == 0 for st in ladder.steps) and len(ladder.steps) > 1:
            s.figures.append(
                FigureRef(
                    "Change of mIoU when one trick is removed from the full recipe"
                    + (" (95% CI)" if ladder.tested else ""),
                    writer.record(figures.loo_deltas(ladder, writer.figure_stem(f"{name}_deltas"), writer.formats)),
                )
            )
        else:
            s.notes.append("no finished full-recipe run (rung 0): no deltas to draw")
    elif len(ladder.steps) < 2:
        s.notes.append("only one rung has finished runs: no changes to draw")
    else:
        s.figures.append(
            FigureRef(
                "Waterfall of the ladder: rung 0, the change each trick adds, the final level",
                writer.record(figures.waterfall(ladder, writer.figure_stem(f"{name}_waterfall"), writer.formats)),
            )
        )
    if ladder.noisy:
        s.notes.append(
            "changes smaller than the seed-to-seed sd of mIoU (single runs could rank these either way): "
            + ", ".join(ladder.noisy)
        )
    _classes(s, ladder, name, writer, classes)
    return s


def _classes(s: Section, ladder: Ladder, name: str, writer: Writer, classes: tuple[str, ...]) -> None:
    """Per-class changes of each rung: the heatmap with significant cells framed, the CSV with
    every test, and per trick the classes it helped and hurt."""
    changed = [(st, label) for st, label in zip(ladder.steps, ladder.step_labels) if st.rung != 0]
    deltas = np.asarray([st.class_delta for st, _ in changed], dtype=float)
    if not changed or not np.isfinite(deltas).any():
        return
    what = "vs the full recipe" if ladder.is_loo else "vs the rung below"
    tested = any(st.class_tested for st, _ in changed)
    significant = np.asarray([st.class_significant for st, _ in changed], dtype=bool)
    columns = list(range(len(classes)))
    subset = ""
    if len(classes) > MAX_CLASS_COLUMNS:
        columns = largest_changes(deltas, significant)
        subset = (
            f"; the {len(columns)} of {len(classes)} classes changed most on any rung"
            + (", those with a significant change first" if significant.any() else "")
            + f", largest change first; every class in {name}_class_delta.csv"
        )
    s.figures.append(
        FigureRef(
            f"Per-class IoU change of each rung {what} (mean over seeds)"
            + ("; framed and starred: significant after Holm across the rung's classes (p < 0.05)" if tested else "")
            + subset,
            writer.record(
                class_figures.class_heatmap(
                    [label for _, label in changed],
                    [classes[i] for i in columns],
                    deltas[:, columns],
                    writer.figure_stem(f"{name}_class_delta"),
                    writer.formats,
                    f"Per-class Δ IoU {what} ({ladder.experiment})"
                    + (f"\nthe {len(columns)} of {len(classes)} classes changed most" if subset else ""),
                    diverging=True,
                    significant=significant[:, columns],
                )
            ),
        )
    )
    s.links.append(
        (
            "per-class changes and tests (CSV)",
            writer.text(f"{name}_class_delta.csv", ladder_tables.class_delta_csv(ladder)),
        )
    )
    s.tables.append(ladder_tables.class_effects_table(ladder))
