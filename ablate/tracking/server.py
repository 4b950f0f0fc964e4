"""`ablate server`: one MLflow tracking server that every machine of a cluster writes to.

Machines cannot share a sqlite file, and a trial on one machine cannot read another's disk, so
a study that spans machines needs a server: it owns the store (sqlite by default, or any
SQLAlchemy URL such as PostgreSQL) and serves the artifacts, checkpoints included, over HTTP.
This module builds the real `mlflow server` command, starts it in a process group of its own,
waits for `/health`, and stops the whole group when asked (Ctrl-C, SIGTERM) within a few seconds;
a watchdog (`watchdog.py`) stops it when `ablate server` dies without a chance to.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ablate.errors import AblateError
from ablate.tracking.credentials import CREDENTIAL_ENV
from ablate.tracking.server_auth import ServerAuth, needs_auth, server_auth
from ablate.tracking.uri import (
    DATABASE_SCHEMES,
    DEFAULT_DB,
    check_database_url,
    resolve_tracking_uri,
    scheme_of,
    sqlite_path,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
READY_TIMEOUT_S = 180.0
# SIGTERM reaches mlflow server, uvicorn and its workers at once; idle, they are down in 1-2 s,
# and what is still there after this is killed, so Ctrl-C returns the prompt within 5 s.
STOP_GRACE_S = 2.0
ARTIFACTS_DIR = "mlartifacts"  # beside a sqlite store, as `ablate.tracking.store.artifact_root` puts them
# GenAI job execution starts a second process tree (a job queue and its runner) ablate never uses.
_QUIET_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
_SERVER_OPTION = "--backend-store-uri"
_ANY_INTERFACE = ("0.0.0.0", "::", "")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ServerSpec:
    """What `mlflow server` is started with, and the URI trials pass as `--tracking-uri`."""

    backend_store_uri: str
    artifacts_destination: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int | None = None
    allowed_hosts: str | None = None
    access_log: bool = False
    advertised: str = field(default="", compare=False)  # the host other machines use (0.0.0.0 -> an address)
    auth: ServerAuth | None = None  # None: MLflow's plain server, open to whoever reaches it

    @property
    def uri(self) -> str:
        """`http://host:port`: what to pass to `ablate run --tracking-uri` on any machine."""
        return f"http://{_bracketed(self.advertised or self.host)}:{self.port}"

    @property
    def local_uri(self) -> str:
        """Where this machine reaches it: the loopback address when it listens on every interface."""
        host = ("::1" if ":" in self.host else "127.0.0.1") if self.host in _ANY_INTERFACE else self.host
        return f"http://{_bracketed(host)}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            self.artifacts_destination,
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        if self.allowed_hosts:
            cmd += ["--allowed-hosts", self.allowed_hosts]
        if not self.access_log:  # one line per logged metric batch would bury everything else
            cmd += ["--uvicorn-opts", "--no-access-log"]
        if self.auth is not None:
            cmd += self.auth.command_options()
        return cmd

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in _QUIET_ENV.items():
            env.setdefault(key, value)
        env.pop("MLFLOW_TRACKING_URI", None)  # the server's store is --backend-store-uri alone
        for key in (*CREDENTIAL_ENV, "MLFLOW_AUTH_ADMIN_PASSWORD"):  # a client's; the admin is set up beforehand
            env.pop(key, None)
        if self.auth is not None:
            env.update(self.auth.environment())
        return env


def _backend(uri: str | None) -> str:
    """A database URL MLflow's server can own; a relative sqlite file is made absolute."""
    value = uri or f"sqlite:///{DEFAULT_DB}"
    scheme = scheme_of(value)
    if scheme not in DATABASE_SCHEMES:
        raise AblateError(
            f"{_SERVER_OPTION}: '{value}' is not a database URL; use sqlite:///mlruns.db or a "
            "SQLAlchemy URL such as postgresql://user@host/db"
        )
    check_database_url(value, _SERVER_OPTION, scheme)
    return resolve_tracking_uri(value)


def _beside_store(backend: str) -> Path:
    """The sqlite file's folder, else the working directory."""
    db = sqlite_path(backend)
    return (db.parent if db is not None else Path.cwd()).resolve()


def _artifacts(destination: str | None, backend: str) -> str:
    """Beside the sqlite file by default (so runs logged straight to that file and through the
    server keep their artifacts in one folder), else in the working directory."""
    if destination and scheme_of(destination) not in (None, "file"):
        return destination  # s3://, gs://, ...: MLflow's artifact repositories take it as it is
    if destination:
        path = Path(destination.removeprefix("file://")).expanduser()
    else:
        db = sqlite_path(backend)
        path = (db.parent if db is not None else Path.cwd()) / ARTIFACTS_DIR
    return str(path.resolve())


def _check_port(host: str, port: int) -> None:
    """Refuse a host this machine has no interface for, or a port something already listens on,
    in a second instead of after the server's own start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except socket.gaierror:
            raise AblateError(
                f"--host: cannot resolve '{host}'; give an address of this machine "
                "(127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
            ) from None
        except OSError as exc:
            if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
                raise AblateError(f"--port: {port} is already in use on {host}; choose another --port") from None
            raise AblateError(
                f"--host: cannot listen on {host}:{port} ({exc.strerror or exc}); give an address "
                "of this machine (127.0.0.1, 0.0.0.0 or one of its interfaces)"
            ) from None


def server_spec(
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int | None = None,
    allowed_hosts: str | None = None,
    access_log: bool = False,
    auth: bool = False,
    insecure: bool = False,
) -> ServerSpec:
    """The checked server settings; raises AblateError naming the option that is wrong. It asks for
    a password whenever other machines reach `host` (and with `auth` on loopback) unless `insecure`."""
    from ablate.tracking.node import host_address

    backend = _backend(backend_store_uri)
    login = server_auth(_beside_store(backend)) if needs_auth(host, auth, insecure) else None
    _check_port(host, port)
    advertised = host_address() if host in _ANY_INTERFACE else host
    artifacts = _artifacts(artifacts_destination, backend)
    return ServerSpec(backend, artifacts, host, port, workers, allowed_hosts, access_log, advertised, login)


def prepare_backend(uri: str) -> None:
    """Create the store (and switch sqlite to WAL) before the server's workers open it."""
    from ablate.tracking.store import RunStore

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    RunStore.open(uri).prepare()


def healthy(uri: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout_s) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class TrackingServer:
    """A running `mlflow server`; `stop` ends its whole process group, whatever it spawned, and a
    watchdog ends it if this process dies first."""

    def __init__(self, spec: ServerSpec, output: IO[bytes] | None = None) -> None:
        self.spec = spec
        self.output = output  # None: the server writes to this process's stderr
        self.process: subprocess.Popen | None = None
        self.watchdog: subprocess.Popen | None = None
        self._stopped = False

    def _start_watchdog(self, grace_s: float = STOP_GRACE_S) -> None:
        """Started after the server, so the server does not inherit the pipe's write end (it would
        keep the pipe open after this process died)."""
        assert self.process is not None
        script = Path(__file__).with_name("watchdog.py")
        self.watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script), str(self.process.pid), str(grace_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # a Ctrl-C or kill of this group spares it

    def _release_watchdog(self) -> None:
        """Tell the watchdog the server is stopped (one byte), and let it exit."""
        if self.watchdog is None:
            return
        watchdog, self.watchdog = self.watchdog, None
        try:
            assert watchdog.stdin is not None
            watchdog.stdin.write(b"stopped")
            watchdog.stdin.close()
        except OSError:  # it is gone already
            pass
        try:
            watchdog.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - it exits on the pipe's end
            watchdog.kill()
            watchdog.wait()

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> TrackingServer:
        prepare_backend(self.spec.backend_store_uri)
        if self.spec.auth is not None:
            self.spec.auth.prepare()
        if scheme_of(self.spec.artifacts_destination) is None:
            Path(self.spec.artifacts_destination).mkdir(parents=True, exist_ok=True)
        # its output goes to stderr (or `output`): stdout carries only the URI, for scripts to read
        self.process = subprocess.Popen(
            self.spec.command(),
            env=self.spec.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self.output if self.output is not None else 2,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._start_watchdog()
        deadline = time.monotonic() + timeout_s
        while not healthy(self.spec.local_uri):
            code = self.process.poll()
            if code is not None:
                raise AblateError(
                    f"mlflow server exited with code {code} before answering at {self.spec.local_uri} "
                    "(its output says why)"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AblateError(
                    f"mlflow server did not answer at {self.spec.local_uri}/health within "
                    f"{timeout_s:g} s; it was stopped"
                )
            time.sleep(0.25)
        return self

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def _signal_group(self, sig: int) -> bool:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """SIGTERM to the whole group at once (mlflow server, the uvicorn supervisor and its
        workers each shut down gracefully on it), SIGKILL to whatever is left after `grace_s`.
        Not a signal to `mlflow server` alone: that relies on it, then on uvicorn, passing the
        signal down, and reaches no worker whose supervisor died. A second Ctrl-C while waiting
        goes straight to SIGKILL."""
        if self.process is None:
            return 0
        if self._stopped:  # its group id may belong to someone else by now
            return self.process.returncode
        try:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                self.process.poll()  # reaped, so it no longer counts as a member of its group
                if not self._signal_group(0):
                    break
                time.sleep(0.05)
        finally:
            self._signal_group(signal.SIGKILL)
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
                code = -9
            self._stopped = True
            self._release_watchdog()
        return code


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(spec: ServerSpec, announce: Callable[[ServerSpec], None]) -> int:
    """Run the server until Ctrl-C or SIGTERM (exit code 0 once it has stopped) or until it exits
    by itself (its exit code, at least 1). SIGINT is handled even when the shell that started
    this process ignores it (`ablate server &` in a script): Ctrl-C is how this command stops."""
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    server = TrackingServer(spec)
    try:
        server.start()
        announce(spec)
        return server.wait() or 1
    except KeyboardInterrupt:
        return 0  # stopped below
    finally:
        if server.process is not None:  # whatever happened: nothing it started outlives this
            try:
                server.stop()
            except KeyboardInterrupt:  # a second Ctrl-C while stopping: stop killed what was left
                pass
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def is_shared_store(uri: str) -> bool:
    """Whether every machine of a cluster can write to this store: a server or a database server,
    not a sqlite file or a folder on one machine's disk."""
    return scheme_of(uri) not in (None, "file", "sqlite")


def check_shared_store(uri: str, nodes: int, option: str = "--tracking-uri") -> None:
    """Refuse a store on one machine's disk when trials run on several machines."""
    if nodes > 1 and not is_shared_store(uri):
        raise AblateError(
            f"{option}: the Ray cluster has {nodes} nodes, and '{uri}' is a store on this machine's disk that "
            "trials on the other nodes cannot write to; start `ablate server --host <this machine's address>` "
            "and pass the http:// URI it prints as --tracking-uri"
        )
