"""Search plots of `ablate tune` runs, from the Optuna study their parent run points at.

Optuna's matplotlib plots go through pyplot, so this is the one place that does; every figure is
closed after saving. A plot that cannot be made (too few complete trials, a missing storage) is a
note in the report, never a failed report.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ablate.report.collect import TuneRun
from ablate.report.figures import save


@dataclass
class SearchResult:
    """What one tune run produced: figure files, trial counts and reasons for skipped plots."""

    tune: TuneRun
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    best_value: Optional[float] = None
    best_params: dict[str, Any] = field(default_factory=dict)
    directions: list[str] = field(default_factory=list)

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


def search_figures(tune: TuneRun, stem: Path, formats: Sequence[str]) -> SearchResult:
    """History, importance and slice plots (`<stem>_history`, `_importance`, `_slice`)."""
    result = SearchResult(tune)
    if not tune.storage:
        result.notes.append(f"tune run {tune.run_id}: no ablate.optuna_storage tag; search plots skipped")
        return result
    try:
        study = load(tune)
    except Exception as exc:  # any storage/driver problem: report it, carry on
        result.notes.append(f"Optuna study {tune.study_name!r} at {tune.storage}: cannot load ({type(exc).__name__}: {exc}); search plots skipped")
        return result
    import optuna
    from optuna.visualization import matplotlib as ovm

    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        result.states[trial.state.name] = result.states.get(trial.state.name, 0) + 1
    result.directions = [d.name.lower() for d in study.directions]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(study.directions) == 1 and complete:
        result.best_value = study.best_value
        result.best_params = dict(study.best_params)
    plots = [("history", ovm.plot_optimization_history, 1), ("importance", ovm.plot_param_importances, 2), ("slice", ovm.plot_slice, 1)]
    plt = _pyplot()
    import matplotlib

    for name, plot, needed in plots:
        if len(complete) < needed:
            result.notes.append(f"{result.label}: {name} plot needs at least {needed} complete trial(s), found {len(complete)}")
            continue
        try:
            # Optuna switches pyplot's style globally; the context puts every rcParam back after.
            with matplotlib.rc_context(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot(study)
                fig = _figure_of(axes)
                fig.set_size_inches(max(6.0, fig.get_figwidth()), max(4.0, fig.get_figheight()))
                try:
                    result.files += save(fig, stem.with_name(f"{stem.name}_{name}"), formats, tight=True)
                finally:
                    plt.close(fig)
        except Exception as exc:  # e.g. importance on parameters that never varied
            result.notes.append(f"{result.label}: {name} plot failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    return result


def best_text(result: SearchResult) -> str:
    if result.best_value is None or (isinstance(result.best_value, float) and math.isnan(result.best_value)):
        return ""
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    return f"best {result.best_value:.4g} ({params})"
