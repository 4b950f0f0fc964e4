"""The run store is the one way into MLflow: no other package imports it, a trial's typed fields
become the same tags as ever at its boundary, and a server that cannot be used says so."""

from __future__ import annotations

import ast
import http.server
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from ablate import tracking
from ablate.tracking import RunStore, TrackingUnavailable
from ablate.tracking import tags as T
from ablate.tracking.checkpoints import fetch_runs_uri
from ablate.trial.spec import LaunchEstimate, TrialSpec

PACKAGE = Path(__file__).resolve().parents[1] / "ablate"


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_only_the_tracking_package_imports_mlflow() -> None:
    offenders = sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in PACKAGE.rglob("*.py") if PACKAGE / "tracking" not in path.parents
        for module in _imported_modules(path) if module == "mlflow" or module.startswith("mlflow.")
    )
    assert offenders == []


def test_the_tracking_package_imports_no_layer_above_it() -> None:
    above = ("ablate.trial", "ablate.study", "ablate.report", "ablate.search", "ablate.dispatch", "ablate.cli")
    offenders = sorted(
        f"{path.name} imports {module}" for path in (PACKAGE / "tracking").rglob("*.py")
        for module in _imported_modules(path) if module.startswith(above)
    )
    assert offenders == []


def _spec(tmp_path: Path, name: str = "base", **fields: object) -> TrialSpec:
    return TrialSpec(study="s", name=name, trial_id="t1", seed=0, base="b.py", config_text="", overrides={},
                     work_dir=tmp_path / "t1", data_root=tmp_path / "data", data_fingerprint="", iters=4,
                     batch_size=2, image_size=(64, 192), tags={T.SHAPE: "trials"}, **fields)  # type: ignore[arg-type]


def test_typed_trial_fields_are_written_as_the_same_tags(tmp_path: Path) -> None:
    store = RunStore.open(f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = store.ensure_experiment("s")
    spec = _spec(tmp_path, speed_key="abc123", pretrain="enc", provides=True, aliases=("other", "third"),
                 estimate=LaunchEstimate(12.34567, "rough"))
    run_id, resumed = store.open_trial_run(experiment, spec)
    tags = store.find_trial_runs(experiment, "t1")[0].tags
    assert not resumed and tags[T.TRIAL_ID] == "t1" and tags[T.SHAPE] == "trials"
    assert (tags[T.SPEED_KEY], tags[T.PRETRAIN], tags[T.PROVIDES]) == ("abc123", "enc", "checkpoint")
    assert (tags[T.EST_TIME_S], tags[T.EST_SOURCE], tags[T.ALIASES]) == ("12.346", "rough", "other,third")
    plain, _ = store.open_trial_run(experiment, _spec(tmp_path, name="plain").with_runtime(tags={}))
    assert plain == run_id  # the same trial id resumes its unfinished run
    store.end_run(run_id, "FINISHED")
    bare_tags = tracking.runs.trial_tags(_spec(tmp_path), None)
    assert not {T.SPEED_KEY, T.PRETRAIN, T.PROVIDES, T.EST_TIME_S, T.EST_SOURCE, T.ALIASES} & set(bare_tags)


def test_names_sharing_a_trial_id_train_as_the_one_that_is_no_pretraining(tmp_path: Path) -> None:
    from ablate.dispatch.scheduler import Scheduler

    pretraining = _spec(tmp_path, name="pretrain-enc", pretrain="enc", estimate=LaunchEstimate(3.0, "store"))
    (runner,) = Scheduler([pretraining, _spec(tmp_path, name="base")]).ready()
    assert (runner.name, runner.pretrain, runner.aliases, runner.estimate) == (
        "base", "enc", ("pretrain-enc",), LaunchEstimate(3.0, "store"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def no_http_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's default waits minutes first


def test_an_unreachable_server_is_named_as_such_not_as_a_missing_run(no_http_retries: None) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingUnavailable, match=f"cannot reach the tracking server at {uri} .connection refused"):
        fetch_runs_uri(uri, "runs:/" + "0" * 32 + "/checkpoints/best.pth")
    with pytest.raises(TrackingUnavailable) as caught:
        RunStore.open(uri).find_experiment("anything")
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2


class _Refusing(http.server.BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"You are not authenticated.")

    do_GET = do_POST = _refuse

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_refuses_access_is_named_as_such(no_http_retries: None) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(TrackingUnavailable, match=f"tracking server at {uri} refused access .HTTP 401"):
            RunStore.open(uri).get_run("0" * 32)
    finally:
        server.shutdown()
        server.server_close()
