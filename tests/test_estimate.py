"""Time before launch: `ablate plan` estimates from earlier runs in the store, from a probe of
this machine (`--calibrate`), else from FLOPs (rough); the board and the report use the same."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient
from rich.console import Console

from ablate import tracking
from ablate.cli.app import main
from ablate.cli.board import ProgressBoard
from ablate.report.collect import collect
from ablate.report.folder import Writer
from ablate.report.timing import section
from ablate.study import load_study, run_study
from ablate.study.estimate import NOMINAL_GFLOPS, TRAIN_FORWARDS, makespan, validations
from ablate.trial import LaunchEstimate, TrialSpec
from tests.conftest import write_study

BUDGET = {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict:
    """One tiny trial trained and recorded: the store's earlier run."""
    tmp = tmp_path_factory.mktemp("estimate")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    study = load_study(write_study(tmp / "first.yaml", tiny_data, name="first"))
    outcome = run_study(study, uri, runs_dir=tmp / "runs")
    client = MlflowClient(uri)
    record = tracking.TrialRun.from_mlflow(client.get_run(outcome.results[0].run_id), "first")
    return {"tmp": tmp, "uri": uri, "run": record}


def _plan(path: Path, uri: str, tmp: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    with pytest.raises(SystemExit) as info:
        main(["plan", str(path), "--json", "--tracking-uri", uri, "--runs-dir", str(tmp / "runs"), *extra])
    captured = capsys.readouterr()
    assert info.value.code == 0, captured.err
    return json.loads(captured.out)


def test_the_trained_run_records_its_speed(earlier: dict) -> None:
    run = earlier["run"]
    assert run.s_per_iter > 0 and run.val_s > 0 and run.val_runs == 2 and run.timed_iters == 4
    assert run.device_kind and run.speed_key and run.duration_s is not None
    # the terms are parts of the whole (up to timing noise: steady iterations on a shared machine
    # can run slower than the first)
    assert run.duration_s > 0.8 * (run.s_per_iter * 4 + run.val_s * 2)


def test_store_estimate_for_the_same_model_crop_and_batch(earlier: dict, tiny_data: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """Another study, another seed, the same model, crop and batch: the earlier run's speed."""
    tmp, run = earlier["tmp"], earlier["run"]
    same = write_study(tmp / "same.yaml", tiny_data, name="second", seeds=[1])
    doc = _plan(same, earlier["uri"], tmp, capsys)
    (row,) = doc["trials"]
    assert row["est_source"] == "store" and "1 earlier run" in row["est_basis"]
    # same budget: what the earlier run took (its fixed part is never negative, so noise can add a little)
    assert row["est_time_s"] == pytest.approx(run.duration_s, rel=0.1)
    assert row["est_time_s"] >= run.s_per_iter * 4
    assert doc["estimate"]["wall_s"] == pytest.approx(row["est_time_s"]) and doc["estimate"]["gpu_hours"] == 0
    assert doc["estimate"]["sources"] == {"store": 1, "calibrated": 0, "rough": 0}
    # twice the iterations: four more steps and two more validations at the measured speed
    longer = write_study(tmp / "longer.yaml", tiny_data, name="second", seeds=[1], budget={**BUDGET, "iters": 8})
    (row,) = _plan(longer, earlier["uri"], tmp, capsys)["trials"]
    assert validations(8, 2) == 4
    assert row["est_source"] == "store"
    assert row["est_time_s"] == pytest.approx(max(run.duration_s, 4 * run.s_per_iter + 2 * run.val_s)
                                             + 4 * run.s_per_iter + 2 * run.val_s)


def test_calibrate_measures_a_model_the_store_has_not_seen(earlier: dict, tiny_data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    study = write_study(tmp_path / "new.yaml", tiny_data, name="third", budget={**BUDGET, "crop": [48, 48]})
    before = _plan(study, earlier["uri"], tmp_path, capsys)["trials"][0]
    assert before["est_source"] == "rough"  # nothing measured at this crop yet
    doc = _plan(study, earlier["uri"], tmp_path, capsys, "--calibrate")
    (probe,) = doc["calibrated"]
    (row,) = doc["trials"]
    assert probe["s_per_iter"] > 0 and probe["eval_s_per_image"] > 0 and probe["steps"] >= 3
    assert row["est_source"] == "calibrated"
    images = len(list((tiny_data / "img_dir" / "val").iterdir()))
    expected = probe["build_s"] + 4 * probe["s_per_iter"] + validations(4, 2) * images * probe["eval_s_per_image"]
    assert row["est_time_s"] == pytest.approx(expected) and row["est_time_s"] > 0
    assert (tmp_path / "cache" / "speed.json").is_file()
    again = _plan(study, earlier["uri"], tmp_path, capsys)["trials"][0]  # kept for later plans
    assert again["est_source"] == "calibrated" and again["est_time_s"] == pytest.approx(row["est_time_s"])


def test_rough_fallback_is_marked(earlier: dict, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    tmp = earlier["tmp"]
    study = write_study(tmp / "far.yaml", tiny_data, name="second", seeds=[1])
    argv = ["--device", "NoSuchAccelerator"]
    (row,) = _plan(study, earlier["uri"], tmp, capsys, *argv)["trials"]
    assert row["est_source"] == "rough"
    assert row["est_time_s"] == pytest.approx(row["cost_gflop"] * TRAIN_FORWARDS / NOMINAL_GFLOPS["gpu"])
    assert row["gpu_hours"] == pytest.approx(row["est_time_s"] / 3600)  # one GPU per trial on a GPU
    with pytest.raises(SystemExit):
        main(["plan", str(study), "--tracking-uri", earlier["uri"], "--runs-dir", str(tmp / "runs"), *argv])
    out = capsys.readouterr().out
    assert "~ rough: FLOPs at a nominal throughput" in out and "estimate on NoSuchAccelerator" in out
    with pytest.raises(SystemExit) as info:
        main(["plan", str(study), "--tracking-uri", earlier["uri"], "--calibrate", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--calibrate times this machine" in err and "Traceback" not in err


def test_report_puts_estimate_beside_actual_time(earlier: dict, tmp_path: Path) -> None:
    run = earlier["run"]
    assert run.est_time_s is not None and run.est_time_s > 0 and run.est_source in ("store", "calibrated", "rough")
    part = section(collect(earlier["uri"], ["first"]), Writer(tmp_path, ["png"]), False)
    assert part.rows is not None
    header, rows = part.rows
    assert header[-3:] == ["estimated_s", "actual_s", "actual_over_estimated"]
    assert rows == [["base", "0", run.est_source, f"{run.est_time_s:.1f}", f"{run.duration_s:.1f}",
                     f"{run.duration_s / run.est_time_s:.2f}"]]
    assert (tmp_path / "timing.csv").read_text().splitlines()[1].startswith("base,0,")


def _spec(name: str, seconds: float, depends: tuple[str, ...] = (), est: float | None = None) -> TrialSpec:
    return TrialSpec(study="s", name=name, trial_id=name, seed=0, base="b.py", config_text="", overrides={},
                     work_dir=Path("/nonexistent") / name, data_root=Path("/nonexistent"), data_fingerprint="-",
                     iters=10, batch_size=1, image_size=(8, 8), cost=seconds, depends_on=depends,
                     estimate=LaunchEstimate(est, "store") if est is not None else None)


def test_study_wall_time_replays_the_scheduler() -> None:
    trials = [_spec("a", 3.0), _spec("b", 2.0), _spec("c", 2.0)]
    seconds = {t.trial_id: t.cost for t in trials}
    assert makespan(trials, seconds, 1) == pytest.approx(7.0)
    assert makespan(trials, seconds, 2) == pytest.approx(4.0)  # a | b then c
    chained = [_spec("a", 3.0), _spec("b", 2.0), _spec("c", 2.0, depends=("a",))]
    assert makespan(chained, seconds, 2) == pytest.approx(5.0)  # c waits for a
    assert makespan(trials, seconds, 3) == pytest.approx(3.0)


def test_board_eta_uses_the_estimate_until_a_rate_is_reported(tmp_path: Path) -> None:
    board = ProgressBoard(Console(file=io.StringIO()), "t", live=False, tick_s=0)
    spec = replace(_spec("a", 1.0, est=125.0), work_dir=tmp_path)
    board.add([spec])
    row = board.rows["a"]
    assert row.eta == "~2:05"  # pending: the whole estimate
    board.on_start(spec, 1)
    row.started = time.time() - 25
    assert row.eta in ("~1:40", "~1:39")  # running, no rate yet: estimate less the time run
    row.progress = {"phase": "train", "iter": 5, "max_iters": 10, "eta_s": 12.0}
    assert row.eta == "12 s"  # the measured rate wins
