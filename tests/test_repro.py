"""Reproducibility record of a trial run (dataset input, git state, versions, system metrics) and
`ablate diff`, on two tiny real trials of a study committed to a temporary git repository."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.cli.app import main
from ablate.data import dataset_fingerprint
from ablate.study import load_study, run_study
from ablate.tracking import tags as T
from ablate.tracking.environment import NOT_A_REPOSITORY, git_state
from ablate.trial import TrialState
from tests.conftest import TINY, write_study

LR = "optim_wrapper.optimizer.lr"
# the third diverges (non-finite loss at iteration 2) and fails both of its attempts in one run
TRIALS = [{"name": "base"}, {"name": "high-lr", "overrides": {LR: 0.05}}, {"name": "diverges", "overrides": {LR: 1.0e30}}]
GIT = ["git", "-c", "user.name=ablate", "-c", "user.email=ablate@localhost", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, *files: str) -> str:
    _git(repo, "init", "-q")
    _git(repo, "add", *files)
    _git(repo, "commit", "-q", "-m", "study")
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path):
    """Two trials of a committed study; work dirs and the store lie untracked inside the repository."""
    repo = tmp_path_factory.mktemp("repo")
    study_file = write_study(repo / "study.yaml", tiny_data, trials=TRIALS)
    head = _commit(repo, "study.yaml")
    uri = f"sqlite:///{repo / 'mlruns.db'}"
    outcome = run_study(load_study(study_file), uri, runs_dir=repo / "runs")
    assert [r.state for r in outcome.results] == [TrialState.FINISHED, TrialState.FINISHED, TrialState.FAILED]
    client = MlflowClient(uri)
    runs = {r.name: client.get_run(str(r.run_id)) for r in outcome.results}
    return repo, head, uri, runs


def _diff(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", *args])
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_dataset_input_is_the_content_fingerprint(studied, tiny_data: Path) -> None:
    _, _, _, runs = studied
    for run in runs.values():
        (item,) = run.inputs.dataset_inputs
        assert item.dataset.digest == dataset_fingerprint(tiny_data)
        assert item.dataset.name == tiny_data.name
        assert json.loads(item.dataset.source)["uri"] == str(tiny_data.resolve())
        assert json.loads(item.dataset.profile) == {"train": TINY["train"], "val": TINY["test"]}
        assert {t.key: t.value for t in item.tags}[T.DATASET_CONTEXT] == "train"
        record = tracking.TrialRun.from_mlflow(run)
        assert record.data_fingerprint == dataset_fingerprint(tiny_data)


def test_versions_device_and_determinism_are_tagged(studied) -> None:
    import mmcv
    import mmseg
    import torch

    _, _, _, runs = studied
    record = tracking.TrialRun.from_mlflow(runs["base"])
    assert record.versions["python"] == platform.python_version()
    assert record.versions["torch"] == torch.__version__
    assert record.versions["mmseg"] == mmseg.__version__
    assert record.versions["mmengine"] == metadata.version("mmengine")
    assert record.versions["mmcv"] == mmcv.__version__
    assert record.versions["ablate"] == metadata.version("mmseg-ablate")
    assert record.versions["cuda"] == (torch.version.cuda or "none")
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    assert record.versions["cudnn"] == (str(cudnn) if cudnn else "none")
    tags = record.tags
    assert tags[T.GPU] == (torch.cuda.get_device_name(0) if record.devices.startswith("cuda") else "none")
    assert tags[T.SEED] == "0" and tags[T.DETERMINISTIC] == "false"
    assert tags[T.DETERMINISTIC_ALGORITHMS] in {"true", "false"} and tags[T.CUDNN_BENCHMARK] in {"true", "false"}


def test_git_commit_of_the_study_repository(studied) -> None:
    repo, head, _, runs = studied
    for run in runs.values():
        record = tracking.TrialRun.from_mlflow(run)
        assert record.git_commit == head == _git(repo, "rev-parse", "HEAD")
        assert run.data.tags[T.MLFLOW_GIT_COMMIT] == head
        assert record.git_dirty is False  # the store and work dirs inside it are untracked


def test_git_state_dirty_and_outside_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "study.yaml").write_text("name: a\n")
    head = _commit(repo, "study.yaml")
    (repo / "notes.txt").write_text("untracked\n")
    assert git_state(repo).commit == head and git_state(repo).dirty is False
    (repo / "study.yaml").write_text("name: b\n")
    assert git_state(repo).dirty is True and git_state(repo).tags()[T.GIT_DIRTY] == "true"
    outside = tmp_path / "plain"
    outside.mkdir()
    state = git_state(outside)
    assert state.commit == NOT_A_REPOSITORY and state.dirty is None
    assert state.tags() == {T.GIT_COMMIT: NOT_A_REPOSITORY, T.GIT_DIRTY: "unknown"}


def test_system_metrics_are_recorded_while_training(studied) -> None:
    """Every run, the failed one too, has load samples; a retry continues the steps of the attempt
    before it, and no monitor outlives its trial."""
    import threading

    _, _, uri, runs = studied
    client = MlflowClient(uri)
    for run in runs.values():
        metrics = run.data.metrics
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
        memory = client.get_metric_history(run.info.run_id, "system/system_memory_usage_megabytes")
        assert memory and all(m.value > 0 for m in memory)
        assert sorted(m.step for m in memory) == list(range(len(memory)))
    assert runs["diverges"].data.tags[T.ATTEMPT] == "2"
    # a failed trial is recorded, not raised: its error and its traceback are on its run
    assert runs["diverges"].info.status == "FAILED" and "loss" in runs["diverges"].data.tags["ablate.failure"]
    assert "traceback.txt" in {a.path for a in client.list_artifacts(runs["diverges"].info.run_id)}
    assert len(client.get_metric_history(runs["diverges"].info.run_id, "system/cpu_utilization_percentage")) >= 2
    assert not [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]


def test_diff_names_the_differing_override(studied, capsys: pytest.CaptureFixture) -> None:
    _, _, uri, runs = studied
    code, out, _ = _diff(capsys, "base", "high-lr", "--tracking-uri", uri)
    assert code == 0
    line = next(line for line in out.splitlines() if LR in line)
    assert "0.01" in line and "0.05" in line
    assert "work_dir" not in out and "custom_hooks" not in out  # where and into which run: not the trial
    assert "dataset: identical" in out and "environment: identical" in out

    a_id = runs["base"].data.tags[T.TRIAL_ID]
    code, out, _ = _diff(capsys, a_id, runs["high-lr"].info.run_id, "--tracking-uri", uri, "--json")
    report = json.loads(out)
    assert code == 0 and report["a"]["name"] == "base" and report["b"]["name"] == "high-lr"
    assert report["config"]["differing"] == [{"key": LR, "a": 0.01, "b": 0.05}]
    assert report["dataset"]["differing"] == [] and report["environment"]["differing"] == []
    miou = next(row for row in report["metrics"] if row["key"] == "mIoU")
    a, b = runs["base"].data.metrics["mIoU"], runs["high-lr"].data.metrics["mIoU"]
    assert (miou["a"], miou["b"]) == (a, b) and miou["delta"] == pytest.approx(b - a)
    assert not any(row["key"].startswith("system/") for row in report["metrics"])


def test_diff_refuses_unknown_and_ambiguous_names(studied, capsys: pytest.CaptureFixture) -> None:
    _, _, uri, runs = studied
    code, _, err = _diff(capsys, "base", "no-such-trial", "--tracking-uri", uri)
    assert code == 2 and "'no-such-trial'" in err and "Traceback" not in err
    client = MlflowClient(uri)
    other = tracking.RunStore.open(uri).ensure_experiment("tiny-elsewhere")
    client.create_run(other, run_name="base-s0", tags={T.KIND: T.Kind.TRIAL.value, T.TRIAL_NAME: "base",
                                                       T.TRIAL_ID: "0123456789ab"})
    code, _, err = _diff(capsys, "base", "high-lr", "--tracking-uri", uri)
    assert code == 2 and "2 trials" in err and "--experiment" in err
    code, out, _ = _diff(capsys, "base", "high-lr", "--tracking-uri", uri, "--experiment", "tiny", "--json")
    assert code == 0 and json.loads(out)["a"]["run_id"] == runs["base"].info.run_id
    code, _, err = _diff(capsys, "base", "high-lr", "--tracking-uri", uri, "--experiment", "nope")
    assert code == 2 and "--experiment 'nope'" in err
