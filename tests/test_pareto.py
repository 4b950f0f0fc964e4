"""Multi-objective `ablate tune` (mIoU against FLOPs): Optuna directions and metric names, the
Pareto set in best_params.yaml against the non-dominated trials computed here, a constraint
taking a trial off the front, the report's Pareto figure, and the search block's field errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from ablate.search import default_storage
from ablate.study import load_study
from tests.conftest import write_study

BUDGET = {"iters": 4, "val_interval": 4, "batch_size": 2, "crop": [32, 32], "log_interval": 2, "workers": 0}
CHANNELS = "model.decode_head.channels"
OBJECTIVES = {"mIoU": "maximize", "flops_g": "minimize"}
# three grid points whose decode heads differ in width, so their FLOPs differ; the crop is searched too
SEARCH = {"params": {CHANNELS: {"categorical": [16, 64, 256]}, "budget.crop": {"categorical": [48]}},
          "objectives": OBJECTIVES, "sampler": {"type": "grid", "seed": 0}, "n_trials": 3}


def _front(trials: list[Any], directions: list[str], feasible: Any = lambda t: True) -> set[int]:
    """Numbers of the complete, feasible trials no other such trial dominates (computed here,
    without Optuna)."""
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    points = {t.number: [s * v for s, v in zip(signs, t.values)] for t in trials
              if t.state.name == "COMPLETE" and feasible(t)}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return {n for n, p in points.items() if not any(dominates(q, p) for m, q in points.items() if m != n)}


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict[str, Any]:
    """One real multi-objective search of three tiny trials, then the same study under a
    constraint in a second Optuna storage (its trials come from MLflow, untrained), and the report."""
    import optuna

    from ablate.cli import main
    from ablate.report import build_report

    tmp = tmp_path_factory.mktemp("pareto")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    path = write_study(tmp / "s.yaml", tiny_data, budget=BUDGET, search=SEARCH)
    with pytest.raises(SystemExit) as info:
        main(["tune", str(path), "--dispatcher", "local", "--tracking-uri", uri, "--runs-dir", str(tmp / "runs")])
    assert info.value.code in (0, None)
    study = optuna.load_study(study_name="tiny", storage=default_storage(uri))
    pareto = yaml.safe_load((tmp / "runs" / "tiny" / "best_params.yaml").read_text())["pareto"]

    # A lower bound between the two smallest FLOPs takes the cheapest trial, always on the
    # unconstrained front (nothing has fewer FLOPs), out of the feasible set.
    flops = sorted(t.values[1] for t in study.trials)
    bound = (flops[0] + flops[1]) / 2
    constrained = write_study(tmp / "c.yaml", tiny_data, budget=BUDGET,
                              search={**SEARCH, "constraints": {"flops_g": f">= {bound}"}})
    storage = f"sqlite:///{tmp / 'constrained.db'}"
    with pytest.raises(SystemExit) as info:
        main(["tune", str(constrained), "--dispatcher", "local", "--tracking-uri", uri, "--runs-dir", str(tmp / "runs-c"),
              "--storage", storage])
    assert info.value.code in (0, None)
    out = tmp / "report"
    written = build_report(["tiny"], out=out, tracking_uri=uri)
    return {"tmp": tmp, "uri": uri, "path": path, "study": study, "pareto": pareto, "bound": bound,
            "constrained": optuna.load_study(study_name="tiny", storage=storage),
            "constrained_pareto": yaml.safe_load((tmp / "runs-c" / "tiny" / "best_params.yaml").read_text())["pareto"],
            "out": out, "written": written}


def test_study_has_two_named_directions_and_the_pareto_set(searched: dict[str, Any]) -> None:
    import optuna

    study = searched["study"]
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["mIoU", "flops_g"]  # what optuna-dashboard labels the axes with
    trials = study.trials
    assert sorted(t.params[CHANNELS] for t in trials) == [16, 64, 256] and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.values[1] for t in trials}) == 3  # the head width changes the FLOPs
    client = MlflowClient(searched["uri"])
    experiment = client.get_experiment_by_name("tiny").experiment_id
    for t in trials:  # the values told are the trial run's own metrics
        (run,) = client.search_runs([experiment], filter_string=f"tags.`ablate.optuna_trial` = '{t.number}'")
        assert t.values == [run.data.metrics["mIoU"], run.data.metrics["flops_g"]]
    pareto = searched["pareto"]
    assert {e["trial"] for e in pareto} == _front(trials, ["maximize", "minimize"])
    by_number = {t.number: t for t in trials}
    for entry in pareto:
        trial = by_number[entry["trial"]]
        assert entry["values"] == {"mIoU": trial.values[0], "flops_g": trial.values[1]}
        assert entry["overrides"] == {CHANNELS: trial.params[CHANNELS]} and entry["budget"] == {"crop": [48, 48]}
    mious = [e["values"]["mIoU"] for e in pareto]
    assert mious == sorted(mious, reverse=True)  # best mIoU first


def test_each_pareto_entry_is_an_includable_snippet(searched: dict[str, Any], tiny_data: Path) -> None:
    entry = searched["pareto"][-1]
    snippet = Path(entry["snippet"])
    assert snippet.parent.name == "pareto" and snippet.name == f"trial_{entry['trial']}.yaml"
    ladder = write_study(searched["tmp"] / "uses.yaml", tiny_data, include=[str(snippet)],
                         budget={k: v for k, v in BUDGET.items() if k != "crop"})
    spec = load_study(ladder).spec
    assert spec.overrides == {CHANNELS: entry["overrides"][CHANNELS]}
    assert tuple(spec.budget.crop) == (48, 48)


def test_the_searched_crop_is_the_trials_crop(searched: dict[str, Any]) -> None:
    from mmengine.config import Config

    client = MlflowClient(searched["uri"])
    experiment = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.optuna_trial` = '0'")
    assert run.data.params["crop"] == "(48, 48)"  # not the study's 32x32
    cfg = Config.fromfile(client.download_artifacts(run.info.run_id, "config.py", str(searched["tmp"])),
                          import_custom_modules=False)
    (crop,) = [t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "RandomCrop"]
    assert tuple(crop["crop_size"]) == (48, 48) and tuple(cfg.model.data_preprocessor.size) == (48, 48)


def test_a_constraint_takes_its_violators_off_the_front(searched: dict[str, Any]) -> None:
    constrained = searched["constrained"]
    trials = constrained.trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    client = MlflowClient(searched["uri"])
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                              filter_string="tags.`ablate.kind` = 'trial'")
    assert len(runs) == 3  # told from the MLflow runs of the first search, not trained again
    cheapest = min(trials, key=lambda t: t.values[1])
    assert cheapest.number in _front(trials, ["maximize", "minimize"])  # on the front without the constraint
    assert cheapest.constraints["flops_g"] > 0 and all(t.constraints["flops_g"] <= 0 for t in trials if t is not cheapest)
    feasible = _front(trials, ["maximize", "minimize"], feasible=lambda t: t.values[1] >= searched["bound"])
    assert {e["trial"] for e in searched["constrained_pareto"]} == feasible and cheapest.number not in feasible
    assert "# Pareto front of Optuna study 'tiny': mIoU (maximize), flops_g (minimize); constraints flops_g >=" in (
        searched["tmp"] / "runs-c" / "tiny" / "best_params.yaml").read_text()


def test_report_draws_the_pareto_front(searched: dict[str, Any]) -> None:
    out = searched["out"]
    names = {p.relative_to(out).as_posix() for p in searched["written"]}
    for index in (0, 1):  # the search, and the constrained one
        assert f"figures/search_{index}_tiny_pareto.png" in names, sorted(names)
        assert f"figures/search_{index}_tiny_history_mIoU.png" in names
        assert f"figures/search_{index}_tiny_history_flops_g.png" in names
    html = (out / "index.html").read_text()
    assert "tiny: Pareto front (mIoU vs flops_g)" in html
    front = sorted(e["trial"] for e in searched["pareto"])
    assert f"Pareto front of {len(front)} trial(s)" in html


@pytest.mark.parametrize(
    ("search", "field", "fragment"),
    [
        ({**SEARCH, "pruner": {"type": "median"}}, "search.pruner", "Optuna's pruners are single-objective; set pruner: {type: none}"),
        ({**SEARCH, "metric": "mIoU"}, "search.objectives", "objectives replaces metric"),
        ({**SEARCH, "constraints": {"flops_g": "about 60"}}, "search.constraints.flops_g", "is not a bound"),
        ({**SEARCH, "sampler": {"type": "tpe"}, "params": {"budget.crop": {"uniform": [16, 64]}}},
         "search.params.budget.crop", "takes {int"),
        ({**SEARCH, "objectives": {}}, "search.objectives", "at least 1"),
    ],
)
def test_bad_objective_blocks_exit_2(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
                                     search: dict, field: str, fragment: str) -> None:
    from ablate.cli import main

    path = write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, search=search)
    with pytest.raises(SystemExit) as info:
        main(["tune", str(path), "--dispatcher", "local", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
              "--runs-dir", str(tmp_path / "runs")])
    _, err = capsys.readouterr()
    assert info.value.code == 2, err
    assert f"{field}: " in err and fragment in err, err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_a_search_with_other_objectives_does_not_continue_the_study(searched: dict[str, Any], tiny_data: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    from ablate.cli import main

    single = write_study(searched["tmp"] / "single.yaml", tiny_data, budget=BUDGET,
                         search={**SEARCH, "objectives": {"mIoU": "maximize"}})
    with pytest.raises(SystemExit) as info:
        main(["tune", str(single), "--dispatcher", "local", "--tracking-uri", searched["uri"],
              "--runs-dir", str(searched["tmp"] / "runs")])
    _, err = capsys.readouterr()
    assert info.value.code == 2
    assert "search.objectives: Optuna study 'tiny'" in err and "optimises mIoU (maximize), flops_g (minimize)" in err


def test_a_trial_without_an_objective_metric_is_told_fail_with_a_note(searched: dict[str, Any], tiny_data: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """Last in this module: it retags the shared trial runs."""
    import optuna

    from ablate.cli import main

    path = write_study(searched["tmp"] / "energy.yaml", tiny_data, budget=BUDGET,
                       search={**SEARCH, "objectives": {"mIoU": "maximize", "energy_j": "minimize"}})
    storage = f"sqlite:///{searched['tmp'] / 'energy.db'}"
    with pytest.raises(SystemExit) as info:
        main(["tune", str(path), "--dispatcher", "local", "--tracking-uri", searched["uri"],
              "--runs-dir", str(searched["tmp"] / "runs-e"), "--storage", storage])
    _, err = capsys.readouterr()
    assert info.value.code == 1 and "no trial completed yet" in err
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL"] * 3
    assert all("metric 'energy_j' not logged by the trial" in t.user_attrs["note"] for t in trials)
    assert "told FAIL: trial 0 (optuna-0): metric 'energy_j' not logged" in err
    client = MlflowClient(searched["uri"])
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                              filter_string="tags.`ablate.kind` = 'trial'")
    assert all("energy_j" in r.data.tags["ablate.optuna_note"] for r in runs)
    assert not (searched["tmp"] / "runs-e" / "tiny" / "best_params.yaml").exists()
