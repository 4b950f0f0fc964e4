"""Dispatch through `drive`: on a local Ray with 4 logical GPUs (placement, order, retries,
concurrency, cancel) and in this process (a real trial; identical trial ids trained once)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.dispatch import (
    Capacity,
    Completion,
    Dispatcher,
    InProcessDispatcher,
    RayDispatcher,
    Resources,
    RunContext,
    drive,
)
from ablate.study import load_study, run_study
from ablate.trial import TrialResult, TrialSpec, TrialState
from tests.conftest import write_study
from tests.gate import barrier_overrides


@pytest.fixture(scope="module")
def ray4():
    import ray

    ray.init(address="local", num_cpus=4, num_gpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


CONTEXT = RunContext("sqlite:///unused", "0")


def _spec(name: str, cost: float, deps: tuple[str, ...] = (), sleep_s: float = 0.2) -> TrialSpec:
    return TrialSpec(study="s", name=name, trial_id=name, seed=0, base="b.py", config_text="", overrides={},
                     work_dir=Path("/nonexistent") / name, data_root=Path("/data"), data_fingerprint="x", iters=1,
                     batch_size=1, image_size=(8, 8), depends_on=deps, cost=cost, params={"sleep_s": sleep_s})


def _sleepy(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Sleep-only stand-in (allowed for the ordering test): fails when its name says so."""
    import time as _time

    start = _time.time()
    _time.sleep(spec.params["sleep_s"])
    state = TrialState.FAILED if spec.name.startswith("bad") else TrialState.FINISHED
    return TrialResult(spec.trial_id, spec.name, spec.seed, state, metrics={"start": start, "attempt": attempt},
                       error="boom" if state is TrialState.FAILED else None)


def test_order_dependencies_first_then_longest_chain_first(ray4) -> None:
    started: list[str] = []
    trials = [_spec("small", 1), _spec("big", 9), _spec("mid", 5), _spec("child", 7, ("small",))]
    results = drive(trials, RayDispatcher(max_concurrent=1, trainable=_sleepy), CONTEXT,
                    on_start=lambda s, a: started.append(s.name))
    # big (9) first; small (1) carries child (7): its chain of 8 outranks mid (5)
    assert started == ["big", "small", "child", "mid"]
    assert all(r.state is TrialState.FINISHED for r in results)


def test_failure_is_retried_then_failed_and_dependents_skip(ray4) -> None:
    trials = [_spec("bad", 5), _spec("after-bad", 1, ("bad",)), _spec("fine", 3)]
    starts: list[tuple[str, int]] = []
    results = {r.name: r for r in drive(trials, RayDispatcher(trainable=_sleepy), CONTEXT, retries=1,
                                        on_start=lambda s, a: starts.append((s.name, a)))}
    assert ("bad", 2) in starts and ("after-bad", 1) not in starts
    assert results["bad"].state is TrialState.FAILED and results["bad"].metrics["attempt"] == 2
    assert results["after-bad"].state is TrialState.FAILED and "dependency" in results["after-bad"].error
    assert results["fine"].state is TrialState.FINISHED


@pytest.mark.timeout(600)  # four real trials start on Ray at once
def test_concurrent_real_trials_get_distinct_gpus_and_overlap(ray4, tmp_path: Path, tiny_data: Path) -> None:
    trials = [{"name": f"lr{i}", "overrides": {"optim_wrapper.optimizer.lr": 0.01 * (i + 1)}} for i in range(4)]
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=trials,
                                   overrides=barrier_overrides(tmp_path / "barrier", 4),  # all four train at once
                                   budget={"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32],
                                           "log_interval": 1, "workers": 0}))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp_path / "runs", dispatcher=RayDispatcher(gpus_per_trial=1))
    assert [r.state for r in outcome.results] == [TrialState.FINISHED] * 4, [r.error for r in outcome.results]
    client = MlflowClient(uri)
    runs = [client.get_run(r.run_id) for r in outcome.results]
    assert sorted(r.data.tags["ablate.gpu_ids"] for r in runs) == ["0", "1", "2", "3"]
    assert max(r.info.start_time for r in runs) < min(r.info.end_time for r in runs)  # really in parallel
    assert {r.data.tags["ablate.devices"] for r in runs} == {"cpu"}


def test_real_failure_retried_once_in_one_run(ray4, tmp_path: Path, tiny_data: Path) -> None:
    trials = [{"name": "nan", "overrides": {"optim_wrapper.optimizer.lr": 1.0e30}}, {"name": "ok"}]
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=trials, resources={"retries": 1}))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp_path / "runs", dispatcher=RayDispatcher())
    results = {r.name: r for r in outcome.results}
    assert results["ok"].state is TrialState.FINISHED
    assert results["nan"].state is TrialState.FAILED and "non-finite loss" in results["nan"].error
    nan_runs = tracking.RunStore.open(uri).find_trial_runs(outcome.experiment_id, results["nan"].trial_id)
    assert len(nan_runs) == 1  # the retry reused the run: no duplicates
    assert nan_runs[0].tags["ablate.attempt"] == "2" and nan_runs[0].status == "FAILED"


class _Recorded:
    """A real dispatcher, with the cancels it was asked for written down."""

    def __init__(self, inner: Dispatcher) -> None:
        self.inner = inner
        self.cancelled: list[str] = []

    def open(self) -> Capacity:
        return self.inner.open()

    def demand(self, spec: TrialSpec) -> Resources:
        return self.inner.demand(spec)

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        self.inner.submit(spec, context, attempt)

    def poll(self, timeout: float | None = None) -> list[Completion]:
        return self.inner.poll(timeout)

    def cancel(self, trial_id: str) -> None:
        self.cancelled.append(trial_id)
        self.inner.cancel(trial_id)

    def close(self) -> None:
        self.inner.close()


def test_an_interrupt_cancels_the_trials_in_flight(ray4) -> None:
    dispatcher = _Recorded(RayDispatcher(max_concurrent=2, trainable=_sleepy))
    assert isinstance(dispatcher, Dispatcher)

    def interrupt_second(spec: TrialSpec, attempt: int) -> None:
        if spec.name == "second":  # Ctrl-C while "long" trains
            raise KeyboardInterrupt

    t = time.time()
    with pytest.raises(KeyboardInterrupt):
        drive([_spec("long", 9, sleep_s=60), _spec("second", 1)], dispatcher, CONTEXT, on_start=interrupt_second)
    assert dispatcher.cancelled == ["long", "second"] and time.time() - t < 30


def test_a_cancelled_task_gives_its_gpus_back(ray4) -> None:
    pool = RayDispatcher(gpus_per_trial=4, trainable=_sleepy)
    assert pool.open().total.gpus == 4  # one trial's worth
    pool.submit(_spec("long", 1, sleep_s=60), CONTEXT, 1)
    assert pool.poll(timeout=0.5) == []
    pool.cancel("long")
    pool.submit(_spec("next", 1), CONTEXT, 1)  # needs all 4 GPUs: starts only once "long" is gone
    t = time.time()
    (done,) = pool.poll(timeout=55)  # a busy machine starts workers slowly; "long" alone would hold 60 s
    assert done.spec.name == "next" and done.result.state is TrialState.FINISHED and time.time() - t < 55
    pool.close()


def test_in_process_trains_identical_trial_ids_once_for_every_name(tmp_path: Path, tiny_data: Path) -> None:
    """A pretraining entry identical to a trial of the study: one run, served to both names."""
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, pretrain=[{"name": "same"}],
                                   trials=[{"name": "base"}], resources={"retries": 0}))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    starts: list[str] = []
    outcome = run_study(study, uri, runs_dir=tmp_path / "runs", dispatcher=InProcessDispatcher(),
                        on_start=lambda spec, attempt: starts.append(spec.name))
    results = {r.name: r for r in outcome.results}
    assert starts == ["base"] and sorted(results) == ["base", "pretrain-same"]
    assert results["base"].state is TrialState.FINISHED, results["base"].error
    assert results["pretrain-same"].run_id == results["base"].run_id
    assert results["pretrain-same"].miou == results["base"].miou is not None
    client = MlflowClient(uri)
    (run,) = client.search_runs([outcome.experiment_id], filter_string="tags.`ablate.kind` = 'trial'")
    tags = run.data.tags
    assert tags["ablate.trial_name"] == "base" and tags["ablate.aliases"] == "pretrain-same"
    assert tags["ablate.pretrain"] == "same" and tags["ablate.attempt"] == "1" and tags["ablate.devices"] == "cpu"
    assert (tmp_path / "runs" / "tiny" / results["base"].trial_id / "best.pth").exists()  # what transfers load
    again = run_study(study, uri, runs_dir=tmp_path / "runs")
    assert {r.name: r.state for r in again.results} == {"pretrain-same": TrialState.CACHED, "base": TrialState.CACHED}
