"""The `ablate report` command: options in, one line per written file out.

Errors a user can fix surface as AblateError, which the application's `main` prints on one line
(exit 2); this function adds no handling of its own so the behaviour matches every other command.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def report_command(
    study_file: Optional[Path] = typer.Argument(
        None, help="Study YAML: its name is the experiment; it adds the paper's reference numbers and the dataset."
    ),
    experiment: Optional[List[str]] = typer.Option(
        None, "--experiment", "-e", help="MLflow experiment to report on (repeat for several); default: the study's."
    ),
    profile: Optional[str] = typer.Option(None, "--profile", help="Study profile; only runs logged with it are reported."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default: reports/<experiment>/); replaced whole."),
    tracking_uri: Optional[str] = typer.Option(
        None, "--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)."
    ),
    formats: str = typer.Option("png", "--format", help="Figure formats, comma-separated: png, svg, pdf."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder for the class distribution (default: the study's)."),
) -> None:
    """Tables, figures and index.html of a study, computed from the MLflow store."""
    from ablate.report import build_report  # matplotlib and friends: only for this command
    from ablate.tracking.uri import checked_tracking_uri

    uri = checked_tracking_uri(tracking_uri)  # a bad or unreachable URI: exit 2 before anything is read
    written = build_report(
        experiment or (), study=study_file, profile=profile, out=out, tracking_uri=uri, formats=formats, data=data
    )
    index = next((p for p in written if p.name == "index.html"), None)
    for path in written:
        typer.echo(str(path))
    if index is not None:
        typer.echo(f"report: {index} ({len(written)} files)", err=True)
