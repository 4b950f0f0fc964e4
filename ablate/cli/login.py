"""`--credentials`: the account every command that talks to a tracking server may name as a file."""

from __future__ import annotations

from typing import Any

import typer


def credentials_option() -> Any:
    return typer.Option(
        None,
        "--credentials",
        help="Credentials file for a tracking server that asks for a password (the one `ablate server` prints; "
        "default: $MLFLOW_TRACKING_USERNAME/$MLFLOW_TRACKING_PASSWORD, else the file $ABLATE_CREDENTIALS names).",
    )
