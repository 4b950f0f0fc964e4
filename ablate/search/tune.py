"""`ablate tune`: an Optuna ask/tell loop over the same scheduler and dispatchers `ablate run` uses.

Trials really run side by side (one per free slot of any dispatcher: Ray, or in-process), report
their validation mIoU after every evaluation through `OptunaPruningHook`, and are told back to
Optuna as COMPLETE, PRUNED or FAIL; two asks with the same parameters train once and are both told.
Several `search.objectives` make a multi-objective study (no pruning: Optuna's pruners take one
objective) whose Pareto set, feasible under `search.constraints`, is the search's result.
An interrupt cancels the trials in flight and tells Optuna they failed.
The Optuna study lives in an RDB storage, so running the command again continues it; trials
left RUNNING by a crashed driver stop sending heartbeats, are failed after a grace period and
re-enqueued with the same parameters (they then resume from their checkpoints).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate import tracking
from ablate.dispatch.protocol import Dispatcher, EventSink, StartSink
from ablate.errors import AblateError
from ablate.search.objectives import objectives_text, score
from ablate.search.pareto import PARETO_FOLDER, ParetoEntry, pareto_entries, write_pareto, write_snippet
from ablate.search.pruners import build_pruner
from ablate.search.space import search_space, searched_crop, split_params
from ablate.search.storage import default_storage
from ablate.study.designs import SHAPE_TRIALS, TrialDesign, parse_tricks
from ablate.study.study import Study
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
    best_value: float | None = None
    best_trial: int | None = None
    snippet: Path | None = None
    objectives: list[str] = field(default_factory=list)
    pareto: list[ParetoEntry] = field(default_factory=list)  # multi-objective: the Pareto set
    notes: list[str] = field(default_factory=list)  # trials told FAIL for a metric they did not log


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


def _tell(ostudy: Any, trial: Any, value: float | list[float] | None = None, state: Any = None) -> None:
    """`Study.tell`, without the RuntimeError GridSampler raises after the last grid point: it
    calls `Study.stop`, which only an optimize loop accepts (the trial is stored by then)."""
    import optuna

    try:
        ostudy.tell(trial, value, state=state)
    except RuntimeError:
        if not isinstance(ostudy.sampler, optuna.samplers.GridSampler):
            raise


def _grid_exhausted(ostudy: Any) -> bool:
    """Every grid point evaluated: asking again would only repeat one."""
    import optuna

    sampler = ostudy.sampler
    return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(ostudy)


def _design(study: Study, values: dict[str, Any], number: int) -> TrialDesign:
    """The trial a sampled point describes; a searched crop is its budget's crop, set wherever
    the study's `budget.crop` is (pipeline, preprocessor, trick context, cost estimate)."""
    overrides, trick_params = split_params(values)
    crop = searched_crop(values)
    search = study.spec.search
    assert search is not None  # a sampled point comes from the study's `search:` block
    items: list[Any] = []
    for item in search.recipe:
        name = item if isinstance(item, str) else next(iter(item))
        params = {} if isinstance(item, str) else dict(next(iter(item.values())) or {})
        params.update(study.spec.trick_params.get(name, {}))  # the study's trick_params, as everywhere,
        params.update(trick_params.get(name, {}))  # but the values being searched win
        items.append({name: params})
    tricks, problems = parse_tricks(items, "search.recipe")
    if problems:
        raise AblateError("; ".join(f"{p}: {m}" for p, m in problems))
    return TrialDesign(
        f"optuna-{number}",
        SHAPE_TRIALS,
        overrides=overrides,
        tricks=tricks,
        encoder=study.spec.encoder,
        tags={tracking.tags.SHAPE: tracking.tags.SHAPE_SEARCH},
        budget={"crop": crop} if crop else {},
    )


def _open_study(study: Study, rdb: Any, space: dict[str, Any]) -> Any:
    """Create the Optuna study, or continue the one in the storage when it optimises the same
    objectives; its metric names label the dashboard's and the report's axes."""
    import optuna

    search = study.spec.search
    assert search is not None
    ostudy = optuna.create_study(
        study_name=study.name,
        storage=rdb,
        load_if_exists=True,
        directions=search.directions,
        sampler=_sampler(search.sampler, space),
        pruner=build_pruner(search.pruner.model_dump(), study.spec.budget.iters),
    )
    have = [d.name.lower() for d in ostudy.directions]
    names = ostudy.metric_names
    if have != search.directions or (names is not None and list(names) != search.objective_names):
        shown = ", ".join(f"{n} ({d})" for n, d in zip(names or [f"objective {i}" for i in range(len(have))], have))
        raise AblateError(
            f"search.objectives: Optuna study '{study.name}' in {rdb.url} optimises {shown}, not "
            f"{objectives_text(search)}; pass another --storage, or delete that study (optuna delete-study "
            f"--study-name {study.name} --storage {rdb.url})"
        )
    if names is None:
        with warnings.catch_warnings():  # optuna marks metric names experimental
            warnings.simplefilter("ignore")
            ostudy.set_metric_names(search.objective_names)
    return ostudy


def tune_study(
    study: Study,
    tracking_uri: str,
    dispatcher: Dispatcher | None = None,
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    runs_dir: Path | str = "runs",
    on_start: StartSink | None = None,
    on_result: EventSink | None = None,
    on_planned: Callable[[list[TrialSpec]], None] | None = None,
) -> TuneOutcome:
    """Ask, train and tell until `n_trials` (default `search.n_trials`) were asked or
    `search.timeout` seconds passed; `dispatcher` defaults to training in this process."""
    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback, fail_stale_trials

    from ablate.dispatch import InProcessDispatcher, RunContext, drive
    from ablate.study.plan import Planner
    from ablate.study.run import cached_result

    search = study.spec.search
    if search is None:
        raise AblateError(f"{study.source}: no `search:` block; add one to tune this study")
    storage_url = storage or default_storage(tracking_uri)
    rdb = RDBStorage(
        storage_url,
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        failed_trial_callback=RetryFailedTrialCallback(max_retry=study.spec.resources.retries),
    )
    space = search_space(search)
    ostudy = _open_study(study, rdb, space)
    ostudy.sampler = _sampler(search.sampler, space, offset=len(ostudy.trials))
    with warnings.catch_warnings():  # optuna marks the heartbeat API experimental
        warnings.simplefilter("ignore")
        fail_stale_trials(ostudy)  # a crashed driver's trials: failed, then re-enqueued by the callback

    store = tracking.RunStore.open(tracking_uri)
    store.prepare()
    experiment_id = store.ensure_experiment(study.name)
    parent_run_id = store.start_parent_run(
        experiment_id,
        tracking.tags.Kind.TUNE,
        study.name,
        {
            tracking.tags.OPTUNA_STORAGE: storage_url,
            tracking.tags.OPTUNA_STUDY: study.name,
            tracking.tags.PROFILE: study.profile or "",
        },
    )
    outcome = TuneOutcome(study.name, study.name, storage_url, parent_run_id, objectives=search.objective_names)
    context = RunContext(tracking_uri, experiment_id, parent_run_id)
    planner = Planner(study, Path(runs_dir))
    total = n_trials or search.n_trials
    deadline = time.time() + search.timeout if search.timeout else None
    asked = 0
    untold: dict[str, tuple[Any, str]] = {}  # trial name -> (Optuna trial, trial id) until told

    def tell(spec: TrialSpec, result: TrialResult) -> None:
        trial, _ = untold.pop(spec.name)
        scores = score(search, result.metrics)
        note = ""
        if result.state.is_done or result.state is TrialState.PRUNED:
            for name, value in scores.violations.items():  # before tell: Optuna reads them when told
                trial.set_constraint(name, value)
        if result.state.is_done and not scores.missing:
            assert scores.values is not None
            _tell(ostudy, trial, scores.values if search.multi_objective else scores.values[0])
            state = "COMPLETE"
        elif result.state is TrialState.PRUNED:
            _tell(ostudy, trial, state=optuna.trial.TrialState.PRUNED)
            state = "PRUNED"
        else:
            if result.state.is_done:  # trained, but without a metric Optuna needs
                note = scores.note
                trial.set_user_attr("note", note)
                outcome.notes.append(f"trial {trial.number} ({spec.name}): {note}")
            _tell(ostudy, trial, state=optuna.trial.TrialState.FAIL)
            state = "FAIL"
        if result.run_id:
            store.log_tags(
                result.run_id,
                {tracking.tags.OPTUNA_STATE: state, **({tracking.tags.OPTUNA_NOTE: note} if note else {})},
            )
        outcome.results.append(result)
        if on_result is not None:
            on_result(spec, result)

    def feed(free: int) -> list[TrialSpec]:
        """Up to `free` new trials to train; parameters MLflow already holds are told at once.
        Nothing once `n_trials` were asked, the timeout passed or a grid is exhausted: the search
        then ends."""
        nonlocal asked
        specs: list[TrialSpec] = []
        while (
            len(specs) < free
            and asked < total
            and (deadline is None or time.time() < deadline)
            and not _grid_exhausted(ostudy)
        ):
            trial = ostudy.ask(space)
            asked += 1
            rdb.record_heartbeat(trial._trial_id)  # from now on a dead driver's trial shows as stale
            spec = planner.plan(_design(study, trial.params, trial.number), study.spec.seed_list[0])
            # Optuna cannot report intermediate values of a multi-objective trial: no pruning hook
            pruning = (
                ()
                if search.multi_objective
                else (
                    dict(
                        type="OptunaPruningHook",
                        storage=storage_url,
                        study_name=study.name,
                        trial_id=trial._trial_id,
                        metric=search.objective_names[0],
                        pruner=search.pruner.model_dump(),
                        iters=study.spec.budget.iters,
                    ),
                )
            )
            spec = spec.with_runtime(
                tags={
                    **spec.tags,
                    tracking.tags.OPTUNA_STUDY: study.name,
                    tracking.tags.OPTUNA_TRIAL: str(trial.number),
                    tracking.tags.OPTUNA_STATE: "RUNNING",
                },
                hooks=pruning,
            )
            untold[spec.name] = (trial, spec.trial_id)
            if on_planned is not None:
                on_planned([spec])
            hit = cached_result(store, experiment_id, spec)
            if hit is not None:  # the same parameters already trained: tell Optuna at once
                tell(spec, hit)
                continue
            specs.append(spec)
        return specs

    stop_beating = threading.Event()

    def heartbeat() -> None:
        """Trials being trained stay fresh in the storage, however long a poll blocks."""
        while not stop_beating.wait(HEARTBEAT_S):
            for trial, _ in list(untold.values()):
                try:
                    rdb.record_heartbeat(trial._trial_id)
                except Exception:  # a busy storage: the next beat comes soon enough
                    pass

    beating = threading.Thread(target=heartbeat, name="optuna-heartbeat", daemon=True)
    beating.start()
    try:
        drive((), dispatcher or InProcessDispatcher(), context, retries=0, on_start=on_start, on_result=tell, feed=feed)
    except BaseException:
        for trial, _ in untold.values():
            _tell(ostudy, trial, state=optuna.trial.TrialState.FAIL)
        store.mark_interrupted(experiment_id, {tid for _, tid in untold.values()})
        store.end_run(parent_run_id, "KILLED")
        raise
    finally:
        stop_beating.set()
        beating.join()
    _conclude(outcome, ostudy, study, Path(runs_dir).resolve() / study.name / "best_params.yaml", store)
    store.end_run(parent_run_id, "FINISHED")
    return outcome


def _conclude(outcome: TuneOutcome, ostudy: Any, study: Study, path: Path, store: tracking.RunStore) -> None:
    """The search's result into `outcome`, `best_params.yaml` and the tune parent run: the best
    feasible trial of one objective, or the Pareto set of several."""
    search = study.spec.search
    assert search is not None
    run_id = outcome.parent_run_id
    if search.multi_objective:
        entries = pareto_entries(ostudy, search)
        if not entries:
            return
        outcome.snippet, outcome.pareto = write_pareto(path, study.name, search, entries)
        store.log_file(run_id, outcome.snippet)
        store.log_folder(run_id, outcome.snippet.parent / PARETO_FOLDER, PARETO_FOLDER)
        store.log_metrics(run_id, {"pareto_trials": len(entries)}, step=0)
        return
    try:
        best = ostudy.best_trial
    except ValueError:  # nothing complete yet, or (with constraints) nothing feasible
        return
    metric = search.objective_names[0]
    outcome.best_params, outcome.best_value, outcome.best_trial = dict(best.params), best.value, best.number
    outcome.snippet = write_snippet(path, study.name, best, metric)
    store.log_file(run_id, outcome.snippet)
    store.log_metrics(run_id, {f"best_{metric}": best.value}, step=0)
