"""`ablate tune`: an Optuna ask/tell loop over the same dispatcher `ablate run` uses.

Trials really run side by side (one per free slot), report their validation mIoU after every
evaluation through `OptunaPruningHook`, and are told back to Optuna as COMPLETE, PRUNED or FAIL.
The Optuna study lives in an RDB storage, so running the command again continues it; trials
left RUNNING by a crashed driver stop sending heartbeats, are failed after a grace period and
re-enqueued with the same parameters (they then resume from their checkpoints).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from ablate.errors import AblateError
from ablate.search.pruning import build_pruner
from ablate.search.space import search_space, split_params
from ablate.study.designs import SHAPE_TRIALS, TrialDesign, parse_tricks
from ablate.study.loader import Study
from ablate.trial.spec import TrialResult, TrialSpec, TrialState

HEARTBEAT_S = 20
GRACE_S = 60


@dataclass
class TuneOutcome:
    study: str
    optuna_study: str
    storage: str
    parent_run_id: str
    results: list[TrialResult] = field(default_factory=list)
    best_params: dict[str, Any] = field(default_factory=dict)
    best_value: Optional[float] = None
    best_trial: Optional[int] = None
    snippet: Optional[Path] = None


def default_storage(tracking_uri: str) -> str:
    """An Optuna sqlite file beside the MLflow sqlite store (or in the working directory)."""
    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(tracking_uri[len('sqlite:///'):]).parent / 'optuna.db'}"
    return f"sqlite:///{(Path.cwd() / 'optuna.db').resolve()}"


def _sampler(spec: Any, space: dict[str, Any], offset: int = 0) -> Any:
    """Seeded, and re-seeded past the trials already in the storage: a rerun must not propose
    the points of the first run again."""
    import optuna

    seed = None if spec.seed is None else spec.seed + offset
    if spec.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.type == "grid":
        grid = {k: list(d.choices) for k, d in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    # constant_liar: parallel workers do not all sample the same point while others run
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=spec.n_startup_trials)


def _design(study: Study, values: dict[str, Any], number: int) -> TrialDesign:
    overrides, trick_params = split_params(values)
    items: list[Any] = []
    for item in study.spec.search.recipe:
        name = item if isinstance(item, str) else next(iter(item))
        params = {} if isinstance(item, str) else dict(next(iter(item.values())) or {})
        params.update(trick_params.get(name, {}))
        items.append({name: params})
    tricks, problems = parse_tricks(items, "search.recipe")
    if problems:
        raise AblateError("; ".join(f"{p}: {m}" for p, m in problems))
    return TrialDesign(f"optuna-{number}", SHAPE_TRIALS, overrides=overrides, tricks=tricks, encoder=study.spec.encoder,
                       tags={"ablate.shape": "search"})


def write_snippet(path: Path, study: Study, best: Any, metric: str) -> Path:
    """The best parameters as a YAML snippet a ladder or zoo study can `include:`."""
    overrides, tricks = split_params(best.params)
    doc: dict[str, Any] = {}
    if overrides:
        doc["overrides"] = overrides
    if tricks:
        doc["trick_params"] = tricks
    header = f"# best of Optuna study '{study.name}': trial {best.number}, {metric} {best.value:.4f}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(doc, sort_keys=True))
    return path


def tune_study(
    study: Study,
    tracking_uri: str,
    dispatcher: Any,
    *,
    storage: Optional[str] = None,
    n_trials: Optional[int] = None,
    runs_dir: Path | str = "runs",
    on_result: Optional[Callable[[TrialSpec, TrialResult], None]] = None,
    on_planned: Optional[Callable[[list[TrialSpec]], None]] = None,
) -> TuneOutcome:
    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback, fail_stale_trials

    from ablate import tracking
    from ablate.dispatch import RunContext
    from ablate.study.execute import cached_result
    from ablate.study.plan import Planner

    search = study.spec.search
    if search is None:
        raise AblateError(f"{study.source}: no `search:` block; add one to tune this study")
    storage_url = storage or default_storage(tracking_uri)
    rdb = RDBStorage(storage_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                     failed_trial_callback=RetryFailedTrialCallback(max_retry=study.spec.resources.retries))
    space = search_space(search)
    ostudy = optuna.create_study(study_name=study.name, storage=rdb, load_if_exists=True, direction=search.direction,
                                 sampler=_sampler(search.sampler, space), pruner=build_pruner(search.pruner.model_dump(), study.spec.budget.iters))
    ostudy.sampler = _sampler(search.sampler, space, offset=len(ostudy.trials))
    with warnings.catch_warnings():  # optuna marks the heartbeat API experimental
        warnings.simplefilter("ignore")
        fail_stale_trials(ostudy)  # a crashed driver's trials: failed, then re-enqueued by the callback

    tracking.prepare_store(tracking_uri)
    client = tracking.client(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, study.name, tracking_uri)
    parent = client.create_run(experiment_id, run_name=f"{study.name} tune {time.strftime('%Y-%m-%d %H:%M:%S')}", tags={
        tracking.KIND_TAG: "tune", tracking.STUDY_TAG: study.name, "ablate.optuna_storage": storage_url,
        "ablate.optuna_study": study.name, "ablate.profile": study.profile or ""})
    outcome = TuneOutcome(study.name, study.name, storage_url, parent.info.run_id)
    context = RunContext(tracking_uri, experiment_id, parent.info.run_id)
    planner = Planner(study, Path(runs_dir))
    total = n_trials or search.n_trials
    deadline = time.time() + search.timeout if search.timeout else None
    asked = 0
    running: dict[str, tuple[Any, TrialSpec]] = {}

    def tell(trial: Any, spec: TrialSpec, result: TrialResult) -> None:
        value = result.metrics.get(search.metric)
        if result.state.is_done and value is not None:
            ostudy.tell(trial, value)
            state = "COMPLETE"
        elif result.state is TrialState.PRUNED:
            ostudy.tell(trial, state=optuna.trial.TrialState.PRUNED)
            state = "PRUNED"
        else:
            ostudy.tell(trial, state=optuna.trial.TrialState.FAIL)
            state = "FAIL"
        if result.run_id:
            client.set_tag(result.run_id, "ablate.optuna_state", state)
        outcome.results.append(result)
        if on_result is not None:
            on_result(spec, result)

    slots = dispatcher.open()
    try:
        while True:
            while asked < total and len(running) < slots and (deadline is None or time.time() < deadline):
                trial = ostudy.ask(space)
                asked += 1
                spec = planner.plan(_design(study, trial.params, trial.number), study.spec.seeds[0])
                spec = spec.with_runtime(
                    tags={**spec.tags, "ablate.optuna_study": study.name, "ablate.optuna_trial": str(trial.number),
                          "ablate.optuna_state": "RUNNING"},
                    hooks=(dict(type="OptunaPruningHook", storage=storage_url, study_name=study.name,
                                trial_id=trial._trial_id, metric=search.metric,
                                pruner=search.pruner.model_dump(), iters=study.spec.budget.iters),),
                )
                if on_planned is not None:
                    on_planned([spec])
                hit = cached_result(client, experiment_id, spec)
                if hit is not None:  # the same parameters already trained: tell Optuna at once
                    tell(trial, spec, hit)
                    continue
                dispatcher.submit(spec, context)
                running[spec.trial_id] = (trial, spec)
            if not running:
                break
            for spec, result in dispatcher.poll():
                trial, _ = running.pop(spec.trial_id)
                tell(trial, spec, result)
            for trial, _ in running.values():
                rdb.record_heartbeat(trial._trial_id)
    except BaseException:
        for trial, _ in running.values():
            ostudy.tell(trial, state=optuna.trial.TrialState.FAIL)
        client.set_terminated(parent.info.run_id, status="KILLED")
        raise
    finally:
        dispatcher.close()
    complete = [t for t in ostudy.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = ostudy.best_trial
        outcome.best_params, outcome.best_value, outcome.best_trial = dict(best.params), best.value, best.number
        outcome.snippet = write_snippet(Path(runs_dir).resolve() / study.name / "best_params.yaml", study, best, search.metric)
        client.log_artifact(parent.info.run_id, str(outcome.snippet))
        client.log_metric(parent.info.run_id, f"best_{search.metric}", best.value)
    client.set_terminated(parent.info.run_id, status="FINISHED")
    return outcome
