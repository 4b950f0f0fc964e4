"""`seeds: {auto: ...}`: rounds of one more seed until every ladder delta's interval is narrow
enough, or `max` seeds ran. Real tiny trainings (2-rung ladder, 4 iterations), real MLflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.cli.app import main
from ablate.data import CLASSES
from ablate.report.collect import collect
from ablate.statistics import ladders
from ablate.study import load_study, run_study
from ablate.study.estimate import SOURCES, STORE
from ablate.trial import TrialState
from tests.conftest import write_study

LADDER = ["poly_lr"]
# two iterations, one validation: the smallest training whose mIoU still differs between seeds
BUDGET = {"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}


def _auto(tmp: Path, data: Path, ci_width: float, name: str = "auto") -> Path:
    return write_study(tmp / f"{name}-{ci_width:g}.yaml", data, name=name, trials=[], ladder=LADDER, budget=BUDGET,
                       seeds={"auto": {"min": 2, "max": 3, "ci_width": ci_width}})


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict:
    """A loose study (round 1 is enough), then a strict one on the same store (only `max` stops it)."""
    tmp = tmp_path_factory.mktemp("auto")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    heard: list = []
    loose = run_study(load_study(_auto(tmp, tiny_data, 1e6)), uri, runs_dir=tmp / "runs", on_round=heard.append)
    strict = run_study(load_study(_auto(tmp, tiny_data, 1e-9)), uri, runs_dir=tmp / "runs")
    return {"tmp": tmp, "uri": uri, "loose": loose, "strict": strict, "heard": heard}


def test_loose_interval_stops_after_the_first_round(rounds: dict) -> None:
    loose = rounds["loose"]
    assert len(loose.rounds) == 1 and rounds["heard"] == loose.rounds
    first = loose.rounds[0]
    assert first.seeds == (0, 1) and first.stop == "narrow" and (first.trained, first.cached) == (4, 0)
    assert sorted((r.name, r.seed, r.state) for r in loose.results) == [
        ("r0-base", 0, TrialState.FINISHED), ("r0-base", 1, TrialState.FINISHED),
        ("r1-poly_lr", 0, TrialState.FINISHED), ("r1-poly_lr", 1, TrialState.FINISHED)]
    assert list(first.widths) == ["ladder +poly_lr"] and 0 < first.widths["ladder +poly_lr"] < 1e6
    assert "stop: every interval is narrower than 1e+06" in first.describe()


def test_widths_are_the_reports_intervals(rounds: dict) -> None:
    """The stopping rule reads the same 95% interval the report's ladder table prints."""
    collection = collect(rounds["uri"], ["auto"])
    step = next(s for lad in ladders(collection.table_runs, CLASSES) for s in lad.steps if s.rung == 1)
    assert step.comparison is not None and step.comparison.n == 3  # the strict study's third seed is in now
    strict_last = rounds["strict"].rounds[-1]
    width = step.comparison.ci_high - step.comparison.ci_low
    assert strict_last.widths["ladder +poly_lr"] == pytest.approx(width)


def test_impossible_interval_stops_at_max_reusing_the_first_rounds(rounds: dict) -> None:
    strict = rounds["strict"]
    assert [(r.seeds, r.trained, r.cached, r.stop) for r in strict.rounds] == [
        ((0, 1), 0, 4, ""), ((0, 1, 2), 2, 0, "max")]
    assert not math.isinf(strict.rounds[-1].widest[1]) and strict.rounds[-1].widest[1] >= 1e-9
    states = sorted((r.seed, r.state.value) for r in strict.results)
    assert states == [(0, "CACHED"), (0, "CACHED"), (1, "CACHED"), (1, "CACHED"), (2, "FINISHED"), (2, "FINISHED")]
    client = MlflowClient(rounds["uri"])
    trials = client.search_runs([strict.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert len(trials) == 6  # nothing trained twice


def test_rounds_are_logged_on_the_parent_run(rounds: dict) -> None:
    strict = rounds["strict"]
    client = MlflowClient(rounds["uri"])
    parent = client.get_run(strict.parent_run_id)
    T = tracking.tags
    assert (parent.data.tags[T.SEED_ROUNDS], parent.data.tags[T.SEEDS_RUN], parent.data.tags[T.SEED_STOP]) == (
        "2", "0,1,2", "max")
    logged = json.loads(Path(client.download_artifacts(strict.parent_run_id, "seed_rounds.json")).read_text())
    assert logged == [r.to_dict() for r in strict.rounds]
    assert [r["round"] for r in logged] == [1, 2] and logged[1]["stop"] == "max"


def test_launch_estimates_are_recorded_and_later_rounds_use_the_store(rounds: dict) -> None:
    """Every trial run carries the estimate it was launched with; the third seed's trials were
    launched after the first rounds trained the same model, so theirs comes from the store."""
    experiment = rounds["strict"].experiment_id
    runs, _ = tracking.RunStore.open(rounds["uri"]).read_experiment(experiment, "auto")
    assert all(r.est_time_s is not None and r.est_time_s > 0 and r.est_source in SOURCES for r in runs)
    assert {r.est_source for r in runs if r.seed == 2} == {STORE}


def test_plan_shows_the_first_round_and_says_more_may_follow(rounds: dict, tiny_data: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    path = _auto(rounds["tmp"], tiny_data, 0.5, name="planned")
    argv = ["plan", str(path), "--tracking-uri", rounds["uri"], "--runs-dir", str(rounds["tmp"] / "runs")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert info.value.code == 0
    assert doc["seeds"]["planned"] == [0, 1] and doc["seeds"]["auto"]["max"] == 3
    assert sorted(t["seed"] for t in doc["trials"]) == [0, 0, 1, 1]
    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert "seeds: auto - planned the first 2 seeds (0, 1); rounds of one more seed may follow" in out


@pytest.mark.parametrize(("seeds", "extra", "fragment"), [
    ({"auto": {"min": 3, "max": 2}}, {"ladder": LADDER}, "seeds.auto: min (3) exceeds max (2)"),
    ({"auto": {"min": 1}}, {"ladder": LADDER}, "seeds.auto.min:"),
    ({"auto": {"ci_width": 0}}, {"ladder": LADDER}, "seeds.auto.ci_width:"),
    ({"auto": {}}, {}, "seeds.auto needs a `ladder:`"),
])
def test_bad_auto_seeds_exit_2_naming_the_field(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                                seeds: dict, extra: dict, fragment: str) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, seeds=seeds, **extra)
    with pytest.raises(SystemExit) as info:
        main(["plan", str(path), "--no-cost", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err and fragment in err, err
    assert not (tmp_path / "m.db").exists()
