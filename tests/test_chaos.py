"""Failure handling end to end: killing the driver mid-study loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking
from tests.conftest import REPO, write_study
from tests.gate import REACHED, RELEASED, gate_overrides, wait_for

ABLATE = [sys.executable, "-m", "ablate"]
# the drivers import the test's gate hook from tests/
ENV = {**os.environ, "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def _trial_runs(client: MlflowClient, experiment_id: str, trial_id: str) -> list:
    """The MLflow runs of one trial id, newest first."""
    return client.search_runs([experiment_id], filter_string=f"tags.`{tracking.tags.TRIAL_ID}` = '{trial_id}'",
                              order_by=["attributes.start_time DESC"])


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the driver's session: the driver and the Ray it started."""
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, session = (int(x) for x in line.split())
        if session == sid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.timeout(600)  # two drivers, each importing the stack afresh
def test_sigkill_driver_then_rerun_resumes_without_duplicates(tmp_path: Path, tiny_data: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    from ablate.cli import main

    gate = tmp_path / "gate"
    study = write_study(
        tmp_path / "s.yaml", tiny_data,
        budget={"iters": 8, "val_interval": 4, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        resources={"max_concurrent": 1, "retries": 0},
        trials=[{"name": "first"}, {"name": "second", "overrides": {"optim_wrapper.optimizer.lr": 0.02,
                                                                     **gate_overrides(gate, at=4)}}],
    )
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = [str(study), "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs")]

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["plan", *args, "--json"])
    assert info.value.code == 0
    plan = json.loads(capsys.readouterr().out)
    first, second = (Path(t["work_dir"]) for t in plan["trials"])

    driver = subprocess.Popen([*ABLATE, "run", *args], start_new_session=True, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(gate / REACHED, alive=lambda: driver.poll() is None)  # the second trial, held after its iteration 4
    assert (first / "best.pth").exists() and (second / "last_checkpoint").exists()
    _kill_session(driver.pid)
    driver.wait(timeout=30)
    (gate / RELEASED).touch()
    checkpoint_iter = int(Path((second / "last_checkpoint").read_text().strip()).stem.split("_")[-1])
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny")
    first_run = _trial_runs(client, experiment.experiment_id, plan["trials"][0]["trial_id"])[0]
    assert first_run.info.status == "FINISHED"

    rerun = subprocess.run([*ABLATE, "run", *args, "--json"], capture_output=True, text=True, env=ENV, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    states = {t["name"]: t["state"] for t in json.loads(rerun.stdout)["trials"]}
    assert states == {"first": "CACHED", "second": "FINISHED"}
    trial_runs = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert len(trial_runs) == 2  # one run per trial: the interrupted one was continued, not duplicated
    again = _trial_runs(client, experiment.experiment_id, plan["trials"][0]["trial_id"])[0]
    assert again.info.run_id == first_run.info.run_id and again.info.end_time == first_run.info.end_time
    logs = "".join(p.read_text() for p in second.glob("*/*.log"))
    assert f"resumed epoch: 0, iter: {checkpoint_iter}" in logs  # the iteration counter continued
    steps = [m.step for m in client.get_metric_history(_trial_runs(
        client, experiment.experiment_id, plan["trials"][1]["trial_id"])[0].info.run_id, "loss")]
    assert max(steps) == 8 and min(steps) == 1


# --- a trial that runs out of GPU memory is isolated and reported ----------------------------

def test_simulated_cuda_oom_is_isolated(tmp_path: Path, tiny_data: Path) -> None:
    import torch
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    from ablate.study import load_study, run_study
    from ablate.trial import TrialState

    @HOOKS.register_module(force=True)
    class RaiseOutOfMemory(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:  # noqa: ANN001
            if runner.iter + 1 == 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    trials = [{"name": "oom", "overrides": {"custom_hooks": [{"type": "RaiseOutOfMemory"}]}}, {"name": "ok"}]
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=trials,
                                   overrides={"+custom_hooks": []}))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp_path / "runs")  # in-process: the hook lives in this test
    results = {r.name: r for r in outcome.results}
    assert results["ok"].state is TrialState.FINISHED
    assert results["oom"].state is TrialState.FAILED and "OutOfMemoryError" in results["oom"].error
    run = MlflowClient(uri).get_run(results["oom"].run_id)
    assert run.info.status == "FAILED" and "out of memory" in run.data.tags["ablate.failure"]


@pytest.mark.timeout(600)  # two drivers, each importing the stack afresh
def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(tmp_path: Path, tiny_data: Path) -> None:
    gate = tmp_path / "gate"
    study = write_study(
        tmp_path / "s.yaml", tiny_data,
        budget={"iters": 8, "val_interval": 4, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        trials=[{"name": "only", "overrides": gate_overrides(gate, at=4)}],
    )
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = [str(study), "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs")]

    driver = subprocess.Popen([*ABLATE, "run", *args], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    work = tmp_path / "runs" / "tiny"
    wait_for(gate / REACHED, alive=lambda: driver.poll() is None)  # held after its iteration 4, checkpoint written
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output[-2000:]
    assert "run the same command again" in output and "Traceback" not in output
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert run.info.status == "KILLED"
    (gate / RELEASED).touch()
    rerun = subprocess.run([*ABLATE, "run", *args, "--json"], capture_output=True, text=True, env=ENV, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    (again,) = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert "resumed epoch: 0, iter: 4" in "".join(p.read_text() for p in work.glob("*/*/*.log"))


def test_cli_exits_1_with_a_summary_when_a_trial_fails(tmp_path: Path, tiny_data: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    from ablate.cli import main

    study = write_study(tmp_path / "s.yaml", tiny_data, resources={"retries": 0},
                        trials=[{"name": "nan", "overrides": {"optim_wrapper.optimizer.lr": 1.0e30}}])
    with pytest.raises(SystemExit) as info:
        main(["run", str(study), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
              "--runs-dir", str(tmp_path / "runs")])
    out, err = capsys.readouterr()
    assert info.value.code == 1, err[-2000:]
    assert "1 trial(s) failed" in err and "non-finite loss" in err + out
