"""`ablate tune` with the in-process dispatcher: the CLI, the grid sampler, the hyperband and
successive-halving pruners really consulted, `search.timeout`, and an interrupt."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient

from ablate.dispatch import Completion, InProcessDispatcher
from ablate.search import default_storage, tune_study
from ablate.study import load_study
from ablate.trial import TrialSpec, TrialState
from tests.conftest import write_study

# Evaluated every iteration, so a pruner with min_resource 1 sees rungs at steps 1 and 3.
BUDGET = {"iters": 4, "val_interval": 1, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}
LR = "optim_wrapper.optimizer.lr"


def _optuna_trials(uri: str, name: str = "tiny") -> list:
    import optuna

    return optuna.load_study(study_name=name, storage=default_storage(uri)).trials


def test_cli_tune_local_grid_with_hyperband(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    from ablate.cli import main

    search = {"params": {LR: {"categorical": [0.01, 0.02]}}, "n_trials": 3,
              "sampler": {"type": "grid", "seed": 0},
              "pruner": {"type": "hyperband", "min_resource": 1, "reduction_factor": 3}}
    path = write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, search=search)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with pytest.raises(SystemExit) as info:
        main(["tune", str(path), "--dispatcher", "local", "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs")])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err[-2000:]
    trials = _optuna_trials(uri)
    # the grid has two points: both are asked once, then the search stops short of n_trials
    assert sorted(t.params[LR] for t in trials) == [0.01, 0.02]
    assert all(t.state.is_finished() and t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    for t in trials:  # hyperband's rungs (min_resource 1, factor 3: steps 1 or 3) were reached
        assert "completed_rung_0" in t.system_attrs, t.system_attrs
        assert 1 in t.intermediate_values
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert sorted(r.data.tags["ablate.optuna_trial"] for r in runs) == ["0", "1"]
    assert {r.data.tags["ablate.devices"] for r in runs} == {"cpu"}  # trained here, not on Ray
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert f"best: trial {best.number}, mIoU {best.value:.4f}" in out
    assert "start  optuna-0" in err and "optuna-1" in err  # the log's event lines (no TTY)


def test_successive_halving_and_the_timeout(tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate.search import tune as tune_module

    search = {"params": {LR: {"loguniform": [1.0e-3, 1.0e-1]}}, "n_trials": 3, "timeout": 60,
              "sampler": {"type": "random", "seed": 0},
              "pruner": {"type": "successive_halving", "min_resource": 1, "reduction_factor": 3}}
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, search=search))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    ended: list[str] = []

    # the search's clock: its 60 s pass the moment the first trial ends, however fast that was
    clock = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    clock["time"] = lambda: time.time() + (3600.0 if ended else 0.0)
    monkeypatch.setattr(tune_module, "time", SimpleNamespace(**clock))
    outcome = tune_study(study, uri, InProcessDispatcher(), runs_dir=tmp_path / "runs",
                         on_result=lambda spec, result: ended.append(spec.name))
    (result,) = outcome.results  # asked at once; when it ended the timeout had passed: no second ask
    assert result.state is TrialState.FINISHED, result.error
    (trial,) = _optuna_trials(uri)  # of n_trials 3
    assert {"completed_rung_0", "completed_rung_1"} <= set(trial.system_attrs)  # steps 1 and 3
    assert sorted(trial.intermediate_values) == [1, 2, 3]


class _InterruptOnPoll(InProcessDispatcher):
    """Ctrl-C arriving while the driver waits for a trial."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[str] = []

    def poll(self, timeout: float | None = None) -> list[Completion]:
        raise KeyboardInterrupt

    def cancel(self, trial_id: str) -> None:
        self.cancelled.append(trial_id)
        super().cancel(trial_id)


def test_an_interrupt_cancels_in_flight_trials_and_fails_them_in_optuna(tmp_path: Path, tiny_data: Path) -> None:
    import optuna

    search = {"params": {LR: {"loguniform": [1.0e-3, 1.0e-1]}}, "n_trials": 2, "pruner": {"type": "none"}}
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, search=search))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    dispatcher = _InterruptOnPoll()
    planned: list[TrialSpec] = []
    with pytest.raises(KeyboardInterrupt):
        tune_study(study, uri, dispatcher, runs_dir=tmp_path / "runs", on_planned=planned.extend)
    assert dispatcher.cancelled == [planned[0].trial_id]  # the one slot's trial
    (trial,) = _optuna_trials(uri)  # one slot: one asked, none left RUNNING
    assert trial.state == optuna.trial.TrialState.FAIL
    client = MlflowClient(uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                                   filter_string="tags.`ablate.kind` = 'tune'")
    assert parent.info.status == "KILLED"
