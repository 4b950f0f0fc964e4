"""`build_report`: MLflow store -> a folder of tables, figures, index.html and README.md.

Each section is computed once and skips itself with a note when its inputs are missing; the larger
sections live in modules of their own (`ladder_section`, `classes`, `search`, `predictions`,
`gallery`, `choice`, `timing`), the folder handling (formats, the all-or-nothing swap) in
`ablate.report.folder`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.errors import AblateError
from ablate.report import (
    budget,
    choice,
    classes,
    figures,
    gallery,
    ladder_section,
    model_table,
    predictions,
    search,
    speed,
    timing,
)
from ablate.report.collect import Collection, collect, runs_frame
from ablate.report.folder import MARKER, Writer, check_out, move_into_place, parse_formats, slug
from ablate.report.groups import ModelRow, model_rows
from ablate.report.html import Document, FigureRef, Section, render_html, render_markdown
from ablate.report.label_space import label_space
from ablate.statistics import Ladder, ladders, pareto_front
from ablate.tracking import RunStore

if TYPE_CHECKING:
    from ablate.data.stats import ClassStats
    from ablate.study.study import Study


def _figure1_rows(rows: Sequence[ModelRow]) -> list[ModelRow]:
    """Figure 1 compares models: the zoo when there is one (ladder rungs share one model's FLOPs
    and would pile up in a column), else every row; rows without FLOPs cannot be placed."""
    zoo = [r for r in rows if r.shape == "zoo"]
    chosen = zoo or list(rows)
    return [r for r in chosen if not math.isnan(r.flops_g) and r.flops_g > 0]


def train_class_stats(data_root: Path | None, loaded: Study | None = None) -> tuple[ClassStats | None, str]:
    """The one call that counts the dataset's pixels for Figure 4: the train split's class
    statistics and what they count, or None and why there are none (a dataset that cannot be read
    is a note; the report of the runs must not fail on it).

    A study's dataset is read as its config declares it (any mmseg dataset); `--data DIR` names a
    folder of the KITTI layout the converters and `ablate data synth` write."""
    try:
        if loaded is not None and data_root == loaded.data_root:
            from ablate.data import split_stats
            from ablate.study import data_plans, dataset_config

            if not data_plans(loaded)[0].ready:
                return None, f"class distribution skipped: {data_root} is not generated yet (ablate run makes it)"
            return split_stats(dataset_config(loaded), "train"), f"Train split of {data_root}"
        if data_root is None:
            return None, "no dataset known: pass --data DIR or a study file to draw the class distribution"
        from ablate.data import class_stats

        return class_stats(data_root), f"Train split of {data_root}"
    except AblateError as exc:
        return None, f"class distribution skipped: {exc}"


class _Report:
    """One report, computed once; each section skips itself with a note when its inputs are missing."""

    def __init__(
        self,
        collection: Collection,
        writer: Writer,
        reference: dict[str, float],
        train_stats: tuple[ClassStats | None, str],
        store: RunStore,
        study_file: Path | None,
        profile: str | None,
    ) -> None:
        self.c = collection
        self.w = writer
        self.reference = reference
        self.train_stats = train_stats
        self.store = store
        self.study_file = study_file
        self.profile = profile
        self.space = label_space(collection, store)
        self.classes = self.space.classes
        self.rows: list[ModelRow] = model_rows(collection, reference)
        self.ladders: list[Ladder] = ladders(collection.table_runs, self.classes, reference)
        self.multi = len(collection.experiments) > 1
        self.figure1_rows = _figure1_rows(self.rows)
        self.front = pareto_front([(r.label, r.flops_g, r.miou.mean) for r in self.figure1_rows])
        self.latency = speed.latency_view(self.rows)

    def _figure(self, caption: str, paths: Sequence[Path]) -> FigureRef:
        return FigureRef(caption, self.w.record(paths))

    # -- sections -------------------------------------------------------------------------
    def summary(self) -> Section:
        c = self.c
        n_search = len(c.search_runs)
        s = Section("Summary", "summary")
        excluded = len(c.excluded)
        s.paragraphs.append(
            f"{len(c.table_runs)} finished trial runs in {len(self.rows)} table rows; "
            + (
                f"{excluded} failed, running or incomplete (listed at the end, not averaged)"
                if excluded
                else "no failed or running trials"
            )
            + (f"; {n_search} search trial runs" if n_search else "")
            + (f"; {c.superseded} older attempts of re-run trials ignored" if c.superseded else "")
            + "."
        )
        short = budget.short_budget_note(c.table_runs)
        if short:
            s.paragraphs.insert(0, short)
        pretrain = sum(1 for r in c.trials if r.pretrain and r.finished)
        if pretrain:
            s.paragraphs.append(f"{pretrain} pretraining run(s) are not part of the tables.")
        if len(c.profiles) > 1 and self.profile is None:
            s.notes.append(
                f"runs of several profiles are mixed ({', '.join(c.profiles)}); pass --profile to report one of them"
            )
        s.links.append(("all trial runs (CSV)", self.w.text("runs.csv", runs_frame(c).to_csv(index=False))))
        return s

    def table1(self) -> Section:
        s = Section("Table 1: models", "table1")
        if not self.rows:
            s.notes.append("no finished non-search trials: Table 1 is empty (see the search section)")
            return s
        datasets = sorted({r.dataset for row in self.rows for r in row.runs if r.dataset})
        table = model_table.table1(self.rows, datasets)
        s.tables.append(table)
        s.links += [
            ("Markdown", self.w.text("table1.md", table.markdown())),
            ("LaTeX", self.w.text("table1.tex", model_table.paper_table1(table, self.rows, "table1_full.tex").latex())),
            (
                "LaTeX, every column",
                self.w.text(
                    "table1_full.tex", replace(table, short="Models: accuracy, cost, speed, training.").latex(wide=True)
                ),
            ),
            ("CSV", self.w.text("table1.csv", model_table.table1_csv(self.rows, self.front, self.latency.front))),
        ]
        return s

    def flops(self) -> Section:
        s = Section("Figure 1: mIoU vs FLOPs" + (" and latency" if self.latency else ""), "flops")
        plotted = self.figure1_rows
        if not plotted:
            s.notes.append("no run logged flops_g: figure skipped")
            speed.add_figure(s, self.latency, self.w)
            return s
        shown = {id(r) for r in plotted}
        zoo = any(r.shape == "zoo" for r in self.rows)
        scope = "zoo models" if zoo else "table rows"
        missing = [r.label for r in self.rows if id(r) not in shown and (r.shape == "zoo" or not zoo)]
        s.paragraphs.append(
            f"Pareto front of the {scope} (highest mIoU for the FLOPs, lowest FLOPs first): "
            + ", ".join(self.front)
            + "."
        )
        stem = self.w.figure_stem("miou_vs_flops")
        s.figures.append(
            self._figure(
                f"mIoU of the {scope} against GFLOPs (log scale); error bars: std over seeds; dashed: Pareto front; "
                "marker: what the model starts from",
                figures.miou_vs_flops(plotted, self.front, stem, self.w.formats),
            )
        )
        if missing:
            s.notes.append(f"without FLOPs, not plotted: {', '.join(missing)}")
        speed.add_figure(s, self.latency, self.w)
        return s

    def excluded(self) -> Section:
        s = Section("Failed and running trials", "excluded")
        items = self.c.excluded
        if not items:
            s.paragraphs.append("None: every trial finished.")
            return s
        s.paragraphs.append("These runs are left out of every table and figure.")
        header = (["study"] if self.multi else []) + ["trial", "seed", "status", "reason", "run id"]
        rows = [
            ([e.run.experiment] if self.multi else [])
            + [e.run.name, "" if e.run.seed is None else str(e.run.seed), e.run.status, e.reason, e.run.run_id]
            for e in items
        ]
        s.rows = (header, rows)
        return s

    def build(self) -> Document:
        sections = [self.summary(), self.table1(), self.flops(), choice.section(self.rows, self.w, self.multi)]
        sections += [ladder_section.section(ladder, self.w, self.classes, self.multi) for ladder in self.ladders]
        stats, about = self.train_stats
        sections += [
            classes.per_class_section(self.rows, self.classes, self.w, self.space.notes),
            classes.distribution_section(stats, self.space.meta, self.w, about),
        ]
        found = search.section(self.c.tunes, self.c.search_runs, self.w)
        if found is not None:
            sections.append(found)
        sections += [
            predictions.section(self.rows, self.store, self.w, self.space),
            gallery.section(self.rows, self.store, self.w, self.space),
            timing.section(self.c, self.w, self.multi),
        ]
        sections.append(self.excluded())
        meta = [
            ("experiment" + ("s" if self.multi else ""), ", ".join(self.c.experiments)),
            ("tracking URI", self.c.uri),
        ]
        if self.study_file is not None:
            meta.append(("study file", str(self.study_file)))
        if self.profile is not None:
            meta.append(("profile", self.profile))
        meta.append(("generated", time.strftime("%Y-%m-%d %H:%M:%S")))
        return Document(f"Report: {', '.join(self.c.experiments)}", meta, sections)


def build_report(
    experiments: Sequence[str] = (),
    *,
    study: Path | str | None = None,
    profile: str | None = None,
    out: Path | str | None = None,
    tracking_uri: str | None = None,
    formats: str | Sequence[str] = ("png",),
    data: Path | str | None = None,
) -> list[Path]:
    """Write the report of `experiments` (or of the study file's experiment); returns every file written.

    `profile` selects the study's profile and keeps only runs logged with that profile.
    """
    from ablate import tracking

    chosen_formats = parse_formats(formats)
    uri = tracking.resolve_tracking_uri(tracking_uri)
    loaded = None
    if study is not None:
        from ablate.study import load_study

        loaded = load_study(Path(study), profile, check_files=False)
    names = list(experiments) or ([loaded.name] if loaded is not None else [])
    reference = dict(loaded.spec.reference) if loaded is not None else {}
    data_root = Path(data) if data is not None else (loaded.data_root if loaded is not None else None)
    collection = collect(uri, names, profile)
    stats = train_class_stats(data_root, loaded)
    out_dir = Path(out) if out is not None else Path("reports") / slug("+".join(names))
    check_out(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)
        writer = Writer(tmp, chosen_formats)
        report = _Report(
            collection,
            writer,
            reference,
            stats,
            RunStore.open(uri),
            loaded.source if loaded is not None else None,
            profile,
        )
        doc = report.build()
        writer.text("index.html", render_html(doc))
        writer.text("README.md", render_markdown(doc))
        (tmp / MARKER).write_text("written by `ablate report`; the whole folder is replaced on the next run\n")
        move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out_dir / rel for rel in writer.written]
