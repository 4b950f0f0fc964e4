"""The error boundary as a user meets it: every input they can fix exits 2 with one
`field.path: message` line, no traceback, in seconds, and nothing written."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from ablate.cli import main
from ablate.errors import AblateError
from ablate.study import load_study
from ablate.tracking import check_tracking_uri
from tests.conftest import B0_CONFIG, write_study

SEARCH = {"params": {"tricks.ohem.thresh": {"uniform": [0.3, 0.9]}}, "recipe": ["ohem"]}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's folder as the working directory, so a stray default path would show up in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    return tmp_path


def _refused(argv: list[str], capsys: pytest.CaptureFixture, root: Path) -> str:
    """Runs the real CLI; asserts exit 2, no traceback, nothing new under `root`; returns stderr."""
    before = _files(root)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert _files(root) == before
    return err


def _options(root: Path) -> list[str]:
    return ["--tracking-uri", f"sqlite:///{root / 'm.db'}", "--runs-dir", str(root / "runs")]


@pytest.fixture()
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- trick parameters ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({"ladder": [{"class_balanced_loss": {"beta": 1.5}}]}, "ladder[0].class_balanced_loss.beta: "),
        ({"ladder": [{"class_balanced_loss": {"beta": 0}}]}, "ladder[0].class_balanced_loss.beta: "),
        ({"ladder": [{"class_balanced_loss": {"beta": "most"}}]}, "ladder[0].class_balanced_loss.beta: "),
        ({"ladder": ["poly_lr", {"ohem": {"thresh": 1.5}}]}, "ladder[1].ohem.thresh: "),
        ({"ladder": [{"ohem": {"thresh": 0}}]}, "ladder[0].ohem.thresh: "),
        ({"ladder": [{"multiscale_test": {"scales": [1.0, -0.5]}}]}, "ladder[0].multiscale_test.scales"),
        ({"ladder": ["poly_lr", {"aux_head": {"in_index": 4}}]},
         "ladder[1].aux_head.in_index: 4 is beyond the 4 stages of backbone 'MixVisionTransformer'"),
        ({"zoo": [{"name": "b0", "config": str(B0_CONFIG)}], "recipe": [{"aux_head": {"in_index": 7}}]},
         "recipe[0].aux_head.in_index: 7 is beyond"),
        ({"ladder": ["ohem"], "trick_params": {"ohem": {"thresh": 2}}}, "trick_params.ohem.thresh: "),
        ({"ladder": ["ohem"], "trick_params": {"ohme": {"thresh": 0.5}}}, "trick_params.ohme: unknown trick 'ohme'"),
        ({"ladder": ["ohem"], "trick_params": {"ohem": {"tresh": 0.5}}}, "trick_params.ohem.tresh: "),
    ],
)
def test_trick_parameters_out_of_range(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                       extra: dict, line: str) -> None:
    path = write_study(here / "s.yaml", tiny_data, **{"trials": [], **extra})
    err = _refused(["run", str(path), *_options(here)], capsys, here)
    assert f"\n{line}" in err, err


def test_trick_parameters_at_their_bounds_load(tmp_path: Path, tiny_data: Path) -> None:
    ladder = [{"class_balanced_loss": {"beta": 0.999}}, {"ohem": {"thresh": 1.0}}, {"aux_head": {"in_index": 3}}]
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=[], ladder=ladder))
    assert [t.name for t in study.designs[-1].tricks] == ["class_balanced_loss", "ohem", "aux_head"]


def test_aux_head_of_a_search_recipe_is_checked_before_the_search(here: Path, tiny_data: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    search = {"params": {"tricks.aux_head.loss_weight": {"uniform": [0.1, 0.9]}}, "recipe": [{"aux_head": {"in_index": 9}}]}
    path = write_study(here / "s.yaml", tiny_data, search=search)
    err = _refused(["tune", str(path), *_options(here)], capsys, here)
    assert "\nsearch.recipe[0].aux_head.in_index: 9 is beyond" in err


# --- tracking URI, Optuna storage, Ray address -------------------------------------------------

@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("foo://bar", "--tracking-uri: unknown scheme 'foo' in 'foo://bar'; use sqlite:///path.db, postgresql://"),
        ("sqlite:/one-slash.db", "--tracking-uri: cannot parse 'sqlite:/one-slash.db' as a database URL"),
        ("sqlite://", "--tracking-uri: 'sqlite://' is an in-memory sqlite database"),
        ("mlruns", "--tracking-uri: MLflow 3 no longer opens file stores"),
        ("postgresql+nosuchdriver://u@127.0.0.1/db", "--tracking-uri: SQLAlchemy has no driver 'postgresql+nosuchdriver'"),
        ("http://", "--tracking-uri: 'http://' names no host"),
        ("http://ml flow:5000", "--tracking-uri: 'http://ml flow:5000' is not a valid URL"),
        ("http://127.0.0.1:port", "--tracking-uri: 'http://127.0.0.1:port' has no valid port"),
    ],
)
def test_bad_tracking_uri(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture, uri: str, fragment: str) -> None:
    path = write_study(here / "s.yaml", tiny_data)
    err = _refused(["plan", str(path), "--tracking-uri", uri], capsys, here)
    assert err.startswith(f"error: {fragment}") and err.count("\n") == 1, err


@pytest.mark.parametrize("command", ["run", "tune", "report"])
def test_every_command_checks_the_tracking_uri(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                               command: str) -> None:
    path = write_study(here / "s.yaml", tiny_data, search=SEARCH)
    err = _refused([command, str(path), "--tracking-uri", "foo://bar"], capsys, here)
    assert err.startswith("error: --tracking-uri: unknown scheme 'foo'")


def test_tracking_uri_from_the_environment_is_named(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://x")
    path = write_study(here / "s.yaml", tiny_data)
    assert _refused(["plan", str(path)], capsys, here).startswith("error: MLFLOW_TRACKING_URI: unknown scheme 'bogus'")


@pytest.mark.parametrize("command", ["run", "plan"])
def test_unreachable_tracking_server_fails_in_seconds(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                                     closed_port: int, command: str) -> None:
    path = write_study(here / "s.yaml", tiny_data)
    start = time.monotonic()
    err = _refused([command, str(path), "--tracking-uri", f"http://127.0.0.1:{closed_port}", "--runs-dir", str(here / "r")],
                   capsys, here)
    assert time.monotonic() - start < 20  # the study's configs load first; Ray/MLflow alone waited minutes
    assert err.startswith(f"error: --tracking-uri: no MLflow server answers at http://127.0.0.1:{closed_port}")
    assert "mlflow server" in err


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_server_that_never_answers_times_out(silent_server: int) -> None:
    start = time.monotonic()
    with pytest.raises(AblateError, match=r"--tracking-uri: no MLflow server answers .*waited up to 0.5 s"):
        check_tracking_uri(f"http://127.0.0.1:{silent_server}", timeout_s=0.5)
    assert time.monotonic() - start < 3


def test_a_live_server_passes_the_probe() -> None:
    """Any HTTP answer on <uri>/health counts (the path MLflow's server serves), then the credentials are tried."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_tracking_uri(f"http://127.0.0.1:{server.server_port}/prefix/")
    finally:
        server.shutdown()
        server.server_close()
    # the health probe, then one authenticated request that checks the credentials (401/403 fail fast)
    assert seen == ["/prefix/health", "/prefix/api/2.0/mlflow/experiments/search?max_results=1"]


@pytest.mark.parametrize(
    ("storage", "fragment"),
    [
        ("foo://x", "--storage: unsupported scheme 'foo' in 'foo://x'; Optuna storages are sqlite, postgresql, mysql"),
        ("optuna.db", "--storage: no scheme in 'optuna.db'"),
        ("sqlite:/x.db", "--storage: cannot parse 'sqlite:/x.db' as a database URL"),
        ("sqlite://", "--storage: 'sqlite://' is an in-memory sqlite database"),
        ("mysql+nosuchdriver://u@127.0.0.1/db", "--storage: SQLAlchemy has no driver 'mysql+nosuchdriver'"),
    ],
)
def test_bad_storage_url(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture, storage: str, fragment: str) -> None:
    path = write_study(here / "s.yaml", tiny_data, search=SEARCH)
    err = _refused(["tune", str(path), "--storage", storage, *_options(here)], capsys, here)
    assert err.startswith(f"error: {fragment}") and err.count("\n") == 1, err


@pytest.mark.parametrize("command", ["run", "tune"])
def test_unreachable_ray_address_fails_in_seconds(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                                 closed_port: int, command: str) -> None:
    path = write_study(here / "s.yaml", tiny_data, search=SEARCH)
    start = time.monotonic()
    err = _refused([command, str(path), "--address", f"127.0.0.1:{closed_port}", *_options(here)], capsys, here)
    assert time.monotonic() - start < 20
    assert err.startswith(f"error: --address: no Ray cluster answers at 127.0.0.1:{closed_port}")
    assert "ray start --head" in err and "drop --address" in err


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("headnode", "--address: 'headnode' is not host:port, ray://host:port or auto"),
        ("ray://h:port", "--address: 'ray://h:port' is not host:port"),
        ("http://h:6379", "--address: 'http://h:6379' is not host:port"),
        ("auto", "--address: auto finds no Ray cluster started on this machine"),
    ],
)
def test_malformed_ray_address(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                               monkeypatch: pytest.MonkeyPatch, address: str, fragment: str) -> None:
    monkeypatch.setenv("RAY_TMPDIR", str(here / "no-ray"))  # `auto` reads <RAY_TMPDIR>/ray/ray_current_cluster
    path = write_study(here / "s.yaml", tiny_data)
    err = _refused(["run", str(path), "--address", address, *_options(here)], capsys, here)
    assert err.startswith(f"error: {fragment}"), err


def test_a_listening_ray_address_passes(silent_server: int, closed_port: int, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate.dispatch import check_ray_address

    for address in (f"127.0.0.1:{silent_server}", f"ray://127.0.0.1:{silent_server}", f"localhost:{silent_server}"):
        check_ray_address(address)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    recorded = tmp_path / "ray" / "ray_current_cluster"  # what `ray start --head` leaves for `auto`
    recorded.write_text(f"127.0.0.1:{silent_server}\n")
    check_ray_address("auto")
    recorded.write_text(f"127.0.0.1:{closed_port}\n")
    with pytest.raises(AblateError, match=f"--address: no Ray cluster answers at 127.0.0.1:{closed_port}"):
        check_ray_address("auto")


def test_ray_address_from_the_environment_is_named(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    path = write_study(here / "s.yaml", tiny_data)
    assert _refused(["run", str(path), *_options(here)], capsys, here).startswith("error: RAY_ADDRESS: no Ray cluster")


# --- study files ---------------------------------------------------------------------------------

def test_undecodable_study_file(here: Path, capsys: pytest.CaptureFixture) -> None:
    path = here / "s.yaml"
    path.write_bytes(b"name: x\n\x89PNG\r\n\x1a\n\x00\xff\xfe")
    err = _refused(["plan", str(path), *_options(here)], capsys, here)
    assert err == f"error: {path}: not UTF-8 text (byte 0x89 at offset 8); a study file must be YAML text\n"
    assert _refused(["run", str(path), *_options(here)], capsys, here) == err


@pytest.mark.parametrize(
    ("include", "body", "line"),
    [
        (["part.bin"], b"\xff\xfe\xfa", "include[0]: '{part}' is not UTF-8 text (byte 0xff at offset 0)"),
        (["part.yaml"], b"budget: [unclosed\n", "include[0]: '{part}' is invalid YAML at line 2: "),
        (["part.yaml"], b"- a list\n", "include[0]: 'part.yaml' must be a YAML mapping"),
        (["missing.yaml"], None, "include[0]: file 'missing.yaml' not found"),
        ([{"file": "part.yaml"}], b"{}", "include: must be a file name or a list of file names"),
        (["part.yaml"], b"include: [other.yaml]\n", "include[0]: 'part.yaml' has an include: of its own"),
    ],
)
def test_bad_includes(here: Path, tiny_data: Path, capsys: pytest.CaptureFixture, include: list, body: bytes | None,
                      line: str) -> None:
    names = [n for n in include if isinstance(n, str)]
    part = here / (names[0] if names else "part.yaml")
    if body is not None:
        part.write_bytes(body)
    path = write_study(here / "s.yaml", tiny_data, include=include)
    err = _refused(["plan", str(path), *_options(here)], capsys, here)
    assert line.format(part=part.resolve()) in err, err
