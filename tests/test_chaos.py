"""Failure handling end to end: killing the driver mid-study loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablate import tracking
from tests.conftest import write_study

ABLATE = [sys.executable, "-m", "ablate"]


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


def test_sigkill_driver_then_rerun_resumes_without_duplicates(tmp_path: Path, tiny_data: Path) -> None:
    study = write_study(
        tmp_path / "s.yaml", tiny_data,
        budget={"iters": 40, "val_interval": 4, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        resources={"max_concurrent": 1, "retries": 0},
        trials=[{"name": "first"}, {"name": "second", "overrides": {"optim_wrapper.optimizer.lr": 0.02}}],
    )
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = [str(study), "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    plan = json.loads(subprocess.run([*ABLATE, "plan", *args, "--json"], capture_output=True, text=True, env=env, check=True).stdout)
    first, second = (Path(t["work_dir"]) for t in plan["trials"])

    driver = subprocess.Popen([*ABLATE, "run", *args], start_new_session=True, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        progress = (second / "progress.json")
        if (first / "best.pth").exists() and (second / "last_checkpoint").exists() and progress.exists():
            if 8 <= json.loads(progress.read_text() or "{}").get("iter", 0) < 36:
                break
        assert driver.poll() is None, "driver ended before it could be killed"
        time.sleep(0.2)
    else:
        raise AssertionError("second trial never reached a checkpoint")
    _kill_session(driver.pid)
    driver.wait(timeout=30)
    checkpoint_iter = int(Path((second / "last_checkpoint").read_text().strip()).stem.split("_")[-1])
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name("tiny")
    first_run = tracking.find_trial_runs(client, experiment.experiment_id, plan["trials"][0]["trial_id"])[0]
    assert first_run.info.status == "FINISHED"

    rerun = subprocess.run([*ABLATE, "run", *args, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    states = {t["name"]: t["state"] for t in json.loads(rerun.stdout)["trials"]}
    assert states == {"first": "CACHED", "second": "FINISHED"}
    trial_runs = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert len(trial_runs) == 2  # one run per trial: the interrupted one was continued, not duplicated
    again = tracking.find_trial_runs(client, experiment.experiment_id, plan["trials"][0]["trial_id"])[0]
    assert again.info.run_id == first_run.info.run_id and again.info.end_time == first_run.info.end_time
    logs = "".join(p.read_text() for p in second.glob("*/*.log"))
    assert f"resumed epoch: 0, iter: {checkpoint_iter}" in logs  # the iteration counter continued
    steps = [m.step for m in client.get_metric_history(tracking.find_trial_runs(
        client, experiment.experiment_id, plan["trials"][1]["trial_id"])[0].info.run_id, "loss")]
    assert max(steps) == 40 and min(steps) == 1


# --- bad input: every malformed study exits 2 with a field-level message and writes nothing ---

CORPUS = {  # (sections replacing the valid study's, raw YAML appended, expected message)
    "wrong_type": ({"budget": {"iters": "lots"}}, "", "budget.iters:"),
    "unknown_key": ({"colour": "blue"}, "", "colour:"),
    "bad_dotted_path": ({"trials": [{"name": "a", "overrides": {"model.decode_head.dropout": 0.2}}]}, "",
                        "trials[0].overrides.model.decode_head.dropout:"),
    "missing_data": ({"data": {"root": "/no/such/data"}}, "", "data.root:"),
    "missing_checkpoint": ({"trials": [], "ladder": [{"transfer": {"checkpoint": "/no/such.pth"}}]}, "",
                           "ladder[0].transfer.checkpoint:"),
    "circular_pretrain": ({"trials": [], "ladder": ["poly_lr"], "pretrain": [
        {"name": "a", "tricks": [{"transfer": {"from": "b"}}]},
        {"name": "b", "tricks": [{"transfer": {"from": "a"}}]}]}, "", "pretrain[0].tricks:"),
    "empty_ladder": ({"trials": [], "ladder": []}, "", "a study needs at least one of"),
    "python_tag": ({}, "description: !!python/object/apply:os.system ['touch pwned']\n", "invalid YAML"),
    "bad_trick_param": ({"trials": [], "ladder": [{"ohem": {"thresh": "high"}}]}, "", "ladder[0].ohem.thresh:"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_malformed_study_corpus(case: str, tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate.cli import main

    sections, raw, expected = CORPUS[case]
    path = write_study(tmp_path / f"{case}.yaml", tiny_data, **sections)
    path.write_text(path.read_text() + raw)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "runs").exists() and not (tmp_path / "pwned").exists()


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
    run = tracking.client(uri).get_run(results["oom"].run_id)
    assert run.info.status == "FAILED" and "out of memory" in run.data.tags["ablate.failure"]


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(tmp_path: Path, tiny_data: Path) -> None:
    study = write_study(
        tmp_path / "s.yaml", tiny_data,
        budget={"iters": 40, "val_interval": 4, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        trials=[{"name": "only"}],
    )
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = [str(study), "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen([*ABLATE, "run", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    work = tmp_path / "runs" / "tiny"
    deadline = time.time() + 300
    while time.time() < deadline and not list(work.glob("*/last_checkpoint")):
        time.sleep(0.2)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output[-2000:]
    assert "run the same command again" in output and "Traceback" not in output
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert run.info.status == "KILLED"
    rerun = subprocess.run([*ABLATE, "run", *args, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    (again,) = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert "resumed epoch: 0, iter:" in "".join(p.read_text() for p in work.glob("*/*/*.log"))


def test_cli_exits_1_with_a_summary_when_a_trial_fails(tmp_path: Path, tiny_data: Path) -> None:
    study = write_study(tmp_path / "s.yaml", tiny_data, resources={"retries": 0},
                        trials=[{"name": "nan", "overrides": {"optim_wrapper.optimizer.lr": 1.0e30}}])
    proc = subprocess.run([*ABLATE, "run", str(study), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
                           "--runs-dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "1 trial(s) failed" in proc.stderr and "non-finite loss" in proc.stderr + proc.stdout
