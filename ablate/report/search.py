"""Search plots of `ablate tune` runs, from the Optuna study their parent run points at: history,
importance and slice plots, and for a multi-objective search its Pareto front (feasible trials
under the search's constraints; infeasible ones drawn apart), axes named after the metrics.

Optuna's matplotlib plots go through pyplot, so this is the one place that does; every figure is
closed after saving. A plot that cannot be made (too few complete trials, a missing storage) is a
note in the report, never a failed report.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ablate.report.collect import TrialRun, TuneRun
from ablate.report.figures import save
from ablate.report.folder import Writer, slug
from ablate.report.html import FigureRef, Section
from ablate.util.text import one_line


@dataclass
class SearchResult:
    """What one tune run produced: figure files, trial counts and reasons for skipped plots."""

    tune: TuneRun
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    directions: list[str] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)
    pareto: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (trial, values by metric)
    figures: list[tuple[str, list[Path]]] = field(default_factory=list)  # (caption, files)

    @property
    def label(self) -> str:
        return self.tune.study_name or self.tune.run_id[:8]


def _pyplot() -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # never switch a backend someone else chose
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure_of(axes: Any) -> Any:
    if hasattr(axes, "figure"):
        return axes.figure
    return next(iter(axes.flat)).figure


def load(tune: TuneRun) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=tune.study_name or None, storage=tune.storage)


def _plots(names: list[str]) -> list[tuple[str, str, Callable[[Any], Any], int]]:
    """(file suffix, caption, draw, complete trials needed) for each plot of this study."""
    from optuna.visualization import matplotlib as ovm

    if len(names) == 1:
        return [
            ("history", "optimisation history", ovm.plot_optimization_history, 1),
            ("importance", "parameter importance", ovm.plot_param_importances, 2),
            ("slice", "slice plot", ovm.plot_slice, 1),
        ]
    plots: list[tuple[str, str, Callable[[Any], Any], int]] = []
    if len(names) in (2, 3):  # Optuna draws a front in two or three dimensions
        plots.append(
            (
                "pareto",
                f"Pareto front ({' vs '.join(names)})",
                lambda s: ovm.plot_pareto_front(s, target_names=names),
                1,
            )
        )
    plots.append(("importance", "parameter importance per objective", ovm.plot_param_importances, 2))
    for index, name in enumerate(names):

        def target(trial: Any, i: int = index) -> float:
            return float(trial.values[i])

        plots.append(
            (
                f"history_{slug(name)}",
                f"optimisation history of {name}",
                partial(ovm.plot_optimization_history, target=target, target_name=name),
                1,
            )
        )
        plots.append(
            (
                f"slice_{slug(name)}",
                f"slice plot of {name}",
                partial(ovm.plot_slice, target=target, target_name=name),
                1,
            )
        )
    return plots


def search_figures(tune: TuneRun, stem: Path, formats: Sequence[str]) -> SearchResult:
    """History, importance and slice plots (`<stem>_history`, `_importance`, `_slice`); with
    several objectives the Pareto front (`_pareto`), importances of every objective and a history
    and slice plot per objective (`_history_<metric>`, `_slice_<metric>`)."""
    result = SearchResult(tune)
    if not tune.storage:
        result.notes.append(f"tune run {tune.run_id}: no ablate.optuna_storage tag; search plots skipped")
        return result
    try:
        study = load(tune)
    except Exception as exc:  # any storage/driver problem: report it, carry on
        result.notes.append(
            f"Optuna study {tune.study_name!r} at {tune.storage}: cannot load ({one_line(exc)}); search plots skipped"
        )
        return result
    import optuna

    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        result.states[trial.state.name] = result.states.get(trial.state.name, 0) + 1
    result.directions = [d.name.lower() for d in study.directions]
    result.metric_names = list(study.metric_names or [f"objective {i}" for i in range(len(study.directions))])
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(study.directions) == 1 and complete:
        try:
            best = study.best_trial
            result.best_value, result.best_params = best.value, dict(best.params)
        except ValueError:  # complete trials, none within the constraints
            result.notes.append(f"{result.label}: no complete trial satisfies the search's constraints")
    elif complete:
        result.pareto = [(t.number, dict(zip(result.metric_names, t.values))) for t in study.best_trials]
        if not result.pareto:
            result.notes.append(
                f"{result.label}: no complete trial satisfies the search's constraints; no Pareto front"
            )
    plt = _pyplot()
    import matplotlib

    for suffix, caption, plot, needed in _plots(result.metric_names):
        if len(complete) < needed:
            result.notes.append(
                f"{result.label}: {caption} needs at least {needed} complete trial(s), found {len(complete)}"
            )
            continue
        try:
            # Optuna switches pyplot's style globally; the context puts every rcParam back after.
            with matplotlib.rc_context(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot(study)
                fig = _figure_of(axes)
                fig.set_size_inches(max(6.0, fig.get_figwidth()), max(4.0, fig.get_figheight()))
                try:
                    files = save(fig, stem.with_name(f"{stem.name}_{suffix}"), formats, tight=True)
                finally:
                    plt.close(fig)
            result.files += files
            result.figures.append((caption, files))
        except Exception as exc:  # e.g. importance on parameters that never varied
            result.notes.append(f"{result.label}: {caption} failed ({one_line(exc)})")
    return result


def best_text(result: SearchResult) -> str:
    """The best trial of one objective, or the Pareto set of several (empty when none)."""
    if result.pareto:
        trials = "; ".join(
            f"trial {n} ({', '.join(f'{k} {v:.4g}' for k, v in values.items())})" for n, values in result.pareto
        )
        return f"Pareto front of {len(result.pareto)} trial(s): {trials}"
    if result.best_value is None or (isinstance(result.best_value, float) and math.isnan(result.best_value)):
        return ""
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    return f"best {result.best_value:.4g} ({params})"


def section(tunes: Sequence[TuneRun], runs: Sequence[TrialRun], writer: Writer) -> Section | None:
    """None without any search; a resumed search logged several parent runs, of which its newest counts."""
    newest = {}
    for tune in sorted(tunes, key=lambda t: t.start_time):
        newest[(tune.storage, tune.study_name)] = tune
    if not newest and not runs:
        return None
    s = Section("Search", "search")
    for index, tune in enumerate(newest.values()):
        label = slug(tune.study_name or tune.run_id[:8])
        result = search_figures(tune, writer.figure_stem(f"search_{index}_{label}"), writer.formats)
        states = ", ".join(f"{n} {k.lower()}" for k, n in sorted(result.states.items()))
        best = best_text(result)
        s.paragraphs.append(
            f"Optuna study {result.label} ({tune.storage})"
            + (f": {states} trials" if states else "")
            + (f"; {best}" if best else "")
            + "."
        )
        for caption, paths in result.figures:
            s.figures.append(FigureRef(f"{result.label}: {caption}", writer.record(paths)))
        s.notes += result.notes
    if runs:
        frame = _search_frame(runs)
        s.links.append(("search trial runs (CSV)", writer.text("search_trials.csv", frame.to_csv(index=False))))
    return s


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
