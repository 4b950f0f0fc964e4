"""The `ablate server` command: an MLflow tracking server for studies that span machines.

Bad options (a backend that is not a database, a port in use, a host this machine does not
have) are AblateErrors the application's `main` prints on one line (exit 2).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from ablate.cli.console import err, out


def server_command(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Interface to listen on: 127.0.0.1 (this machine only), "
        "an address of this machine, or 0.0.0.0 (every interface).",
    ),
    port: int = typer.Option(5000, "--port", min=1, max=65535),
    backend_store_uri: str | None = typer.Option(
        None,
        "--backend-store-uri",
        help="Where runs are stored: sqlite:///mlruns.db (default) or any SQLAlchemy "
        "URL, e.g. postgresql://user@host/db.",
    ),
    artifacts_destination: str | None = typer.Option(
        None,
        "--artifacts-destination",
        help="Where the server keeps artifacts (checkpoints included): a folder "
        "(default: mlartifacts/ beside the sqlite file, else in the working directory) or s3://, gs://, ...",
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Web server processes (MLflow's default: 4)."),
    allowed_hosts: str | None = typer.Option(
        None,
        "--allowed-hosts",
        help="Host headers the server accepts (MLflow's default: localhost and private "
        "addresses); e.g. mlflow.lab.example,203.0.113.7:5000.",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
    auth: bool = typer.Option(
        False, "--auth", help="Ask for a user name and password on loopback too (always on for any other --host)."
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="No password even where other machines reach the server: anyone may change runs."
    ),
) -> None:
    """Start an MLflow tracking server; pass the http:// URI it prints as --tracking-uri. Ctrl-C stops it.

    Reachable from other machines, it asks for a user name and password: the admin account from
    MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, else one made on the first start and kept in a
    0600 credentials file beside the store, which clients name with --credentials or ABLATE_CREDENTIALS."""
    from ablate.tracking.server import serve, server_spec
    from ablate.tracking.server_auth import insecure_warning, loopback_only

    spec = server_spec(
        backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts, access_log, auth, insecure
    )
    warning = insecure_warning(host, spec.uri) if insecure else None
    if warning:
        err.print(warning, markup=False, highlight=False)
    err.print(
        f"starting mlflow server: store {spec.backend_store_uri}, artifacts {spec.artifacts_destination}",
        markup=False,
        highlight=False,
    )

    def announce(ready: Any) -> None:
        out.print(ready.uri, markup=False, highlight=False)
        sys.stdout.flush()
        where = (
            "this machine only; --host <address> lets other machines in"
            if loopback_only(ready.host)
            else "every machine that reaches this address"
        )
        err.print(
            f"ready for {where}: ablate run STUDY --tracking-uri {ready.uri}   (Ctrl-C stops the server)",
            markup=False,
            highlight=False,
        )
        if ready.auth is not None:
            err.print(_login_hint(ready), markup=False, highlight=False)

    code = serve(spec, announce)
    if code:
        err.print(f"mlflow server exited with code {code}", markup=False, highlight=False)
        raise typer.Exit(code)
    err.print("mlflow server stopped", markup=False, highlight=False)


def _login_hint(spec: Any) -> str:
    """How clients log in, never the password itself (a terminal log is often shared)."""
    auth = spec.auth
    if auth.credentials_file is None:
        return (
            f"password required: admin account '{auth.username}' from MLFLOW_TRACKING_USERNAME / "
            "MLFLOW_TRACKING_PASSWORD; set the same two on every machine that runs ablate commands"
        )
    return (
        f"password required: admin account '{auth.username}', credentials in {auth.credentials_file} (mode 0600); "
        f"on every machine: ablate run STUDY --tracking-uri {spec.uri} --credentials {auth.credentials_file} "
        f"(or export ABLATE_CREDENTIALS={auth.credentials_file}, or copy the file to ~/.mlflow/credentials)"
    )
