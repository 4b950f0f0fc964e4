"""Failure handling end to end: killing the driver mid-study loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
