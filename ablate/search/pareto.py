"""The result of a search as YAML a study can `include:`: the best trial of a single-objective
search, or every Pareto-optimal trial of a multi-objective one (one snippet per trade-off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ablate.search.objectives import describe
from ablate.search.space import snippet_doc
from ablate.study.search_schema import SearchSpec

PARETO_FOLDER = "pareto"


@dataclass(frozen=True)
class ParetoEntry:
    """One non-dominated feasible trial: its Optuna number, objective values by metric name and
    sampled parameters; `snippet` is the file holding its study keys."""

    trial: int
    values: dict[str, float]
    params: dict[str, Any]
    snippet: Path = field(default=Path())


def pareto_entries(ostudy: Any, search: SearchSpec) -> list[ParetoEntry]:
    """Optuna's Pareto set (`Study.best_trials`, which leaves out trials that violate a
    constraint), best first by the first objective, then by trial number."""
    sign = -1.0 if search.directions[0] == "maximize" else 1.0
    trials = sorted(ostudy.best_trials, key=lambda t: (sign * t.values[0], t.number))
    return [
        ParetoEntry(t.number, dict(zip(search.objective_names, (float(v) for v in t.values))), dict(t.params))
        for t in trials
    ]


def write_snippet(path: Path, study_name: str, best: Any, metric: str) -> Path:
    """The best parameters as a YAML snippet a ladder or zoo study can `include:`."""
    header = f"# best of Optuna study '{study_name}': trial {best.number}, {metric} {best.value:.4f}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(snippet_doc(best.params), sort_keys=True))
    return path


def write_pareto(
    path: Path, study_name: str, search: SearchSpec, entries: list[ParetoEntry]
) -> tuple[Path, list[ParetoEntry]]:
    """`path` lists the Pareto set under `pareto:`; each entry's study keys also go to
    `pareto/trial_<n>.yaml` beside it, the file to `include:` for that trade-off. Snippets of
    trials that left the front since an earlier run are removed."""
    folder = path.parent / PARETO_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("trial_*.yaml"):
        stale.unlink()
    written: list[ParetoEntry] = []
    listing: list[dict[str, Any]] = []
    for entry in entries:
        doc = snippet_doc(entry.params)
        snippet = folder / f"trial_{entry.trial}.yaml"
        values = ", ".join(f"{k} {v:.4g}" for k, v in entry.values.items())
        snippet.write_text(
            f"# Pareto-optimal trial {entry.trial} of Optuna study '{study_name}': {values}\n"
            + yaml.safe_dump(doc, sort_keys=True)
        )
        written.append(ParetoEntry(entry.trial, entry.values, entry.params, snippet))
        listing.append({"trial": entry.trial, "values": entry.values, "snippet": str(snippet), **doc})
    first = search.objective_names[0]
    header = (
        f"# Pareto front of Optuna study '{study_name}': {describe(search)}.\n"
        f"# {len(entries)} non-dominated feasible trial(s), best {first} first. Pick the trade-off you want\n"
        "# and `include:` its snippet in a ladder or zoo study (e.g. include: [<snippet>]); the snippet\n"
        "# holds the entry's overrides, trick_params and searched crop.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump({"pareto": listing}, sort_keys=False))
    return path, written
