"""Trials that span several workers: one DDP job through Ray Train (the real Runner, gloo on CPU
workers), and trials of different sizes packed on logical GPUs without sharing any."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.cli.app import main
from ablate.cli.board import placement_text
from ablate.dispatch import CapacityError, RayDispatcher, RunContext, critical_path_costs, drive
from ablate.study import load_study, plan_trials, run_study
from ablate.trial import TrialSpec, TrialState, train_trial
from ablate.trial.ranks import failure_of, record_failure
from tests.conftest import write_study
from tests.ddp_probe import SAMPLES
from tests.sleepers import explode, placed

BUDGET = {"iters": 4, "val_interval": 4, "batch_size": 1, "crop": [64, 64], "log_interval": 1, "workers": 0}
# Ray Train starts a fresh process per DDP worker: the module's first test also waits for the DDP fixture.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def ray6():
    """One local Ray for the module: CPUs for CPU workers, 6 logical GPUs for placement."""
    import ray

    ray.init(address="local", num_cpus=6, num_gpus=6, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ddp(ray6, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny SegFormer-B0 trained by 2 CPU workers (gloo), each with a probe of its samples."""
    root = tmp_path_factory.mktemp("ddp")
    probe = {"+custom_imports": {"imports": ["tests.ddp_probe"], "allow_failed_imports": False},
             "+custom_hooks": [{"type": "SampleProbeHook"}]}
    study = load_study(write_study(root / "s.yaml", tiny_data, budget=BUDGET, trials=[{"name": "ddp", "overrides": probe}],
                                   resources={"workers_per_trial": 2, "retries": 0}))
    uri = f"sqlite:///{root / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=root / "runs", dispatcher=RayDispatcher())
    (result,) = outcome.results
    assert result.state is TrialState.FINISHED, result.error
    client = MlflowClient(uri)
    return {"result": result, "run": client.get_run(result.run_id), "client": client, "outcome": outcome,
            "work_dir": root / "runs" / "tiny" / result.trial_id, "root": root}


def test_a_ddp_trial_is_one_run_written_by_rank_0(ddp: dict[str, Any]) -> None:
    run, client = ddp["run"], ddp["client"]
    runs = client.search_runs([ddp["outcome"].experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    tags = run.data.tags
    assert (tags["ablate.world_size"], tags["ablate.total_batch"], run.data.params["total_batch_size"]) == ("2", "2", "2")
    assert tags["ablate.devices"] == "cpu,cpu" and "SyncBN needs GPUs" in tags["ablate.sync_bn_fallback"]
    record = tracking.TrialRun.from_mlflow(run)
    assert (record.world_size, record.total_batch) == (2, 2)
    # rank 1 logs nothing: one loss per iteration, one FLOPs count, one final evaluation
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3, 4]
    assert len(client.get_metric_history(run.info.run_id, "flops_g")) == 1
    assert len(client.get_metric_history(run.info.run_id, "mIoU")) == 1
    work_dir = ddp["work_dir"]
    assert "launcher = 'pytorch'" in (work_dir / "config.py").read_text()
    assert (work_dir / "best.pth").exists() and not list(work_dir.glob("traceback*"))


def test_the_ranks_train_on_different_samples(ddp: dict[str, Any], tiny_data: Path) -> None:
    work_dir = ddp["work_dir"]
    ranks = [(work_dir / SAMPLES.format(rank=r)).read_text().split() for r in (0, 1)]
    assert [len(r) for r in ranks] == [4, 4]  # batch 1 per worker, 4 iterations
    first_epoch = ranks[0][:3] + ranks[1][:3]  # 6 training images over 2 workers: 3 iterations each
    assert sorted(first_epoch) == sorted(p.name for p in (tiny_data / "img_dir" / "train").iterdir())


def test_its_miou_is_its_checkpoint_evaluated_in_one_process(ddp: dict[str, Any]) -> None:
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(ddp["work_dir"] / "config.py"))
    cfg.launcher = "none"
    cfg.pop("model_wrapper_cfg", None)
    cfg.custom_hooks = []  # nothing writes to the trial's run
    cfg.default_hooks.pop("checkpoint")  # an evaluation saves nothing
    cfg.work_dir = str(ddp["root"] / "eval")
    cfg.load_from, cfg.resume = str(ddp["work_dir"] / "best.pth"), False
    metrics = Runner.from_cfg(cfg).val()
    assert metrics["mIoU"] == pytest.approx(ddp["run"].data.metrics["mIoU"], abs=1e-6)


def test_table1_shows_its_workers_and_total_batch(ddp: dict[str, Any]) -> None:
    from ablate.report import collect, model_rows, table1

    (row,) = model_rows(collect(ddp["outcome"].tracking_uri, ["tiny"]))
    table = table1([row])
    assert table.header[-2:] == ["GPUs", "Batch"] and table.rows[0][-2:] == ["CPU (2)", "2"]


def test_a_failed_worker_fails_the_trial_with_its_traceback(tiny_data: Path, tmp_path: Path) -> None:
    """What `train_trial` makes of a worker's failure: the trial FAILED, the worker's own traceback
    attached to the run (here the launch fails on rank 1 the way a Ray Train worker does)."""
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, resources={"workers_per_trial": 2}))
    (spec,) = plan_trials(study, tmp_path / "runs", with_cost=False)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    store = tracking.RunStore.open(uri)
    store.prepare()
    experiment_id = store.ensure_experiment("tiny")
    client = MlflowClient(uri)

    def launch(spec: TrialSpec, tracking_uri: str, experiment: str, run_id: str, resume: bool) -> None:
        try:
            explode(1)
        except ValueError:
            record_failure(spec.work_dir, 1)
        raise failure_of(spec.work_dir, {1: ValueError("boom on rank 1")}, spec.workers)

    result = train_trial(spec, uri, experiment_id, launch=launch)
    assert result.state is TrialState.FAILED and "ValueError: boom on rank 1 (rank 1 of 2)" in result.error
    run = client.get_run(result.run_id)
    assert run.info.status == "FAILED" and run.data.tags["ablate.world_size"] == "2"
    trace = Path(client.download_artifacts(result.run_id, "traceback.txt", str(tmp_path))).read_text()
    assert "in explode" in trace and "boom on rank 1" in trace


def test_the_plan_gives_each_entry_its_placement_and_ddp_trials_keep_syncbn(tiny_data: Path, tmp_path: Path) -> None:
    trials = [{"name": "one"}, {"name": "four", "resources": {"gpus_per_trial": 4}},
              {"name": "cpu2", "resources": {"workers_per_trial": 2}}]
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, trials=trials,
                                   profiles={"cpu": {"resources": {"workers_per_trial": 2}}},
                                   resources={"gpus_per_trial": 4}))
    one, four, cpu2 = plan_trials(study, tmp_path / "runs", with_cost=False)
    assert [(t.workers, t.gpus_per_worker, t.total_batch) for t in (one, four, cpu2)] == [(4, 1.0, 4), (4, 1.0, 4),
                                                                                           (2, 0.0, 2)]
    assert "SyncBN" in four.config_text and four.params["total_batch_size"] == 4
    assert len({one.trial_id, cpu2.trial_id}) == 2  # the world size is part of a DDP trial's id
    (alone,) = plan_trials(load_study(write_study(tmp_path / "t.yaml", tiny_data, budget=BUDGET)), tmp_path / "runs",
                           with_cost=False)
    assert alone.workers == 1 and "SyncBN" not in alone.config_text and alone.trial_id != one.trial_id
    # a profile's placement replaces the study's (gpus_per_trial 4 and workers_per_trial 2 would clash)
    assert load_study(study.source, "cpu").spec.resources.placement() == (2, 0.0, None)


# -- mixed sizes on logical GPUs ------------------------------------------------------------------

def _trial(root: Path, name: str, workers: int, cost: float, sleep_s: float, **params: Any) -> TrialSpec:
    work_dir = root / name
    work_dir.mkdir()
    return TrialSpec(study="s", name=name, trial_id=name, seed=0, base="b.py", config_text="", overrides={},
                     work_dir=work_dir, data_root=root, data_fingerprint="x", iters=1, batch_size=1, image_size=(8, 8),
                     cost=cost, params={"sleep_s": sleep_s, **params}, workers=workers, gpus_per_worker=1.0)


def test_mixed_sizes_share_no_gpu_and_concurrent_ddp_trials_get_their_own_port(ray6, tmp_path: Path) -> None:
    """On 6 GPUs a long 1-GPU trial (highest priority) and the 4-GPU trial start; the 2-GPU trial
    does not fit the one GPU left and the 1-GPU trials behind it may not take that GPU; once the
    first ends the 2-GPU trial runs beside the 4-GPU one (and fails on rank 1), then the rest."""
    ready = tmp_path / "ready"
    ready.mkdir()
    ddp = {"ready": str(ready), "all_ranks": 6}
    trials = [_trial(tmp_path, "first", 1, 9, 2.0), _trial(tmp_path, "big", 4, 8, 0.5, **ddp),
              _trial(tmp_path, "pair", 2, 7, 0.5, fail_rank=1, **ddp)]
    trials += [_trial(tmp_path, f"small{i}", 1, 1, 0.2) for i in range(3)]
    started: list[str] = []
    results = {r.name: r for r in drive(trials, RayDispatcher(trainable=placed), RunContext("sqlite:///unused", "0"),
                                        priority=critical_path_costs, on_start=lambda s, a: started.append(s.name),
                                        poll_s=0.2)}
    assert started == ["first", "big", "pair", "small0", "small1", "small2"]
    assert {n: r.state for n, r in results.items() if r.state is not TrialState.FINISHED} == {"pair": TrialState.FAILED}
    ranks = {t.name: [json.loads(p.read_text()) for p in sorted(t.work_dir.glob("rank*.json"))] for t in trials}
    span = {name: (min(r["start"] for r in rs), max(r["end"] for r in rs)) for name, rs in ranks.items()}
    gpus = {name: {g for r in rs for g in r["gpus"]} for name, rs in ranks.items()}
    assert len(gpus["big"]) == 4 and sum(len(r["gpus"]) for r in ranks["big"]) == 4
    beside_big = [n for n, (b, e) in span.items() if n != "big" and b < span["big"][1] and e > span["big"][0]]
    assert "pair" in beside_big and not [n for n in beside_big if gpus[n] & gpus["big"]]
    assert span["first"][1] <= span["pair"][0]  # the 2-GPU trial waited for the first to end ...
    assert all(span["pair"][0] <= span[f"small{i}"][0] for i in range(3))  # ... and was not overtaken
    # two DDP trials at once, each on a rendezvous port of its own
    ports = {name: {r["port"] for r in ranks[name]} for name in ("big", "pair")}
    assert all(len(p) == 1 for p in ports.values()) and ports["big"] != ports["pair"]
    # the failed worker: its rank, its error and its own traceback
    assert "ValueError: boom on rank 1 (rank 1 of 2)" in results["pair"].error
    assert "in explode" in (tmp_path / "pair" / "failure.txt").read_text()


def test_a_trial_larger_than_the_cluster_is_refused(ray6, tmp_path: Path) -> None:
    with pytest.raises(CapacityError, match=r"trial huge needs 8 GPUs, 8 CPUs \(8 workers\).* has 6 GPUs, 6 CPUs"):
        drive([_trial(tmp_path, "huge", 8, 1, 0.1)], RayDispatcher(trainable=placed), RunContext("sqlite:///unused", "0"))


def test_the_board_shows_what_each_trial_holds(tmp_path: Path) -> None:
    one, ddp4 = _trial(tmp_path, "one", 1, 1, 0), _trial(tmp_path, "four", 4, 1, 0)
    cpu2 = dataclasses.replace(_trial(tmp_path, "cpu2", 2, 1, 0), gpus_per_worker=0.0)
    assert [placement_text(s) for s in (one, ddp4, cpu2)] == ["1", "4 DDP", "2 cpu DDP"]


def test_the_local_dispatcher_refuses_a_ddp_study(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    study = write_study(tmp_path / "s.yaml", tiny_data, resources={"workers_per_trial": 2})
    with pytest.raises(SystemExit) as info:
        main(["run", str(study), "--dispatcher", "local", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
              "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert "trains as 2 DDP workers" in err and "--dispatcher ray" in err and not (tmp_path / "runs").exists()
