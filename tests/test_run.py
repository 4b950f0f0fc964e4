"""One study end to end: real SegFormer-B0 (tiny), real Runner, real sqlite MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.data import CLASSES
from ablate.metrics import metric_key
from ablate.study import load_study, plan_trials, run_study
from ablate.trial import TrialState
from tests.conftest import write_study

TRIALS = [{"name": "base"}, {"name": "high-lr", "overrides": {"optim_wrapper.optimizer.lr": 0.05}}]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path):
    tmp = tmp_path_factory.mktemp("run")
    study = load_study(write_study(tmp / "s.yaml", tiny_data, trials=TRIALS))
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp / "runs")
    return study, uri, outcome, tmp


def test_trials_finish_and_are_child_runs(finished) -> None:
    study, uri, outcome, _ = finished
    assert [r.state for r in outcome.results] == [TrialState.FINISHED, TrialState.FINISHED]
    client = MlflowClient(uri)
    runs = client.search_runs([outcome.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags[tracking.tags.PARENT] == outcome.parent_run_id
        assert run.data.tags[tracking.tags.TRIAL_ID] in {r.trial_id for r in outcome.results}
    assert client.get_experiment(outcome.experiment_id).name == study.name
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"


def test_params_metrics_and_artifacts(finished) -> None:
    _, uri, outcome, _ = finished
    client = MlflowClient(uri)
    result = next(r for r in outcome.results if r.name == "high-lr")
    run = client.get_run(result.run_id)
    params = run.data.params
    assert params["override.optim_wrapper.optimizer.lr"] == "0.05"
    assert params["seed"] == "0" and params["iters"] == "4" and params["backbone"] == "MixVisionTransformer"
    metrics = run.data.metrics
    for key in ("mIoU", "mAcc", "aAcc", "flops_g", "params_m", "loss", "lr"):
        assert key in metrics, key
    for name in CLASSES:
        assert metric_key("IoU", name) in metrics
    # loss/lr every logged iteration, evaluation at each interval
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3, 4]
    lrs = [m.value for m in client.get_metric_history(run.info.run_id, "lr")]
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] < lrs[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "mIoU")] == [2, 4]
    assert metrics["flops_g"] > 0 and 3 < metrics["params_m"] < 5
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.py", "per_class_iou.json", "logs", "predictions"} <= artifacts
    preds = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "predictions")}
    assert len(preds) == 9 and any(p.endswith("_pred.png") for p in preds)
    local = Path(client.download_artifacts(run.info.run_id, "per_class_iou.json"))
    per_class = json.loads(local.read_text())
    assert set(per_class) == {n.replace(" ", "_") for n in CLASSES}
    assert per_class["road"] == pytest.approx(metrics["IoU.road"])


def test_rerun_is_cached_and_trains_nothing(finished) -> None:
    study, uri, outcome, tmp = finished
    again = run_study(study, uri, runs_dir=tmp / "runs")
    assert [r.state for r in again.results] == [TrialState.CACHED, TrialState.CACHED]
    assert [r.run_id for r in again.results] == [r.run_id for r in outcome.results]
    client = MlflowClient(uri)
    assert len(client.search_runs([outcome.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")) == 2


def test_trial_id_ignores_names_but_not_seed_or_values(finished, tiny_data: Path) -> None:
    study, _, outcome, tmp = finished
    renamed = load_study(write_study(tmp / "r.yaml", tiny_data, name="other", trials=[{"name": "renamed"}], budget={**study.spec.budget.model_dump(), "log_interval": 2}))
    assert plan_trials(renamed, tmp / "runs")[0].trial_id == outcome.results[0].trial_id
    seeded = load_study(write_study(tmp / "q.yaml", tiny_data, seeds=[1], trials=TRIALS))
    ids = [t.trial_id for t in plan_trials(seeded, tmp / "runs")]
    assert ids[0] not in {r.trial_id for r in outcome.results}
    assert len(set(ids)) == 2


def test_report_reads_what_the_run_wrote(finished) -> None:
    """The report is built from the store a real run wrote: same tag names, same numbers."""
    import csv

    from ablate.report import build_report

    study, uri, outcome, tmp = finished
    out = tmp / "report"
    build_report(study=study.source, out=out, tracking_uri=uri)
    with (out / "runs.csv").open() as handle:
        rows = {r["trial"]: r for r in csv.DictReader(handle)}
    for result in outcome.results:
        row = rows[result.name]
        assert row["trial_id"] == result.trial_id and row["status"] == "FINISHED"
        assert float(row["mIoU"]) == pytest.approx(result.miou)
        assert float(row["flops_g"]) > 0 and row["seed"] == "0"
    assert (out / "table1.md").read_text().count("|") > 10


def test_dumped_config_trains_with_a_plain_runner(finished, tmp_path: Path) -> None:
    """config.py holds the whole trial: mmseg's `Runner.from_cfg(cfg).train()` behaves the same."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    _, uri, outcome, tmp = finished
    result = next(r for r in outcome.results if r.name == "high-lr")  # other tests resume "base"
    cfg = Config.fromfile(str(tmp / "runs" / "tiny" / result.trial_id / "config.py"))
    assert "ablate.registry" in cfg.custom_imports["imports"]
    cfg.work_dir = str(tmp_path / "plain")
    cfg.resume = False
    Runner.from_cfg(cfg).train()
    work = tmp_path / "plain"
    assert (work / "best.pth").exists() and len(list((work / "predictions").glob("*_pred.png"))) == 3
    assert json.loads((work / "progress.json").read_text())["iter"] == 4
    history = MlflowClient(uri).get_metric_history(result.run_id, "mIoU")
    assert [m.step for m in history] == [2, 4, 2, 4]  # the plain run logged into the trial's run


def test_a_new_store_never_gets_an_empty_finished_run(finished, tmp_path: Path) -> None:
    """Same runs dir, new store: the complete checkpoint belongs to no run, so the trial trains again."""
    study, _, outcome, tmp = finished
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    again = run_study(study, uri, runs_dir=tmp / "runs")
    client = MlflowClient(uri)
    for result in again.results:
        assert result.state is TrialState.FINISHED and result.miou is not None
        run = client.get_run(result.run_id)
        assert "mIoU" in run.data.metrics
        assert [m.step for m in client.get_metric_history(result.run_id, "loss")] == [1, 2, 3, 4]


def test_interrupted_after_its_last_checkpoint_is_evaluated_not_left_empty(finished, tmp_path: Path) -> None:
    """A run killed after training (checkpoint complete, run not closed) resumes, trains nothing,
    and is evaluated before it is FINISHED."""
    import shutil

    from mlflow.entities import RunStatus

    study, _, _, tmp = finished

    runs = tmp_path / "runs"
    shutil.copytree(tmp / "runs", runs)
    import sqlite3

    db = tmp_path / "m.db"
    with sqlite3.connect(tmp / "mlruns.db") as source, sqlite3.connect(db) as target:
        source.backup(target)  # WAL-safe copy of the store
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(study.name).experiment_id
    run = client.search_runs([exp], filter_string="tags.`ablate.trial_name` = 'base'")[0]
    client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))

    with sqlite3.connect(db) as conn:  # as if the final evaluation had never been logged
        conn.execute("DELETE FROM metrics WHERE run_uuid = ? AND key = 'mIoU'", (run.info.run_id,))
        conn.execute("DELETE FROM latest_metrics WHERE run_uuid = ? AND key = 'mIoU'", (run.info.run_id,))
    again = run_study(study, uri, runs_dir=runs)
    result = next(r for r in again.results if r.name == "base")
    assert result.state is TrialState.FINISHED and result.run_id == run.info.run_id
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3, 4]  # no training
    assert [m.step for m in client.get_metric_history(run.info.run_id, "mIoU")] == [4]
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
