"""The `ablate report` command: options in, one line per written file out.

Errors a user can fix surface as AblateError, which the application's `main` prints on one line
(exit 2); this function adds no handling of its own so the behaviour matches every other command.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer

from ablate.cli.login import credentials_option


def report_command(
    study_file: Path | None = typer.Argument(
        None, help="Study YAML: its name is the experiment; it adds the paper's reference numbers and the dataset."
    ),
    experiment: list[str] | None = typer.Option(
        None, "--experiment", "-e", help="MLflow experiment to report on (repeat for several); default: the study's."
    ),
    profile: str | None = typer.Option(None, "--profile", help="Study profile; only runs logged with it are reported."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Report folder (default: reports/<experiment>/); replaced whole. Its ablate.log holds what "
        "MLflow and other libraries logged below a warning while it was built.",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)."
    ),
    credentials: Path | None = credentials_option(),
    formats: str = typer.Option("png", "--format", help="Figure formats, comma-separated: png, svg, pdf."),
    data: Path | None = typer.Option(
        None, "--data", help="Dataset folder for the class distribution (default: the study's)."
    ),
) -> None:
    """Tables, figures and index.html of a study, computed from the MLflow store."""
    from ablate.report import build_report  # matplotlib and friends: only for this command
    from ablate.tracking.uri import checked_tracking_uri
    from ablate.util.logs import LOG_FILE, library_logs

    # the folder is written elsewhere and moved into place whole, so the log joins it once it is there
    with tempfile.TemporaryDirectory(prefix="ablate-report-") as scratch:
        log = Path(scratch) / LOG_FILE
        with library_logs(log, "ablate report"):
            # a bad or unreachable URI, or a refused password: exit 2 before anything is read
            uri = checked_tracking_uri(tracking_uri, credentials)
            written = build_report(
                experiment or (),
                study=study_file,
                profile=profile,
                out=out,
                tracking_uri=uri,
                formats=formats,
                data=data,
            )
        index = next((p for p in written if p.name == "index.html"), None)
        if index is not None and log.exists():
            shutil.move(log, index.parent / LOG_FILE)
    for path in written:
        typer.echo(str(path))
    if index is not None:
        typer.echo(f"report: {index} ({len(written)} files)", err=True)
