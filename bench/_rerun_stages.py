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


def instrument() -> None:
    """Wrap what planning calls, at the attribute each caller looks up at call time."""
    import mmengine.config

    from ablate import config, data
    from ablate.study import plan

    config.load_base = timed("config.load_base", config.load_base)
    config.apply_budget = timed("config.apply_budget", config.apply_budget)
    config.apply_overrides = timed("config.apply_overrides", config.apply_overrides)
    config.config_digest = timed("config.config_digest", config.config_digest)
    data.dataset_fingerprint = timed("data.dataset_fingerprint", data.dataset_fingerprint)
    plan.ensure_data = timed("plan.ensure_data (synth check + check_layout)", plan.ensure_data)
    plan.estimate_cost = timed("plan.estimate_cost (FLOPs cache)", plan.estimate_cost)
    plan.config_diff = timed("plan.config_diff", plan.config_diff)
    pretty = mmengine.config.Config.pretty_text
    mmengine.config.Config.pretty_text = property(timed("Config.pretty_text (yapf)", pretty.fget))


def main(argv: list[str]) -> int:
    study_file, uri, runs_dir = Path(argv[0]), argv[1], Path(argv[2])
    clock = Clock()
    import ablate.cli  # noqa: F401  (what the `ablate` entry point imports first)

    clock.lap("import ablate.cli (torch via the mmcv bridge, typer, rich)")
    from ablate import study as studies
    from ablate import tracking
    from ablate.dispatch import RayDispatcher, drive
    from ablate.study import run as execute

    clock.lap("import ablate.study / tracking / dispatch")
    instrument()
    clock.lap("(instrumenting, not part of ablate)")
    import mmseg.models  # noqa: F401  (the CLI pays this inside the first `mmseg::` config load)

    clock.lap("import mmseg (first paid by Config.fromfile on an mmseg:: base)")
    import mlflow  # noqa: F401  (the CLI pays this inside prepare_store)

    clock.lap("import mlflow (first paid by prepare_store)")
    loaded = studies.load_study(study_file, None)
    clock.lap("load_study (YAML + pydantic + file checks)")
    uri = tracking.resolve_tracking_uri(uri)
    dispatcher = RayDispatcher()
    trials = studies.plan_trials(loaded, runs_dir)
    clock.lap("plan_trials (configs, data fingerprint, ids, costs)")
    tracking.prepare_store(uri)
    clock.lap("prepare_store (MLflow SQLAlchemy store: schema check; WAL)")
    client = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(client, loaded.name, uri)
    parent = client.create_run(experiment_id, run_name="bench stages", tags={tracking.tags.KIND: "study"})
    clock.lap("ensure_experiment + create parent run")
    lookup = getattr(execute, "cached_result", None) or getattr(execute, "_cached")  # its name in older trees
    hits = [lookup(client, experiment_id, spec) for spec in trials]
    clock.lap("cache lookups (find_trial_runs per trial)")
    pending = [spec for spec, hit in zip(trials, hits) if hit is None]
    drive(pending, dispatcher, None)  # type: ignore[arg-type]  (empty: returns before touching Ray)
    clock.lap("drive (nothing pending)")
    client.log_param(parent.info.run_id, "n_trials", len(trials))
    client.set_terminated(parent.info.run_id, status="FINISHED")
    clock.lap("end parent run")
    print(json.dumps({
        "stages": clock.stages,
        "total_in_process_s": round(time.perf_counter() - _T0, 3),
        "pending": len(pending),
        "plan_parts": {k: [round(v[0], 4), v[1]] for k, v in sorted(PARTS.items(), key=lambda kv: -kv[1][0])},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
