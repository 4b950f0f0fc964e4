"""`ablate tune`: search space parsing, pruning, parallel trials, resumable Optuna storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.errors import StudyError
from ablate.search import default_storage, search_space, tune_study
from ablate.study import load_study
from ablate.trial import TrialState
from tests.conftest import write_study
from tests.gate import barrier_overrides

BUDGET = {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}


@pytest.fixture(scope="module")
def ray2():
    """One local Ray of 2 CPUs for the module: the dispatchers below join it instead of each
    starting (and stopping) their own, and its warm workers keep mmseg imported between tests."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _search(**extra: object) -> dict:
    return {"params": {"optim_wrapper.optimizer.lr": {"loguniform": [1.0e-4, 1.0e-1]}},
            "recipe": [{"ohem": {}}], **extra}


@pytest.mark.parametrize(
    ("spec", "kind", "check"),
    [
        ({"loguniform": [1.0e-6, 1.0e-3]}, "FloatDistribution", lambda d: d.log and d.low == 1e-6),
        ({"uniform": [0.3, 0.9]}, "FloatDistribution", lambda d: not d.log and d.high == 0.9),
        ({"uniform": [0.0, 1.0], "step": 0.25}, "FloatDistribution", lambda d: d.step == 0.25),
        ({"int": [1, 8], "log": True}, "IntDistribution", lambda d: d.log and d.high == 8),
        ({"categorical": [0.5, 0.7]}, "CategoricalDistribution", lambda d: d.choices == (0.5, 0.7)),
    ],
)
def test_yaml_to_distributions(tmp_path: Path, tiny_data: Path, spec: dict, kind: str, check) -> None:
    search = {"params": {"tricks.ohem.thresh": spec}, "recipe": ["ohem"]}
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, search=search))
    dist = search_space(study.spec.search)["tricks.ohem.thresh"]
    assert type(dist).__name__ == kind and check(dist)


@pytest.mark.parametrize(
    ("params", "extra", "field", "fragment"),
    [
        ({"x.lr": {"loguniform": [0, 1]}}, {}, "search.params.x.lr", "0 < low < high"),
        ({"optim_wrapper.optimizer.lr": {"normal": [0, 1]}}, {}, "search.params.optim_wrapper.optimizer.lr", ""),
        ({"optim_wrapper.optimizer.lrr": {"uniform": [0, 1]}}, {}, "search.params.optim_wrapper.optimizer.lrr", "did you mean 'lr'"),
        ({"tricks.ohem.threshold": {"uniform": [0.1, 0.9]}}, {}, "search.params.tricks.ohem.threshold", "threshold"),
        ({"tricks.aux_head.loss_weight": {"uniform": [0.1, 0.9]}}, {}, "search.params.tricks.aux_head.loss_weight", "not in search.recipe"),
        ({"tricks.ohem.thresh": {"uniform": [0.1, 0.9]}}, {"sampler": {"type": "grid"}}, "search", "categorical"),
    ],
)
def test_bad_search_specs_are_field_errors(tmp_path: Path, tiny_data: Path, params: dict, extra: dict, field: str, fragment: str) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, search={"params": params, "recipe": ["ohem"], **extra})
    with pytest.raises(StudyError) as info:
        load_study(path)
    problems = dict(info.value.problems)
    match = [k for k in problems if k.startswith(field)]
    assert match, problems
    assert fragment in problems[match[0]]


def test_designed_case_is_pruned(ray2, tmp_path: Path, tiny_data: Path) -> None:
    """A finished trial that scored 99 at every step makes the median pruner stop a real one."""
    import optuna
    from optuna.distributions import FloatDistribution

    from ablate.dispatch import RayDispatcher

    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET,
                                   search=_search(pruner={"type": "median", "n_startup_trials": 1})))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    storage = default_storage(uri)
    ostudy = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    ostudy.add_trial(optuna.trial.create_trial(
        params={"optim_wrapper.optimizer.lr": 0.01},
        distributions={"optim_wrapper.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)},
        value=99.0, intermediate_values={2: 99.0}))
    outcome = tune_study(study, uri, RayDispatcher(num_cpus=2), n_trials=1, runs_dir=tmp_path / "runs")
    (result,) = outcome.results
    assert result.state is TrialState.PRUNED, result.error
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.data.tags["ablate.optuna_state"] == "PRUNED" and run.data.tags["ablate.optuna_trial"] == "1"
    assert max(m.step for m in MlflowClient(uri).get_metric_history(result.run_id, "loss")) == 2  # stopped early
    assert [m.step for m in MlflowClient(uri).get_metric_history(result.run_id, "mIoU")] == [2]  # and recorded
    assert optuna.load_study(study_name="tiny", storage=storage).trials[1].state == optuna.trial.TrialState.PRUNED


@pytest.mark.timeout(600)  # three trials on Ray over two searches
def test_parallel_trials_overlap_and_rerun_continues(ray2, tmp_path: Path, tiny_data: Path) -> None:
    from ablate.dispatch import RayDispatcher

    search = _search(pruner={"type": "none"}, sampler={"type": "random", "seed": 1})
    # the first two trials wait for each other before training: overlap however loaded the machine is
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, search=search,
                                   resources={"cpus_per_trial": 1},
                                   overrides=barrier_overrides(tmp_path / "barrier", 2)))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    first = tune_study(study, uri, RayDispatcher(num_cpus=2, cpus_per_trial=1), n_trials=2, runs_dir=tmp_path / "runs")
    assert [r.state for r in first.results] == [TrialState.FINISHED] * 2, [r.error for r in first.results]
    client = MlflowClient(uri)
    runs = [client.get_run(r.run_id) for r in first.results]
    assert max(r.info.start_time for r in runs) < min(r.info.end_time for r in runs)  # two slots, really parallel
    assert first.best_value == max(r.metrics["mIoU"] for r in first.results)
    assert first.snippet is not None and "optim_wrapper.optimizer.lr" in first.snippet.read_text()
    second = tune_study(study, uri, RayDispatcher(num_cpus=2, cpus_per_trial=1), n_trials=1, runs_dir=tmp_path / "runs")
    experiment = client.get_experiment_by_name("tiny")
    children = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    assert sorted(r.data.tags["ablate.optuna_trial"] for r in children) == ["0", "1", "2"]
    assert {r.data.tags["ablate.optuna_state"] for r in children} == {"COMPLETE"}
    assert {r.data.tags[tracking.tags.PARENT] for r in children} == {first.parent_run_id, second.parent_run_id}


def test_trial_left_running_by_a_crashed_driver_is_failed_and_retried(
    ray2, tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import optuna
    from optuna.storages import RDBStorage

    from ablate.dispatch import RayDispatcher
    from ablate.search import tune as tune_module

    monkeypatch.setattr(tune_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tune_module, "GRACE_S", 1)
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, budget=BUDGET, search=_search(pruner={"type": "none"})))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    storage = RDBStorage(default_storage(uri), heartbeat_interval=1, grace_period=1)
    crashed = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    orphan = crashed.ask(search_space(study.spec.search))  # the "dead driver's" trial
    storage.record_heartbeat(orphan._trial_id)
    deadline = time.monotonic() + 60  # no heartbeat since: stale once the grace period has passed
    while orphan._trial_id not in storage._get_stale_trial_ids(crashed._study_id):
        assert time.monotonic() < deadline, "the orphan never went stale"
        time.sleep(0.1)
    outcome = tune_study(study, uri, RayDispatcher(num_cpus=2), n_trials=1, runs_dir=tmp_path / "runs")
    trials = optuna.load_study(study_name="tiny", storage=default_storage(uri)).trials
    assert trials[0].state == optuna.trial.TrialState.FAIL  # never left RUNNING
    retry = trials[1]
    assert retry.system_attrs.get("failed_trial") == 0 and retry.params == orphan.params
    assert retry.state == optuna.trial.TrialState.COMPLETE and outcome.results[0].state is TrialState.FINISHED
