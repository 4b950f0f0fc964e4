"""Tracking URIs: which store a URI names, resolved so workers in other directories find it, and
checked at the command line so a wrong one fails in seconds instead of deep inside MLflow."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ablate.errors import AblateError

DEFAULT_DB = "mlruns.db"
# The stores MLflow 3 opens from a URI; a database URL may name its driver (postgresql+psycopg2).
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
ACCEPTED_SCHEMES = (*DATABASE_SCHEMES, "file", "http", "https", "databricks")
PROBE_TIMEOUT_S = 5.0
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_FORMS = "sqlite:///path.db, postgresql://, mysql://, mssql://, file:///folder, http(s)://host:port or databricks"


def scheme_of(uri: str) -> str | None:
    """`postgresql` for `postgresql+psycopg2://...`; None for a plain path (a file store)."""
    if uri == "databricks":
        return uri
    match = _SCHEME.match(uri)
    if match is None or len(match.group(1)) == 1:  # a Windows drive letter is a path
        return None
    return match.group(1).split("+")[0].lower()


def _url(uri: str) -> Any:
    from sqlalchemy.engine import make_url

    return make_url(uri)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, None for any other store (and in-memory sqlite)."""
    if scheme_of(uri) != "sqlite":
        return None
    try:
        url = _url(uri)
    except Exception:  # unparsable: `check_tracking_uri` says why
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def resolve_tracking_uri(cli_value: str | None = None, cwd: Path | None = None) -> str:
    """`--tracking-uri`, else `MLFLOW_TRACKING_URI`, else `sqlite:///mlruns.db` in the cwd.

    sqlite and file URIs are made absolute: workers may run in another directory.
    """
    uri = cli_value or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"
    base = cwd or Path.cwd()
    db = sqlite_path(uri)
    if db is not None:
        if db.is_absolute():
            return uri
        return _url(uri).set(database=str((base / db).resolve())).render_as_string(hide_password=False)
    if scheme_of(uri) is None:
        return (base / uri).resolve().as_uri()
    return uri


def checked_tracking_uri(cli_value: str | None = None, credentials: Path | None = None) -> str:
    """`resolve_tracking_uri`, then `check_tracking_uri` naming where the URI came from: what
    every command that takes `--tracking-uri` does before it reads or writes anything. The
    account (`credentials`, a file, else the environment) is set for this process and its workers
    first, so a server that asks for one is checked with it."""
    from ablate.tracking.credentials import use_credentials

    use_credentials(credentials)
    uri = resolve_tracking_uri(cli_value)
    from_env = cli_value is None and bool(os.environ.get("MLFLOW_TRACKING_URI"))
    check_tracking_uri(uri, "MLFLOW_TRACKING_URI" if from_env else "--tracking-uri")
    return uri


def check_tracking_uri(uri: str, option: str = "--tracking-uri", timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Refuse a URI MLflow cannot open, before anything is created: an unknown scheme, an
    unparsable database URL, a missing database driver, a file store MLflow 3 refuses, an
    MLflow server that does not answer within `timeout_s`, or one that refuses this account."""
    scheme = scheme_of(uri) or "file"
    if scheme not in ACCEPTED_SCHEMES:
        raise AblateError(f"{option}: unknown scheme '{scheme}' in '{uri}'; use {_FORMS}")
    if scheme in DATABASE_SCHEMES:
        check_database_url(uri, option, scheme)
    elif scheme == "file":
        _check_file_store(option)
    elif scheme in ("http", "https"):
        from ablate.tracking.credentials import check_access, refuse_credentials_in_uri

        refuse_credentials_in_uri(uri, option)
        _probe_server(uri, option, timeout_s)
        check_access(uri, option, timeout_s)


def check_database_url(url: str, option: str, backend: str | None = None) -> None:
    """A SQLAlchemy URL that parses, has its driver installed and, for sqlite, names a file."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = _url(url)
    except (ArgumentError, ValueError) as exc:
        raise AblateError(
            f"{option}: cannot parse '{url}' as a database URL ({exc}); "
            "write e.g. sqlite:///relative.db or sqlite:////absolute/path.db"
        ) from None
    backend = backend or parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise AblateError(
                f"{option}: '{url}' is an in-memory sqlite database, which other processes cannot "
                "see; name a file: sqlite:///relative.db or sqlite:////absolute/path.db"
            )
        if Path(parsed.database).is_dir():
            raise AblateError(f"{option}: '{parsed.database}' is a folder; name a database file in it")
        return
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise AblateError(
            f"{option}: SQLAlchemy has no driver '{parsed.drivername}' (in '{url}'); "
            f"use {backend}:// with its default driver or a driver SQLAlchemy knows"
        ) from None
    except ImportError as exc:
        raise AblateError(
            f"{option}: the {backend} driver for '{url}' is not installed ({exc}); "
            "install it into this environment or use a sqlite:/// URL"
        ) from None


def _check_file_store(option: str) -> None:
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1"):
        return
    raise AblateError(
        f"{option}: MLflow 3 no longer opens file stores (a folder or file:// URI); use a "
        "database such as sqlite:///mlruns.db, or set MLFLOW_ALLOW_FILE_STORE=true to keep one"
    )


def _probe_server(uri: str, option: str, timeout_s: float) -> None:
    """GET <uri>/health: any HTTP answer means a server is there (MLflow says more if it is the
    wrong one); no answer within the timeout is the hang this check exists to prevent."""
    import http.client
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        raise AblateError(f"{option}: '{uri}' has no valid port; write {parts.scheme}://host:port") from None
    if not parts.hostname:
        raise AblateError(f"{option}: '{uri}' names no host; write {parts.scheme}://host:port")
    health = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(health, timeout=timeout_s):
            return
    except (http.client.InvalidURL, ValueError) as exc:
        raise AblateError(f"{option}: '{uri}' is not a valid URL ({exc})") from None
    except (urllib.error.HTTPError, http.client.HTTPException):  # something answered, if not with 200
        return
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, ssl.SSLError):  # it answered; MLflow's own TLS settings decide the rest
            return
        where = f"{parts.hostname}:{port}" if port else parts.hostname
        raise AblateError(
            f"{option}: no MLflow server answers at {uri} ({reason}; waited up to {timeout_s:g} s); start it "
            f"(`mlflow server --backend-store-uri sqlite:///mlruns.db --host {parts.hostname}"
            f"{f' --port {port}' if port else ''}`), check {where} is reachable, or use a sqlite:/// URI"
        ) from None
