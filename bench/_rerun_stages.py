"""Where a fully cached `ablate run` spends its time, step by step.

Repeats what `ablate run STUDY --tracking-uri URI --runs-dir DIR` does (the CLI's `run` command
and `run_study`), in the same order and through the same functions, with a clock between steps;
the parts of planning are timed by wrapping the functions `plan_trials` calls.

    python bench/_rerun_stages.py STUDY URI RUNS_DIR

Prints one JSON line: {"stages": {step: seconds}, "plan_parts": {function: [seconds, calls]}}.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

_T0 = time.perf_counter()


class Clock:
    def __init__(self) -> None:
        self.last = _T0
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.last, 4)
        self.last = now


PARTS: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PARTS[name][0] += time.perf_counter() - start
            PARTS[name][1] += 1

    return wrapper


def _wrap(owner: Any, attr: str, name: str) -> None:
    if hasattr(owner, attr):  # a function the tree no longer has is simply not timed
        setattr(owner, attr, timed(name, getattr(owner, attr)))


def instrument() -> None:
    """Wrap what loading and planning call, at the attribute each caller looks up at call time.

    Nothing here imports what the CLI would not (mmengine, mmseg, torch stay unimported on a
    rerun whose plan is cached, and the profile says so)."""
    from ablate import config, data
    from ablate.study import plan, plan_cache

    _wrap(config, "load_base", "config.load_base (mmengine Config.fromfile)")
    _wrap(config, "apply_budget", "config.apply_budget")
    _wrap(config, "apply_overrides", "config.apply_overrides")
    _wrap(config, "config_digest", "config.config_digest")
    _wrap(data, "dataset_fingerprint", "data.dataset_fingerprint")
    _wrap(plan, "ensure_data", "plan.ensure_data (synth check + check_layout)")
    _wrap(plan, "estimate_cost", "plan.estimate_cost (FLOPs cache)")
    _wrap(plan, "config_diff", "plan.config_diff")
    _wrap(plan.Planner, "plan", "Planner.plan (planning afresh: configs resolved, hashed, formatted)")
    _wrap(plan_cache, "inputs_digest", "plan_cache.inputs_digest (study, configs, code)")
    _wrap(plan_cache, "plan_key", "plan_cache.plan_key (inputs + data fingerprints)")
    _wrap(plan_cache, "load", "plan_cache.load (a stored plan)")
    _wrap(plan_cache, "store", "plan_cache.store")


HEAVY = ("torch", "mmseg", "mmengine", "yapf", "mlflow", "ray")


def main(argv: list[str]) -> int:
    study_file, uri, runs_dir = Path(argv[0]), argv[1], Path(argv[2])
    clock = Clock()
    import ablate.cli  # noqa: F401  (what the `ablate` entry point imports first)

    clock.lap("import ablate.cli (typer, rich, the study and tracking packages)")
    from ablate import study as studies
    from ablate import tracking
    from ablate.cli.trials import DispatcherKind, make_dispatcher
    from ablate.dispatch import drive
    from ablate.study import run as execute

    clock.lap("import ablate.study / tracking / dispatch")
    instrument()
    clock.lap("(instrumenting, not part of ablate)")
    loaded = studies.load_study(study_file, None)
    clock.lap("load_study (YAML + pydantic + file checks; configs parsed unless checked before)")
    uri = tracking.resolve_tracking_uri(uri)
    dispatcher = make_dispatcher(DispatcherKind.AUTO, None, loaded.spec.resources, None)  # as `ablate run` picks it
    trials = studies.plan_trials(loaded, runs_dir)
    clock.lap("plan_trials (a stored plan, or configs, data fingerprint, ids, costs)")
    import mlflow  # noqa: F401  (the CLI pays this inside RunStore.prepare)

    clock.lap("import mlflow (first paid by RunStore.prepare)")
    store = tracking.RunStore.open(uri)
    store.prepare()
    clock.lap("RunStore.prepare (MLflow SQLAlchemy store: schema check; WAL)")
    experiment_id = store.ensure_experiment(loaded.name)
    parent_run_id = store.start_parent_run(experiment_id, tracking.tags.Kind.STUDY, "bench stages", {})
    clock.lap("ensure_experiment + create parent run")
    hits = [execute.cached_result(store, experiment_id, spec) for spec in trials]
    clock.lap("cache lookups (find_trial_runs per trial)")
    pending = [spec for spec, hit in zip(trials, hits) if hit is None]
    drive(pending, dispatcher, None)  # type: ignore[arg-type]  (empty: returns before training anything)
    clock.lap("drive (nothing pending)")
    store.log_params(parent_run_id, {"n_trials": len(trials)})
    store.end_run(parent_run_id, "FINISHED")
    clock.lap("end parent run")
    print(json.dumps({
        "stages": clock.stages,
        "total_in_process_s": round(time.perf_counter() - _T0, 3),
        "pending": len(pending),
        "dispatcher": type(dispatcher).__name__,
        "imported": {name: name in sys.modules for name in HEAVY},
        "plan_parts": {k: [round(v[0], 4), v[1]] for k, v in sorted(PARTS.items(), key=lambda kv: -kv[1][0])},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
