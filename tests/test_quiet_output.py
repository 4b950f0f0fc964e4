"""What users read: `ablate run` and `ablate report` print their own lines, not MLflow's INFO logs or
its download progress bars; those go to ablate.log (in the runs folder, in the report folder), and
warnings still reach the terminal."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.util.logs import LOG_FILE, library_logs
from tests.conftest import write_study

NOISE = ("INFO mlflow", "INFO alembic", "Creating initial MLflow database tables", "Downloading artifacts")


def _ablate(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: a fresh process, no MLflow settings of ours in its environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_CONFIGURE_LOGGING")}
    return subprocess.run([sys.executable, "-m", "ablate", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def _noise(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if any(n in line for n in NOISE)]


@pytest.mark.timeout(900)
def test_run_and_report_print_no_library_logs_or_progress_bars(tmp_path: Path, tiny_data: Path) -> None:
    study = write_study(tmp_path / "s.yaml", tiny_data)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"  # a fresh store: MLflow creates its tables

    ran = _ablate(tmp_path, "run", str(study), "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs"),
                  "--dispatcher", "local")
    assert ran.returncode == 0, ran.stderr
    assert "FINISHED" in ran.stdout and "finished base" in ran.stderr  # the command's own lines are all there
    assert _noise(ran) == []
    assert "Creating initial MLflow database tables" in (tmp_path / "runs" / LOG_FILE).read_text()

    # the report downloads every run's artifacts: one progress bar each, were they on
    reported = _ablate(tmp_path, "report", str(study), "--tracking-uri", uri, "--out", str(tmp_path / "report"))
    assert reported.returncode == 0, reported.stderr
    assert _noise(reported) == []
    index = tmp_path / "report" / "index.html"
    assert reported.stderr.splitlines()[-1] == f"report: {index} ({len(reported.stdout.split())} files)"
    log = tmp_path / "report" / LOG_FILE  # beside index.html, replaced with the folder
    assert not log.exists() or log.read_text().startswith("--- ablate report (")


def test_library_info_goes_to_the_file_and_warnings_stay(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    import optuna

    mlflow_logger = logging.getLogger("mlflow")
    before = (list(mlflow_logger.handlers), mlflow_logger.level, mlflow_logger.propagate)
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    log = tmp_path / "runs" / LOG_FILE
    with library_logs(log, "ablate tune s.yaml", "optuna"):
        optuna.create_study()  # optuna says so at INFO, through a handler of its own
        logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables...")
        logging.getLogger("mlflow.tracking").warning("the store is read-only")
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    err = capfd.readouterr().err
    assert "A new study created" not in err and "Creating initial" not in err
    assert "WARNING mlflow.tracking: the store is read-only" in err  # a warning a user must act on stays
    text = log.read_text()
    assert text.startswith("--- ablate tune s.yaml (")
    assert "INFO optuna" in text and "Creating initial MLflow database tables" in text and "read-only" in text
    # afterwards the loggers and the environment are as they were
    assert (list(mlflow_logger.handlers), mlflow_logger.level, mlflow_logger.propagate) == before
    assert os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR") == bar


def test_a_command_that_logs_nothing_leaves_no_file(tmp_path: Path) -> None:
    with library_logs(tmp_path / "runs" / LOG_FILE, "ablate run missing.yaml"):
        pass
    assert not (tmp_path / "runs").exists()
