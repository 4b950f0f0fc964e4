"""Estimated against actual time: how far to trust the next `ablate plan`.

Every trial `ablate run` launches records the estimate it was launched with (`ablate.est_time_s`,
with its source: store, calibrated or rough); its duration is recorded when it ends. The table
puts the two side by side per trial, and the summary gives, per source, the median ratio of
actual to estimated time (1.0: on the mark).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence

from ablate.report.collect import Collection, TrialRun
from ablate.report.folder import Writer
from ablate.report.html import Section

HEADER = ["trial", "seed", "source", "estimated_s", "actual_s", "actual_over_estimated"]


def timed_runs(collection: Collection) -> list[TrialRun]:
    """Finished trials that carry both an estimate and a duration."""
    return [
        r
        for r in collection.trials
        if r.finished and r.est_time_s is not None and r.est_time_s > 0 and r.duration_s is not None
    ]


def _ratio(run: TrialRun) -> float:
    return float(run.duration_s or 0.0) / float(run.est_time_s or 1.0)


def _rows(runs: Sequence[TrialRun], multi: bool) -> list[list[str]]:
    return [
        ([r.experiment] if multi else [])
        + [
            r.name,
            "" if r.seed is None else str(r.seed),
            r.est_source or "?",
            f"{r.est_time_s:.1f}",
            f"{r.duration_s:.1f}",
            f"{_ratio(r):.2f}",
        ]
        for r in runs
    ]


def section(collection: Collection, writer: Writer, multi: bool) -> Section:
    s = Section("Estimated and actual time", "timing")
    runs = sorted(timed_runs(collection), key=lambda r: (r.experiment, r.start_time))
    if not runs:
        s.notes.append("no finished trial recorded a launch estimate (runs older than the estimate, or `ablate tune`)")
        return s
    by_source: dict[str, list[float]] = {}
    for run in runs:
        by_source.setdefault(run.est_source or "?", []).append(_ratio(run))
    summary = "; ".join(
        f"{source}: {len(ratios)} trial{'s' if len(ratios) > 1 else ''}, median actual/estimated "
        f"{statistics.median(ratios):.2f}"
        for source, ratios in sorted(by_source.items())
    )
    s.paragraphs.append(
        "Wall time of each trial against the estimate it was launched with (earlier runs of the same model, crop "
        f"and batch in the store, a probe of the machine, or FLOPs when rough). {summary}."
    )
    header = (["study"] if multi else []) + HEADER
    rows = _rows(runs, multi)
    s.rows = (header, rows)
    buf = io.StringIO()
    writer_csv = csv.writer(buf, lineterminator="\n")
    writer_csv.writerow(header)
    writer_csv.writerows(rows)
    s.links.append(("estimated and actual time (CSV)", writer.text("timing.csv", buf.getvalue())))
    return s
