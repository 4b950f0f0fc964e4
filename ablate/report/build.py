"""`build_report`: MLflow store -> a folder of tables, figures, index.html and README.md.

Each section is computed once and skips itself with a note when its inputs are missing; the
folder handling (formats, the all-or-nothing swap) lives in `ablate.report.folder`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ablate.errors import AblateError
from ablate.report import (
    budget,
    choice,
    figures,
    gallery,
    ladder_tables,
    model_table,
    predictions,
    search,
    speed,
    tables,
    timing,
)
from ablate.report.collect import Collection, collect, runs_frame
from ablate.report.folder import MARKER, Writer, check_out, move_into_place, parse_formats, slug
from ablate.report.groups import ModelRow, model_rows
from ablate.report.html import Document, FigureRef, Section, render_html, render_markdown
from ablate.statistics import Ladder, ladders, pareto_front
from ablate.tracking import RunStore

MAX_HEATMAP_ROWS = 40
TOP_BARS = 4


def _class_names(collection: Collection) -> tuple[str, ...]:
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


def _figure1_rows(rows: Sequence[ModelRow]) -> list[ModelRow]:
    """Figure 1 compares models: the zoo when there is one (ladder rungs share one model's FLOPs
    and would pile up in a column), else every row; rows without FLOPs cannot be placed."""
    zoo = [r for r in rows if r.shape == "zoo"]
    chosen = zoo or list(rows)
    return [r for r in chosen if not math.isnan(r.flops_g) and r.flops_g > 0]


class _Report:
    """One report, computed once; each section skips itself with a note when its inputs are missing."""

    def __init__(
        self,
        collection: Collection,
        writer: Writer,
        reference: dict[str, float],
        data_root: Path | None,
        store: RunStore,
        study_file: Path | None,
        profile: str | None,
    ) -> None:
        self.c = collection
        self.w = writer
        self.reference = reference
        self.data_root = data_root
        self.store = store
        self.study_file = study_file
        self.profile = profile
        self.classes = _class_names(collection)
        self.rows: list[ModelRow] = model_rows(collection, reference)
        self.ladders: list[Ladder] = ladders(collection.table_runs, self.classes, reference)
        self.multi = len(collection.experiments) > 1
        self.figure1_rows = _figure1_rows(self.rows)
        self.front = pareto_front([(r.label, r.flops_g, r.miou.mean) for r in self.figure1_rows])
        self.latency = speed.latency_view(self.rows)

    def _name(self, base: str, experiment: str) -> str:
        return f"{base}-{slug(experiment)}" if self.multi else base

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

    def which_model(self) -> Section:
        return choice.section(self.rows, self.w, self.multi)

    def ladder(self, ladder: Ladder) -> Section:
        base = "leave_one_out" if ladder.is_loo else "ladder"
        title = ("Leave-one-out" if ladder.is_loo else "Trick ladder") + (
            f" ({ladder.experiment})" if self.multi else ""
        )
        s = Section(title, self._name(base, ladder.experiment))
        table = ladder_tables.ladder_table(ladder)
        s.tables.append(table)
        name = self._name(base, ladder.experiment)
        s.links += [
            ("Markdown", self.w.text(f"{name}.md", table.markdown())),
            (
                "LaTeX",
                self.w.text(f"{name}.tex", ladder_tables.paper_ladder(table, ladder, f"{name}_full.tex").latex()),
            ),
            (
                "LaTeX, every column",
                self.w.text(
                    f"{name}_full.tex",
                    replace(table, short=f"{table.title}: changes and their tests.").latex(wide=True),
                ),
            ),
            ("CSV", self.w.text(f"{name}.csv", ladder_tables.ladder_csv(ladder))),
        ]
        if ladder.is_loo:
            if any(st.rung == 0 for st in ladder.steps) and len(ladder.steps) > 1:
                s.figures.append(
                    self._figure(
                        "Change of mIoU when one trick is removed from the full recipe"
                        + (" (95% CI)" if ladder.tested else ""),
                        figures.loo_deltas(ladder, self.w.figure_stem(f"{name}_deltas"), self.w.formats),
                    )
                )
            else:
                s.notes.append("no finished full-recipe run (rung 0): no deltas to draw")
        elif len(ladder.steps) < 2:
            s.notes.append("only one rung has finished runs: no changes to draw")
        else:
            s.figures.append(
                self._figure(
                    "Waterfall of the ladder: rung 0, the change each trick adds, the final level",
                    figures.waterfall(ladder, self.w.figure_stem(f"{name}_waterfall"), self.w.formats),
                )
            )
        if ladder.noisy:
            s.notes.append(
                "changes smaller than the seed-to-seed sd of mIoU (single runs could rank these either way): "
                + ", ".join(ladder.noisy)
            )
        self._ladder_classes(s, ladder, name)
        return s

    def _ladder_classes(self, s: Section, ladder: Ladder, name: str) -> None:
        """Per-class changes of each rung: the heatmap with significant cells framed, the CSV with
        every test, and per trick the classes it helped and hurt."""
        changed = [(st, label) for st, label in zip(ladder.steps, ladder.step_labels) if st.rung != 0]
        deltas = np.asarray([st.class_delta for st, _ in changed], dtype=float)
        if not changed or not np.isfinite(deltas).any():
            return
        what = "vs the full recipe" if ladder.is_loo else "vs the rung below"
        tested = any(st.class_tested for st, _ in changed)
        s.figures.append(
            self._figure(
                f"Per-class IoU change of each rung {what} (mean over seeds)"
                + (
                    "; framed and starred: significant after Holm across the rung's classes (p < 0.05)"
                    if tested
                    else ""
                ),
                figures.class_heatmap(
                    [label for _, label in changed],
                    self.classes,
                    deltas,
                    self.w.figure_stem(f"{name}_class_delta"),
                    self.w.formats,
                    f"Per-class Δ IoU {what} ({ladder.experiment})",
                    diverging=True,
                    significant=np.asarray([st.class_significant for st, _ in changed], dtype=bool),
                ),
            )
        )
        s.links.append(
            (
                "per-class changes and tests (CSV)",
                self.w.text(f"{name}_class_delta.csv", ladder_tables.class_delta_csv(ladder)),
            )
        )
        s.tables.append(ladder_tables.class_effects_table(ladder))

    def per_class(self) -> Section:
        s = Section("Per-class IoU", "per_class")
        with_classes = [r for r in self.rows if np.isfinite(r.class_iou(self.classes)).any()]
        if not with_classes:
            s.notes.append("no run logged IoU.<class> metrics: per-class figures skipped")
            return s
        buf = io.StringIO()
        table = csv.writer(buf, lineterminator="\n")
        table.writerow(["model", *self.classes])
        for row in with_classes:
            table.writerow([row.label, *(tables.raw_number(v) for v in row.class_iou(self.classes))])
        s.links.append(("per-class IoU (CSV)", self.w.text("per_class_iou.csv", buf.getvalue())))
        shown = with_classes
        if len(shown) > MAX_HEATMAP_ROWS:
            keep = {id(r) for r in sorted(shown, key=lambda r: -r.miou.mean)[:MAX_HEATMAP_ROWS]}
            shown = [r for r in shown if id(r) in keep]
            s.notes.append(f"heatmap shows the {MAX_HEATMAP_ROWS} best of {len(with_classes)} rows; the CSV has all")
        s.figures.append(
            self._figure(
                "Per-class IoU (%) of every model (mean over seeds; grey: class absent)",
                figures.class_heatmap(
                    [r.label for r in shown],
                    self.classes,
                    np.asarray([r.class_iou(self.classes) for r in shown]),
                    self.w.figure_stem("per_class_heatmap"),
                    self.w.formats,
                    "Per-class IoU (%)",
                ),
            )
        )
        top = sorted(with_classes, key=lambda r: -r.miou.mean)[:TOP_BARS]
        s.figures.append(
            self._figure(
                f"Per-class IoU of the top {len(top)} models by mIoU",
                figures.class_bars(
                    [r.label for r in top],
                    self.classes,
                    np.asarray([r.class_iou(self.classes) for r in top]),
                    self.w.figure_stem("per_class_bars"),
                    self.w.formats,
                ),
            )
        )
        return s

    def distribution(self) -> Section:
        s = Section("Figure 4: class distribution", "distribution")
        if self.data_root is None:
            s.notes.append("no dataset known: pass --data DIR or a study file to draw the class distribution")
            return s
        from ablate.data import PALETTE, class_stats

        try:
            stats = class_stats(self.data_root)
        except AblateError as exc:
            s.notes.append(f"class distribution skipped: {exc}")
            return s
        s.paragraphs.append(
            f"Train split of {self.data_root}: {stats.images} images, {stats.total:,} labelled pixels, "
            f"{stats.ignored_pixels:,} ignored."
        )
        s.figures.append(
            self._figure(
                "Share of labelled train pixels per class (log scale)",
                figures.class_distribution(
                    stats.classes,
                    stats.frequencies,
                    PALETTE,
                    stats.images,
                    self.w.figure_stem("class_distribution"),
                    self.w.formats,
                ),
            )
        )
        return s

    def search(self) -> Section | None:
        tunes = {}
        for tune in sorted(self.c.tunes, key=lambda t: t.start_time):
            tunes[(tune.storage, tune.study_name)] = tune  # a resumed search: its newest parent run
        runs = self.c.search_runs
        if not tunes and not runs:
            return None
        s = Section("Search", "search")
        for index, tune in enumerate(tunes.values()):
            label = slug(tune.study_name or tune.run_id[:8])
            result = search.search_figures(tune, self.w.figure_stem(f"search_{index}_{label}"), self.w.formats)
            states = ", ".join(f"{n} {k.lower()}" for k, n in sorted(result.states.items()))
            best = search.best_text(result)
            s.paragraphs.append(
                f"Optuna study {result.label} ({tune.storage})"
                + (f": {states} trials" if states else "")
                + (f"; {best}" if best else "")
                + "."
            )
            for caption, paths in result.figures:
                s.figures.append(self._figure(f"{result.label}: {caption}", paths))
            s.notes += result.notes
        if runs:
            frame = _search_frame(runs)
            s.links.append(("search trial runs (CSV)", self.w.text("search_trials.csv", frame.to_csv(index=False))))
        return s

    def qualitative(self) -> Section:
        s = Section("Figure 2: qualitative results", "qualitative")
        workdir = Path(tempfile.mkdtemp(prefix="ablate-predictions-"))
        try:
            found = predictions.grid(self.rows, self.store, workdir)
            if found is None:
                s.notes.append(
                    f"none of the top trials logged {predictions.FOLDER}/<image>_pred.png artifacts: figure skipped"
                )
                return s
            s.figures.append(
                self._figure(
                    "Test images, ground truth and predictions of the best trials (mIoU in brackets)",
                    figures.qualitative(
                        found.cells,
                        found.row_labels,
                        found.col_labels,
                        self.w.figure_stem("qualitative"),
                        self.w.formats,
                    ),
                )
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return s

    def failures(self) -> Section:
        return gallery.section(self.rows, self.store, self.w)

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
        sections = [self.summary(), self.table1(), self.flops(), self.which_model()]
        sections += [self.ladder(ladder) for ladder in self.ladders]
        sections += [self.per_class(), self.distribution()]
        found = self.search()
        if found is not None:
            sections.append(found)
        sections += [self.qualitative(), self.failures(), timing.section(self.c, self.w, self.multi)]
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


def _search_frame(runs: Sequence[Any]) -> Any:
    import pandas as pd

    rows = []
    for r in sorted(runs, key=lambda r: (r.experiment, r.optuna_trial)):
        row = {
            "experiment": r.experiment,
            "optuna_trial": r.optuna_trial,
            "optuna_state": r.optuna_state,
            "status": r.status,
            "trial": r.name,
            "seed": r.seed,
            "mIoU": r.metrics.get("mIoU"),
            "best_mIoU": r.metrics.get("best_mIoU"),
            "run_id": r.run_id,
        }
        row.update({k: v for k, v in r.params.items() if k.startswith(("override.", "trick."))})
        rows.append(row)
    return pd.DataFrame(rows)


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
            data_root,
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
