"""Other libraries' log records go to a log file; only their warnings and errors reach the terminal.

MLflow, alembic, Ray, optuna and urllib3 report start-up chatter and routine steps at INFO
(`Creating initial MLflow database tables...`, `Started a local Ray instance.`, one optuna line
per trial), most through a stderr handler of their own that they attach to their top logger when
imported. Between the lines of a live table those bury what the command itself says, so for the
length of a command their records go to a file, and warnings, which a user may have to act on,
go to the file and the terminal. MLflow's artifact download progress bars (one per file: 88 for
the demo's report) are turned off.

The libraries are imported late (Ray only once its environment is set; the others when a command
first needs them), and a library that attaches its handler on import would put it back beside
these. So `library_logs` asks MLflow not to configure its loggers (`MLFLOW_CONFIGURE_LOGGING`),
imports the ones it is given, and `follow` applies the routing again right after a late import.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

LOG_FILE = "ablate.log"
# Top loggers and the lowest level kept in the file. SQLAlchemy stays at WARNING: at INFO its
# engine logs every statement.
LIBRARIES = {
    "mlflow": logging.INFO,
    "alembic": logging.INFO,
    "huey": logging.INFO,
    "sqlalchemy": logging.WARNING,
    "ray": logging.INFO,
    "optuna": logging.INFO,
    "urllib3": logging.INFO,
    "filelock": logging.INFO,
    "git": logging.INFO,
    "matplotlib": logging.INFO,
    "PIL": logging.INFO,
}
_ENVIRONMENT = {"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _OwnFormat(logging.Handler):
    """Keeps the format it was given: Ray's start restyles every handler of its logger, and these
    handlers serve every library's logger."""

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        if self.formatter is None:
            super().setFormatter(fmt)


class _Terminal(_OwnFormat, logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


class _LogFile(_OwnFormat, logging.FileHandler):
    """Opened on the first record, so a command refused for a bad option leaves no file behind;
    appended to, each command under a line naming it."""

    def __init__(self, path: Path, title: str) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.title = title
        self.setFormatter(logging.Formatter(_FORMAT))

    def _open(self) -> io.TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        stream = super()._open()
        stream.write(f"--- {self.title} ({time.strftime('%Y-%m-%d %H:%M:%S')}, pid {os.getpid()})\n")
        return stream


class _Routing:
    def __init__(self, path: Path, title: str) -> None:
        self.file = _LogFile(path, title)
        self.terminal = _Terminal()
        self.saved: dict[str, tuple[list[logging.Handler], int, bool]] = {}

    def apply(self) -> None:
        for name, level in LIBRARIES.items():
            logger = logging.getLogger(name)
            self.saved.setdefault(name, (list(logger.handlers), logger.level, logger.propagate))
            logger.handlers = [self.file, self.terminal]
            logger.setLevel(level)
            logger.propagate = False

    def restore(self) -> None:
        for name, (handlers, level, propagate) in self.saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        self.file.close()


_active: _Routing | None = None


@contextlib.contextmanager
def library_logs(path: Path, title: str, *imports: str) -> Iterator[Path]:
    """Route the libraries' records to `path` while the block runs; `imports`: modules that attach
    their own handler on import and are safe to import now (optuna, not Ray)."""
    global _active
    before = {key: os.environ.get(key) for key in _ENVIRONMENT}
    routing, previous = _Routing(path, title), _active
    try:
        for key, value in _ENVIRONMENT.items():
            os.environ.setdefault(key, value)  # a value the user set is theirs
        for module in imports:
            importlib.import_module(module)
        routing.apply()
        _active = routing
        yield path
    finally:
        _active = previous
        routing.restore()
        if previous is not None:
            previous.apply()
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def follow() -> None:
    """Apply the routing again after importing a library that attaches its own handler on import."""
    if _active is not None:
        _active.apply()
