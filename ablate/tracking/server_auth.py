"""Who may use an `ablate server`: MLflow's basic-auth app, with an admin account ablate sets up.

A server other machines reach holds every result and the checkpoints dependent trials download,
so it asks for a user name and password unless `--insecure` says otherwise. MLflow's app reads its
settings from the file `MLFLOW_AUTH_CONFIG_PATH` names; ablate writes that file beside the store,
with an auth database of its own there, and makes sure the admin account exists with the password
it was given before the server starts: MLflow itself only creates the admin once and would keep an
old password after a restart with a new one.

The admin password comes from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD where the server
starts (what MLflow's clients read too), else from a 0600 credentials file beside the store, made
with a random password on the first start. The password is never printed, nor written to the
config file: the auth database keeps only its salted hash.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ablate.errors import AblateError
from ablate.tracking.credentials import (
    PASSWORD_ENV,
    USERNAME_ENV,
    Credentials,
    private,
    read_credentials_file,
    write_credentials_file,
)

AUTH_DB = "mlflow-auth.db"
AUTH_CONFIG = "mlflow-auth.ini"
CREDENTIALS_FILE = "mlflow-credentials"
DEFAULT_ADMIN = "admin"
MIN_PASSWORD = 12  # MLflow's basic-auth refuses a shorter one
_APP = "basic-auth"
_SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # CSRF of the app's own forms; any stable value per start


def loopback_only(host: str) -> bool:
    """Whether only this machine can reach a server listening on `host`."""
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def needs_auth(host: str, auth: bool = False, insecure: bool = False) -> bool:
    """On whenever other machines can reach `host`, and with `--auth` on loopback too; `--insecure` opts out."""
    if auth and insecure:
        raise AblateError("--auth and --insecure contradict each other; pass one of them")
    if insecure:
        return False
    return auth or not loopback_only(host)


def insecure_warning(host: str, uri: str) -> str | None:
    """What `--insecure` gives away, for a server other machines reach (None on loopback: nothing)."""
    if loopback_only(host):
        return None
    return (
        f"warning: --insecure: anyone who reaches {uri} can read, change and delete every run, and replace "
        "the checkpoints that dependent trials download; drop --insecure to require a password"
    )


def _env_credentials() -> Credentials | None:
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if not password:
        if username:
            raise AblateError(
                f"{USERNAME_ENV} is set without {PASSWORD_ENV}; set both for the server's admin account, "
                "or neither to have one made"
            )
        return None
    if len(password) < MIN_PASSWORD:
        raise AblateError(
            f"{PASSWORD_ENV}: MLflow's authentication needs a password of at least {MIN_PASSWORD} characters"
        )
    return Credentials(username or DEFAULT_ADMIN, password)


@dataclass(frozen=True)
class ServerAuth:
    """The admin account and the files of an authenticated server, all in `folder` (beside the store)."""

    folder: Path
    from_environment: Credentials | None = None

    @property
    def credentials_file(self) -> Path | None:
        """Where clients find the account (None: it came from the environment)."""
        return None if self.from_environment else self.folder / CREDENTIALS_FILE

    @property
    def username(self) -> str:
        return self.from_environment.username if self.from_environment else DEFAULT_ADMIN

    @property
    def config_path(self) -> Path:
        return self.folder / AUTH_CONFIG

    @property
    def database_uri(self) -> str:
        return f"sqlite:///{self.folder / AUTH_DB}"

    def credentials(self) -> Credentials:
        """The environment's account, else the file's, made with a random password if there is none."""
        if self.from_environment:
            return self.from_environment
        path = self.folder / CREDENTIALS_FILE
        if not path.exists():
            write_credentials_file(path, Credentials(DEFAULT_ADMIN, secrets.token_urlsafe(24)))
        elif not private(path):
            raise AblateError(
                f"{path}: others may read this credentials file; `chmod 600` it, or delete it to have a new "
                "password made"
            )
        return read_credentials_file(path, str(path))

    def prepare(self) -> None:
        """The auth config and database, with the admin account as given: created, or its password
        replaced when the one given differs from the one stored (a restart with a new password)."""
        account = self.credentials()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_config(account.username)
        self._sync_admin(account)

    def _write_config(self, username: str) -> None:
        text = (
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {self.database_uri}\n"
            f"admin_username = {username}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        fresh = self.config_path.with_name(f".{AUTH_CONFIG}.{os.getpid()}")
        fresh.write_text(text)
        fresh.replace(self.config_path)

    def _sync_admin(self, account: Credentials) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore()
        store.init_db(self.database_uri)
        try:
            if not store.has_user(account.username):
                store.create_user(account.username, account.password, is_admin=True)
            elif not store.authenticate_user(account.username, account.password):
                store.update_user(account.username, password=account.password, is_admin=True)
            elif not store.get_user(account.username).is_admin:
                store.update_user(account.username, is_admin=True)
        except MlflowException as exc:
            raise AblateError(f"the admin account '{account.username}' cannot be set up: {exc.message}") from None
        finally:
            store.engine.dispose()
        os.chmod(self.folder / AUTH_DB, 0o600)

    def command_options(self) -> list[str]:
        return ["--app-name", _APP]

    def environment(self) -> dict[str, str]:
        """What the server is started with: ablate's config file, the admin's name (over any
        MLFLOW_AUTH_ADMIN_USERNAME set here), and a CSRF key for the app's forms."""
        return {
            "MLFLOW_AUTH_CONFIG_PATH": str(self.config_path),
            "MLFLOW_AUTH_ADMIN_USERNAME": self.username,
            _SECRET_KEY_ENV: os.environ.get(_SECRET_KEY_ENV) or secrets.token_hex(32),
        }


def server_auth(folder: Path) -> ServerAuth:
    """The account settings, checked (a short or half-set password is refused); nothing written yet."""
    return ServerAuth(folder.resolve(), _env_credentials())
