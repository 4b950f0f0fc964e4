"""Where an Optuna search lives: an RDB storage URL, by default a sqlite file beside the MLflow
store, checked before the search starts so a typo fails at once instead of inside Optuna."""

from __future__ import annotations

from pathlib import Path

from ablate.errors import AblateError
from ablate.tracking.uri import check_database_url, scheme_of, sqlite_path

# The SQLAlchemy dialects Optuna's RDBStorage supports.
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")


def default_storage(tracking_uri: str, cwd: Path | None = None) -> str:
    """An Optuna sqlite file beside the MLflow sqlite store (or in the working directory)."""
    db = sqlite_path(tracking_uri)
    folder = db.parent if db is not None else (cwd or Path.cwd())
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def check_storage_url(url: str, option: str = "--storage") -> None:
    """Refuse a storage URL Optuna cannot open: unparsable, an unsupported dialect, a driver
    that is not installed, or an in-memory sqlite database that the trials' processes cannot share."""
    scheme = scheme_of(url)
    if scheme not in STORAGE_SCHEMES:
        shown = f"unsupported scheme '{scheme}'" if scheme else "no scheme"
        raise AblateError(
            f"{option}: {shown} in '{url}'; Optuna storages are {', '.join(STORAGE_SCHEMES)} URLs, "
            "e.g. sqlite:///optuna.db or postgresql://user@host/optuna"
        )
    check_database_url(url, option, scheme)
