"""The `ablate diff` command: two trial runs side by side, only what differs shown.

Errors a user can fix (unknown or ambiguous references, a bad URI or experiment) are
AblateErrors that the application's `main` prints on one line (exit 2).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ablate.cli.console import out
from ablate.cli.login import credentials_option


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _delta(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:+.6g}"


def _section(title: str, section: Any) -> Any:
    """A table of the differing keys, or one line saying there are none."""
    if section.note:
        return f"[bold]{title}[/bold]: {section.note}"
    rows = section.differing
    if not rows:
        return f"[bold]{title}[/bold]: identical ({section.identical} keys)"
    table = Table(title=f"{title}: {len(rows)} differ, {section.identical} identical", title_justify="left")
    for col in ("key", "A", "B"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row.key, _text(row.a), _text(row.b))
    return table


def render(diff: Any, console: Console) -> None:
    head = Table(title="trial runs", title_justify="left")
    for col in ("", "A", "B"):
        head.add_column(col)
    ids_a, ids_b = diff.to_dict()["a"], diff.to_dict()["b"]
    for key in ("name", "seed", "trial_id", "run_id", "experiment", "status"):
        head.add_row(key, _text(ids_a[key]), _text(ids_b[key]))
    console.print(head)
    for title, section in (("config", diff.config), ("dataset", diff.dataset), ("environment", diff.environment)):
        console.print(_section(title, section))
    metrics = Table(title="metrics (final values)", title_justify="left")
    for col in ("metric", "A", "B", "B - A"):
        metrics.add_column(col, justify="left" if col == "metric" else "right")
    for row in diff.metrics:
        metrics.add_row(row.key, _text(row.a), _text(row.b), _delta(row.delta))
    console.print(metrics)


def diff_command(
    run_a: str = typer.Argument(..., help="Trial id, trial name, run name (<name>-s<seed>) or MLflow run id."),
    run_b: str = typer.Argument(..., help="The run to compare it with (same forms)."),
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Look names up in this experiment only."),
    study_file: Path | None = typer.Option(None, "--study", help="Study YAML: look names up in its experiment."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)."
    ),
    credentials: Path | None = credentials_option(),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """What differs between two trial runs: resolved config, dataset, environment, and metrics."""
    from ablate.errors import AblateError
    from ablate.tracking import RunStore, store_exists
    from ablate.tracking.diff import compare
    from ablate.tracking.uri import checked_tracking_uri

    if experiment is not None and study_file is not None:
        raise AblateError("--experiment and --study both name the experiment; pass one of them")
    if study_file is not None:
        from ablate.study import load_study

        experiment = load_study(study_file).name
    uri = checked_tracking_uri(tracking_uri, credentials)
    # two small downloads (config.py): MLflow's progress bars would bury the table
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not store_exists(uri):
        raise AblateError(f"--tracking-uri {uri}: no MLflow store there yet; pass the store the study ran with")
    diff = compare(RunStore.open(uri), run_a, run_b, experiment)
    console = out
    if as_json:
        console.print_json(json.dumps(diff.to_dict(), default=str))
    else:
        render(diff, console)
