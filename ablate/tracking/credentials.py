"""Credentials for an MLflow server that asks who is there (`ablate server` on other machines' reach).

They travel in the environment only: MLflow's client reads `MLFLOW_TRACKING_USERNAME` and
`MLFLOW_TRACKING_PASSWORD`, Ray workers get them through the job's runtime environment and batch
jobs through the environment they are submitted with. Nothing ablate records (params, tags, a
trial's config.py, logs, artifacts, the Optuna storage, a report) is built from the environment,
so a password stays out of all of them. A credentials file is MLflow's own `~/.mlflow/credentials`
format, written 0600; `--credentials FILE` or `ABLATE_CREDENTIALS` names one.

Every command checks them with one authenticated request before anything starts: a wrong
password is an answer in milliseconds, not a failure in the middle of a study.
"""

from __future__ import annotations

import configparser
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ablate.errors import AblateError

USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
TOKEN_ENV = "MLFLOW_TRACKING_TOKEN"
FILE_ENV = "ABLATE_CREDENTIALS"
CREDENTIAL_ENV = (USERNAME_ENV, PASSWORD_ENV, TOKEN_ENV)
_SECTION = "mlflow"
CHECK_TIMEOUT_S = 5.0
# an endpoint every account may read, and the basic-auth app guards like any other
_CHECK_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


@dataclass(frozen=True)
class Credentials:
    """A user name and password; the password never shows in a repr, a log line or a traceback."""

    username: str
    password: str = field(repr=False)


def read_credentials_file(path: Path, option: str = "--credentials") -> Credentials:
    """The account in a credentials file (`[mlflow]` with mlflow_tracking_username/_password)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except OSError as exc:
        raise AblateError(f"{option}: cannot read {path} ({exc.strerror or exc})") from None
    except configparser.Error:
        pass  # refused below, as any file without the two keys
    username = parser.get(_SECTION, USERNAME_ENV.lower(), fallback=None)
    password = parser.get(_SECTION, PASSWORD_ENV.lower(), fallback=None)
    if not username or not password:
        raise AblateError(
            f"{option}: {path} is not a credentials file; it needs a [{_SECTION}] section with "
            f"{USERNAME_ENV.lower()} and {PASSWORD_ENV.lower()} (as `ablate server` writes it)"
        )
    return Credentials(username, password)


def write_credentials_file(path: Path, credentials: Credentials) -> None:
    """Created 0600 from the start (never readable by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (
        f"[{_SECTION}]\n{USERNAME_ENV.lower()} = {credentials.username}\n"
        f"{PASSWORD_ENV.lower()} = {credentials.password}\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(body)


def private(path: Path) -> bool:
    """Whether only its owner may read it."""
    return not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def use_credentials(file: Path | None = None, option: str = "--credentials") -> Credentials | None:
    """The account this process uses from now on, set in its environment for MLflow's client and
    every worker or job it starts: `file` when given, else MLFLOW_TRACKING_USERNAME/PASSWORD as
    set, else the file ABLATE_CREDENTIALS names; None when there is none (MLflow may still find
    ~/.mlflow/credentials or a token)."""
    if file is None and not os.environ.get(PASSWORD_ENV) and os.environ.get(FILE_ENV):
        file, option = Path(os.environ[FILE_ENV]).expanduser(), FILE_ENV
    if file is not None:
        credentials = read_credentials_file(file, option)
        os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = credentials.username, credentials.password
        return credentials
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    return Credentials(username, password) if username and password else None


def credential_environment() -> dict[str, str]:
    """The credential variables set here, for processes that do not inherit this environment."""
    return {key: os.environ[key] for key in CREDENTIAL_ENV if os.environ.get(key)}


def refuse_credentials_in_uri(uri: str, option: str) -> None:
    """`http://user:password@host` would be recorded with every run that names its store."""
    parts = urlsplit(uri)
    if parts.username is not None or parts.password is not None:
        raise AblateError(
            f"{option}: '{parts.scheme}://{parts.hostname}...' carries a user name or password, which would be "
            f"recorded with every run; drop it from the URI and set {USERNAME_ENV} and {PASSWORD_ENV} "
            f"(or --credentials FILE) instead"
        )


def _refusal(uri: str, option: str, status: int, sent: bool) -> AblateError:
    if status == 403:
        return AblateError(
            f"{option}: the tracking server at {uri} refused the account {os.environ.get(USERNAME_ENV, '')!r} "
            "(HTTP 403, permission denied); use an account that may read and write experiments"
        )
    what = "refused the user name and password" if sent else "asks for a user name and password, and none is set"
    return AblateError(
        f"{option}: the tracking server at {uri} {what} (HTTP 401); set {USERNAME_ENV} and {PASSWORD_ENV}, "
        f"or pass --credentials FILE (or set {FILE_ENV}) with the file `ablate server` printed"
    )


def check_access(uri: str, option: str = "--tracking-uri", timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """One request with the credentials MLflow's client would send; a 401 or 403 is refused here,
    at once and without MLflow's retries. Anything else (an open server, one that answers oddly)
    is left to MLflow, after `check_tracking_uri` made sure something answers."""
    import base64
    import urllib.error
    import urllib.request

    from mlflow.utils.credentials import read_mlflow_creds

    found = read_mlflow_creds()  # the environment, else ~/.mlflow/credentials: what the client sends
    request = urllib.request.Request(uri.rstrip("/") + _CHECK_PATH)
    sent = False
    if os.environ.get(TOKEN_ENV):
        request.add_header("Authorization", f"Bearer {os.environ[TOKEN_ENV]}")
        sent = True
    elif found.username and found.password:
        pair = base64.b64encode(f"{found.username}:{found.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {pair}")
        sent = True
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise _refusal(uri, option, exc.code, sent) from None
    except (OSError, ValueError):  # `check_tracking_uri` reported what matters about the connection
        return
