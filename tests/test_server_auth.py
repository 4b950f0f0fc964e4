"""An `ablate server` that asks for a password: refused without one or with a wrong one (HTTP 401), the smoke
study runs with the right one, and the password lands nowhere: not in the runs folder, the store, its artifacts
or any log. A client with a wrong password is turned away before any trial starts (exit 2, one line). A server
other machines reach always asks, unless --insecure, which warns."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from ablate.cli import main
from ablate.errors import AblateError
from ablate.tracking import server as server_module
from ablate.tracking.credentials import Credentials, read_credentials_file
from ablate.tracking.server import server_spec
from ablate.tracking.server_auth import CREDENTIALS_FILE, ServerAuth, insecure_warning, needs_auth
from tests.conftest import B0_CONFIG, REPO
from tests.test_server import STARTUP_S, _first_line, _free_port, _kill_sessions, _tree_sessions

LOGIN_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "ABLATE_CREDENTIALS")
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LOGIN_ENV and k != "MLFLOW_TRACKING_URI"}
    return {**env, **extra}


@pytest.fixture(autouse=True)
def _no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in LOGIN_ENV:
        monkeypatch.delenv(key, raising=False)


def _status(uri: str, login: tuple[str, str] | None) -> int:
    request = urllib.request.Request(uri + SEARCH)
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


# -- who has to log in ----------------------------------------------------------------------------
def test_a_server_other_machines_reach_asks_for_a_password_unless_insecure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert not needs_auth("127.0.0.1") and not needs_auth("localhost") and not needs_auth("::1")
    assert needs_auth("127.0.0.1", auth=True)
    for host in ("0.0.0.0", "10.0.0.5", "::"):
        assert needs_auth(host) and not needs_auth(host, insecure=True)
    with pytest.raises(AblateError, match="--auth and --insecure"):
        needs_auth("10.0.0.5", auth=True, insecure=True)
    assert insecure_warning("127.0.0.1", "http://127.0.0.1:5000") is None

    db = f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"
    port = _free_port()
    assert server_spec(db, host="0.0.0.0", port=port).auth is not None
    assert server_spec(db, host="0.0.0.0", port=port, insecure=True).auth is None
    assert not (tmp_path / "store").exists()  # decided, nothing written yet

    started = []
    monkeypatch.setattr(server_module, "serve", lambda spec, announce: started.append(spec) or 0)
    with pytest.raises(SystemExit) as done:
        main(["server", "--host", "0.0.0.0", "--port", str(port), "--insecure", "--backend-store-uri", db])
    assert done.value.code == 0 and started[0].auth is None
    err = capsys.readouterr().err
    assert "warning: --insecure: anyone who reaches" in err and "replace the checkpoints" in err


def test_the_admin_password_follows_the_environment_across_restarts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    def admin_accepts(auth: ServerAuth, password: str) -> bool:
        store = SqlAlchemyStore()
        store.init_db(auth.database_uri)
        try:
            return store.authenticate_user("admin", password)
        finally:
            store.engine.dispose()

    store = tmp_path / "store"
    first = ServerAuth(store)  # no password in the environment: one is made, kept 0600 beside the store
    first.prepare()
    made = read_credentials_file(store / CREDENTIALS_FILE)
    assert stat.S_IMODE((store / CREDENTIALS_FILE).stat().st_mode) == 0o600
    assert admin_accepts(first, made.password) and len(made.password) >= 24
    config = (store / "mlflow-auth.ini").read_text()
    assert made.password not in config and "password1234" not in config and "admin_username = admin" in config
    ServerAuth(store).prepare()  # a second start keeps the file's password
    assert read_credentials_file(store / CREDENTIALS_FILE) == made

    changed = ServerAuth(store, Credentials("admin", "a-new-password-from-env"))  # a restart with another one
    changed.prepare()
    assert admin_accepts(changed, "a-new-password-from-env") and not admin_accepts(changed, made.password)

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "short")
    with pytest.raises(AblateError, match="MLFLOW_TRACKING_PASSWORD: .*at least 12"):
        server_spec(f"sqlite:///{store / 'mlruns.db'}", host="0.0.0.0", port=_free_port())
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "lab")
    with pytest.raises(AblateError, match="MLFLOW_TRACKING_USERNAME is set without MLFLOW_TRACKING_PASSWORD"):
        server_spec(f"sqlite:///{store / 'mlruns.db'}", auth=True, port=_free_port())
    (store / CREDENTIALS_FILE).chmod(0o644)
    with pytest.raises(AblateError, match="others may read this credentials file"):
        ServerAuth(store).prepare()


def test_a_password_in_the_uri_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["plan", str(REPO / "studies" / "smoke.yaml"), "--tracking-uri", "http://admin:secret-in-uri@127.0.0.1:9"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--tracking-uri:" in err and "secret-in-uri" not in err


# -- a real authenticated server ------------------------------------------------------------------
@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """`ablate server --auth` on loopback, no password in its environment: (URI, store dir, its log)."""
    root = tmp_path_factory.mktemp("auth-server")
    store, log = root / "store", root / "server.log"
    cmd = [sys.executable, "-m", "ablate", "server", "--auth", "--port", str(_free_port()), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{store / 'mlruns.db'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("wb"), env=_clean_env(),
                            start_new_session=True)
    sessions: set[int] = set()
    try:
        uri = _first_line(proc, STARTUP_S)
        sessions = _tree_sessions(proc.pid)
        yield uri, store, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        _kill_sessions(proc, sessions)


def _smoke_study(path: Path, data_root: Path) -> Path:
    """studies/smoke.yaml (its two trials) on the tiny synthetic set at a test's budget."""
    doc = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    doc["base"] = str(B0_CONFIG)
    doc["data"] = {"root": str(data_root), "image_scale": [192, 64]}
    doc["budget"] = {"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1,
                     "workers": 0}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_wrong_or_missing_password_is_refused_before_anything_starts(
        auth_server: tuple[str, Path, Path], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    uri, store, _ = auth_server
    made = read_credentials_file(store / CREDENTIALS_FILE)
    assert _status(uri, None) == 401
    assert _status(uri, (made.username, "not-the-password")) == 401
    assert _status(uri, (made.username, made.password)) == 200

    study = _smoke_study(tmp_path / "smoke.yaml", tiny_data)
    runs = tmp_path / "runs"

    def ablate(*args: str) -> tuple[int, list[str]]:
        with pytest.raises(SystemExit) as done:
            main([*args, "--tracking-uri", uri])
        lines = capsys.readouterr().err.splitlines()
        return int(done.value.code), [line for line in lines if line.startswith("error:")]

    code, errors = ablate("run", str(study), "--runs-dir", str(runs))  # nothing set
    assert code == 2 and len(errors) == 1
    assert "--tracking-uri:" in errors[0] and "none is set" in errors[0] and "MLFLOW_TRACKING_PASSWORD" in errors[0]

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", made.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    for command in (("run", str(study), "--runs-dir", str(runs)), ("report", "--out", str(tmp_path / "report"))):
        code, errors = ablate(*command)
        assert code == 2 and len(errors) == 1, errors
        assert "--tracking-uri:" in errors[0] and "refused the user name and password (HTTP 401)" in errors[0]
        assert "not-the-password" not in errors[0]
    assert not (runs / "smoke").exists()  # no trial started
    assert not (tmp_path / "report").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    from mlflow import MlflowClient

    assert [e.name for e in MlflowClient(f"sqlite:///{store / 'mlruns.db'}").search_experiments()] == ["Default"]


def test_the_smoke_study_runs_with_the_password_and_records_it_nowhere(
        auth_server: tuple[str, Path, Path], tiny_data: Path, tmp_path: Path) -> None:
    uri, store, server_log = auth_server
    credentials = store / CREDENTIALS_FILE
    password = read_credentials_file(credentials).password
    said = server_log.read_text()
    assert f"credentials in {credentials}" in said and "--credentials" in said and password not in said

    study = _smoke_study(tmp_path / "smoke.yaml", tiny_data)
    runs = tmp_path / "runs"
    ran = subprocess.run([sys.executable, "-m", "ablate", "run", str(study), "--tracking-uri", uri, "--json",
                          "--runs-dir", str(runs), "--credentials", str(credentials)],
                         capture_output=True, text=True, timeout=600, env=_clean_env())
    assert ran.returncode == 0, ran.stderr[-4000:]
    trials = json.loads(ran.stdout)["trials"]
    assert [(t["name"], t["state"]) for t in trials] == [("sgd-default", "FINISHED"), ("sgd-lr0.05", "FINISHED")]
    assert list(store.glob("mlartifacts/**/artifacts/config.py")), "the trials' artifacts went to the server"

    secret = password.encode()
    searched = [p for folder in (runs, store) for p in folder.rglob("*") if p.is_file() and p != credentials]
    searched.append(server_log)
    assert len(searched) > 10
    leaks = [str(p) for p in searched if secret in p.read_bytes()]
    assert leaks == [] and password not in ran.stdout + ran.stderr
