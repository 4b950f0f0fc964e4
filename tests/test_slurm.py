"""`--dispatcher slurm` on a real Slurm (slurmctld, slurmd, slurmdbd over MariaDB, munge), started by
these tests: each trial one job submitted with submitit, tagged with its job id, its logs in the
trial's work dir; failures, retries, a driver killed and started again, a requeued job, a DDP job of
two tasks, a transfer waiting on its pretraining, and a search."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import REPO, write_study
from tests.gate import REACHED, RELEASED, gate_overrides, wait_for
from tests.slurm_cluster import ACCOUNT, PARTITION, missing, running_cluster

ABLATE = [sys.executable, "-m", "ablate"]
BUDGET = {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """One cluster for the file; jobs import tests' hooks from the repository (they inherit the env)."""
    if missing() is not None:
        pytest.skip(missing())
    held = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), held]))
    try:
        with running_cluster(tmp_path_factory.mktemp("slurm")) as running:
            yield running
    finally:
        if held is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = held


def _main(*args: str) -> tuple[int, dict | None, str]:
    """`ablate ...` in this process: (exit code, the --json output or None, stderr)."""
    import contextlib
    import io

    from ablate.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(list(args))
    text = out.getvalue()
    payload = json.loads(text) if "--json" in args and text.strip().startswith("{") else None
    return int(info.value.code or 0), payload, err.getvalue()


def _trial_runs(uri: str, study: str) -> dict:
    """Trial runs by trial name."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    return {r.data.tags["ablate.trial_name"]: r for r in runs}


def _args(tmp_path: Path, study: Path, *more: str) -> list[str]:
    return [str(study), "--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}", "--runs-dir", str(tmp_path / "runs"),
            "--dispatcher", "slurm", *more]


def _jobs_of(cluster, study: str) -> list[dict]:
    return [j for j in cluster.jobs() if j["name"].startswith(f"ablate-{study}-")]


@pytest.mark.timeout(600)
def test_smoke_study_one_job_per_trial_tagged_with_its_id(cluster, tmp_path: Path, tiny_data: Path) -> None:
    study = write_study(
        tmp_path / "s.yaml", tiny_data, name="smoke", budget=BUDGET, slurm={"partition": PARTITION, "account": ACCOUNT},
        trials=[{"name": "sgd-default"}, {"name": "sgd-lr0.05", "overrides": {"optim_wrapper.optimizer.lr": 0.05}}],
    )
    code, out, err = _main("run", *_args(tmp_path, study, "--json"))
    assert code == 0, err[-3000:]
    assert {t["state"] for t in out["trials"]} == {"FINISHED"}
    assert all(t["mIoU"] is not None for t in out["trials"])
    assert "ablate server" in err  # a sqlite store: allowed, with the warning
    runs = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "smoke")
    job_ids = {name: r.data.tags["ablate.slurm_job_id"] for name, r in runs.items()}
    assert len(runs) == 2 and len(set(job_ids.values())) == 2
    jobs = _jobs_of(cluster, "smoke")
    assert sorted(j["id"] for j in jobs) == sorted(job_ids.values()), f"{jobs}\n{err[-3000:]}"
    for trial in out["trials"]:  # the job's own stdout/stderr beside the trial's files
        folder = tmp_path / "runs" / "smoke" / trial["trial_id"] / "slurm"
        job = job_ids[trial["name"]]
        assert f"JobEnvironment(job_id={job}," in (folder / f"{job}_0_log.out").read_text()
        assert (folder / f"{job}_0_log.err").exists()


def test_unknown_partition_or_account_is_refused_before_submitting(cluster, tmp_path: Path, tiny_data: Path) -> None:
    study = write_study(tmp_path / "s.yaml", tiny_data, name="refused", budget=BUDGET)
    before = len(cluster.jobs())
    code, _, err = _main("run", *_args(tmp_path, study, "--partition", "gpu-a100"))
    assert code == 2 and "slurm.partition: the cluster has no partition 'gpu-a100'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = _main("run", *_args(tmp_path, study, "--account", "nobody"))
    assert code == 2 and "no account 'nobody'" in err
    code, _, err = _main("run", *_args(tmp_path, study, "--time", "soon"))
    assert code == 2 and "--time" in err and "not a Slurm time limit" in err
    assert len(cluster.jobs()) == before


@pytest.mark.timeout(600)
def test_failed_pretraining_is_retried_and_its_transfer_fails_unrun(cluster, tmp_path: Path, tiny_data: Path) -> None:
    pretrain = [{"name": "city", "data": {"root": str(tiny_data), "image_scale": [192, 64]},
                 "budget": {"iters": 2, "val_interval": 2}, "overrides": {"optim_wrapper.optimizer.lr": 1.0e30}}]
    study = write_study(tmp_path / "s.yaml", tiny_data, name="failing", budget=BUDGET, trials=[], pretrain=pretrain,
                        ladder=[{"transfer": {"from": "city"}}], resources={"retries": 1})
    code, out, err = _main("run", *_args(tmp_path, study, "--json"))
    assert code == 1, err[-3000:]
    states = {t["name"]: (t["state"], t["error"]) for t in out["trials"]}
    assert states["r0-base"][0] == "FINISHED"
    assert states["pretrain-city"][0] == "FAILED" and "non-finite loss" in states["pretrain-city"][1]
    assert states["r1-transfer"] == ("FAILED", "dependency pretrain-city failed")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    runs = _trial_runs(uri, "failing")
    assert "r1-transfer" not in runs  # it never ran
    failed = runs["pretrain-city"]
    assert failed.info.status == "FAILED" and failed.data.tags["ablate.attempt"] == "2"
    artifacts = [a.path for a in MlflowClient(uri).list_artifacts(failed.info.run_id)]
    assert "traceback.txt" in artifacts
    names = [j["name"] for j in _jobs_of(cluster, "failing")]
    assert names.count("ablate-failing-pretrain-city") == 2 and names.count("ablate-failing-r0-base") == 1


@pytest.mark.timeout(600)
def test_a_transfer_rung_waits_for_its_pretraining_job(cluster, tmp_path: Path, tiny_data: Path) -> None:
    pretrain = [{"name": "city", "data": {"root": str(tiny_data), "image_scale": [192, 64]},
                 "budget": {"iters": 2, "val_interval": 2}}]
    study = write_study(tmp_path / "s.yaml", tiny_data, name="transfer", budget=BUDGET, trials=[], pretrain=pretrain,
                        ladder=[{"transfer": {"from": "city"}}])
    code, out, err = _main("run", *_args(tmp_path, study, "--json"))
    assert code == 0, err[-3000:]
    assert {t["state"] for t in out["trials"]} == {"FINISHED"}
    runs = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "transfer")
    assert runs["pretrain-city"].info.end_time <= runs["r1-transfer"].info.start_time
    assert len({r.data.tags["ablate.slurm_job_id"] for r in runs.values()}) == 3


class _Driver:
    """`ablate run` in its own session, its stderr read as it comes."""

    def __init__(self, args: list[str]) -> None:
        import threading

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*ABLATE, "run", *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.reader.start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def reach(self, gate: Path) -> None:
        """Until the gated job reached its gate; the driver's last words when it ended first."""
        try:
            wait_for(gate / REACHED, alive=self.alive)
        except AssertionError as exc:
            self.reader.join(timeout=10)
            raise AssertionError(f"{exc}; the driver said:\n{''.join(self.lines)[-3000:]}") from None


def _until(check, alive, timeout_s: float = 300.0) -> None:  # noqa: ANN001
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        assert alive(), "the driver ended early"
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


# Seen once in a full-suite run on 2 busy cores: the first driver ended before the gated job reached its
# gate, not reproduced alone (54 s); rerun once on exactly that failure, whose message carries the
# driver's own last words, so a real regression still fails.
@pytest.mark.flaky(reruns=1, only_rerun=["the process ended before"])
@pytest.mark.timeout(600)
def test_a_driver_killed_mid_study_reattaches_and_submits_nothing_twice(cluster, tmp_path: Path,
                                                                       tiny_data: Path) -> None:
    import uuid

    gate = tmp_path / "gate"
    name = f"killed{uuid.uuid4().hex[:6]}"  # a rerun's jobs are told apart from the first try's in sacct
    study = write_study(tmp_path / "s.yaml", tiny_data, name=name, budget=BUDGET, resources={"retries": 0},
                        trials=[{"name": "first"}, {"name": "second", "overrides": {
                            "optim_wrapper.optimizer.lr": 0.02, **gate_overrides(gate, at=2)}}])
    driver = _Driver(_args(tmp_path, study))
    driver.reach(gate)  # the second trial's job holds after its checkpoint at 2
    os.killpg(driver.proc.pid, signal.SIGKILL)  # the driver, not its jobs: those belong to Slurm
    driver.proc.wait(timeout=30)
    interrupted = _Driver(_args(tmp_path, study))
    _until(lambda: interrupted.said("re-attached: second"), interrupted.alive)
    interrupted.proc.send_signal(signal.SIGINT)  # Ctrl-C: the job keeps running, and the driver says so
    assert interrupted.proc.wait(timeout=120) == 130
    interrupted.reader.join(timeout=10)
    (held,) = [j["id"] for j in _jobs_of(cluster, name) if j["name"] == f"ablate-{name}-second"]
    said = re.search(r"Slurm job\(s\) keep running \(([\d, ]+)\)", "".join(interrupted.lines))
    assert said and held in said.group(1).split(", "), "".join(interrupted.lines)[-3000:]
    assert held in cluster.queue()
    again = _Driver(_args(tmp_path, study, "--json"))
    _until(lambda: again.said(f"re-attached: second (seed 0) is Slurm job {held}"), again.alive)
    (gate / RELEASED).touch()
    assert again.proc.wait(timeout=300) == 0, "".join(again.lines)[-3000:]
    again.reader.join(timeout=10)
    out = json.loads(again.proc.stdout.read())
    assert {t["state"] for t in out["trials"]} <= {"FINISHED", "CACHED"}
    names = sorted(j["name"] for j in _jobs_of(cluster, name))
    assert names == [f"ablate-{name}-first", f"ablate-{name}-second"]  # nothing submitted twice
    runs = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", name)
    assert {r.info.status for r in runs.values()} == {"FINISHED"} and len(runs) == 2


@pytest.mark.timeout(600)
def test_a_requeued_job_resumes_from_its_checkpoint_in_the_same_run(cluster, tmp_path: Path,
                                                                   tiny_data: Path) -> None:
    gate = tmp_path / "gate"
    study = write_study(tmp_path / "s.yaml", tiny_data, name="requeued", budget=BUDGET, resources={"retries": 0},
                        trials=[{"name": "long", "overrides": gate_overrides(gate, at=2)}])
    driver = _Driver(_args(tmp_path, study, "--json"))
    driver.reach(gate)
    (job,) = [j["id"] for j in _jobs_of(cluster, "requeued")]
    cluster.run("scontrol", "requeue", job)
    _until(lambda: job not in cluster.queue() or "PENDING" in cluster.run("squeue", "-h", "-j", job, "-o", "%T"),
           driver.alive, 60)
    (gate / RELEASED).touch()  # the requeued job passes its gate
    assert driver.proc.wait(timeout=300) == 0, "".join(driver.lines)[-3000:]
    runs = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "requeued")
    assert list(runs) == ["long"]
    run = runs["long"]
    assert run.info.status == "FINISHED" and run.data.tags["ablate.slurm_job_id"] == job
    assert run.data.tags["ablate.slurm_restarts"] == "1"
    logs = "".join(p.read_text() for p in (tmp_path / "runs" / "requeued").glob("*/*/*.log"))
    assert "resumed epoch: 0, iter: 2" in logs


@pytest.mark.timeout(600)
def test_the_time_limit_signal_saves_a_checkpoint_and_the_requeued_job_resumes(cluster, tmp_path: Path,
                                                                               tiny_data: Path) -> None:
    gate = tmp_path / "gate"
    study = write_study(tmp_path / "s.yaml", tiny_data, name="signalled", budget=BUDGET, resources={"retries": 0},
                        trials=[{"name": "long", "overrides": gate_overrides(gate, at=3)}])
    driver = _Driver(_args(tmp_path, study, "--json"))
    driver.reach(gate)  # 3 iterations done; the interval checkpoint holds only 2
    (job,) = [j["id"] for j in _jobs_of(cluster, "signalled")]
    cluster.run("scancel", "--signal=USR2", job)  # what Slurm sends `signal_s` before the time limit
    _until(lambda: job not in cluster.queue() or "PENDING" in cluster.run("squeue", "-h", "-j", job, "-o", "%T"),
           driver.alive, 60)
    (gate / RELEASED).touch()
    assert driver.proc.wait(timeout=300) == 0, "".join(driver.lines)[-3000:]
    run = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "signalled")["long"]
    assert run.info.status == "FINISHED" and run.data.tags["ablate.slurm_restarts"] == "1"
    logs = "".join(p.read_text() for p in (tmp_path / "runs" / "signalled").glob("*/*/*.log"))
    assert re.search(r"resumed epoch: \d+, iter: 3\b", logs)  # from the checkpoint saved on the signal


@pytest.mark.timeout(600)
def test_two_workers_are_one_job_of_two_tasks(cluster, tmp_path: Path, tiny_data: Path) -> None:
    from mmengine.config import Config
    from mmengine.runner import Runner

    study = write_study(tmp_path / "s.yaml", tiny_data, name="ddp", budget=BUDGET, resources={"workers_per_trial": 2})
    code, out, err = _main("plan", *_args(tmp_path, study, "--json", "--no-cost"))
    assert code == 0, err[-2000:]
    assert "--ntasks=2 --cpus-per-task=1 --nodes=1-2" in out["trials"][0]["sbatch"]
    code, out, err = _main("run", *_args(tmp_path, study, "--json"))
    assert code == 0, err[-3000:]
    (trial,) = out["trials"]
    run = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "ddp")["base"]
    assert run.info.status == "FINISHED" and run.data.tags["ablate.world_size"] == "2"
    (job,) = _jobs_of(cluster, "ddp")
    work = tmp_path / "runs" / "ddp" / trial["trial_id"]
    assert (work / "slurm" / f"{job['id']}_1_log.out").exists()  # the second task's own output
    cfg = Config.fromfile(str(work / "config.py"))
    cfg.launcher = "none"
    cfg.pop("model_wrapper_cfg", None)
    cfg.custom_hooks = []
    cfg.default_hooks.pop("checkpoint")
    cfg.work_dir = str(tmp_path / "eval")
    cfg.load_from, cfg.resume = str(work / "best.pth"), False
    assert Runner.from_cfg(cfg).val()["mIoU"] == pytest.approx(run.data.metrics["mIoU"], abs=1e-6)


@pytest.mark.timeout(600)
def test_tune_runs_its_trials_as_jobs(cluster, tmp_path: Path, tiny_data: Path) -> None:
    search = {"params": {"optim_wrapper.optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]}}, "n_trials": 3,
              "pruner": {"type": "none"}}
    study = write_study(tmp_path / "s.yaml", tiny_data, name="tune", budget=BUDGET, search=search, trials=[])
    before = len(_jobs_of(cluster, "tune"))
    code, _, err = _main("tune", *_args(tmp_path, study))
    assert code == 0, err[-3000:]
    runs = _trial_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "tune")
    assert len(runs) == 3 and {r.info.status for r in runs.values()} == {"FINISHED"}
    assert len({r.data.tags["ablate.slurm_job_id"] for r in runs.values()}) == 3
    assert len(_jobs_of(cluster, "tune")) == before + 3


def test_the_slurm_block_is_validated_and_profiles_and_options_override_it(tmp_path: Path, tiny_data: Path) -> None:
    from ablate.cli.slurm import sbatch_lines, slurm_block
    from ablate.study import load_study, plan_trials

    block = {"partition": "gpu", "time": "1-00:00:00", "mem_per_gpu": "32G", "setup": ["module load cuda"],
             "extra": {"mail-type": "FAIL"}}
    profiles = {"short": {"slurm": {"time": "30", "qos": "debug"}}}
    path = write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, slurm=block, profiles=profiles,
                       resources={"gpus_per_trial": 2, "cpus_per_trial": 4})
    study = load_study(path, "short")
    merged = slurm_block(study.spec, account="vision")
    assert (merged.partition, merged.qos, merged.account, merged.minutes) == ("gpu", "debug", "vision", 30)
    (trial,) = plan_trials(study, tmp_path / "runs", generate_data=False)
    line = sbatch_lines([trial], merged, study.spec.resources)[trial.name]
    assert line == ("--ntasks=2 --cpus-per-task=4 --nodes=1-2 --gpus-per-task=1 --partition=gpu --account=vision "
                    "--qos=debug --mem-per-gpu=32G --time=30 --requeue --mail-type=FAIL")
    assert load_study(path).spec.slurm.minutes == 1440


@pytest.mark.parametrize("block, message", [
    ({"time": "tomorrow"}, "slurm.time"),
    ({"mem": "lots"}, "slurm.mem"),
    ({"partition": "gpu;rm"}, "slurm.partition"),
    ({"extra": {"job-name": "x"}}, "slurm.extra"),
    ({"nodes": 2}, "slurm.nodes"),
])
def test_a_bad_slurm_block_is_one_line_naming_the_field(tmp_path: Path, tiny_data: Path, block: dict,
                                                        message: str) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, slurm=block)
    code, _, err = _main("plan", str(path), "--dispatcher", "slurm", "--no-cost",
                         "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert code == 2 and message in err and "Traceback" not in err
