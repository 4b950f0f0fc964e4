"""Fixed costs of one `ablate run`, each measured in a fresh process (as the CLI pays them).

    python bench/_probe.py import            # importing the CLI module
    python bench/_probe.py ray               # embedded Ray: import, start, first worker, stop
    python bench/_probe.py mlflow DB_PATH    # a fresh sqlite store: import, create, experiment, run
    python bench/_probe.py flops CONFIG H W  # FLOPs of a config's model (build + count)
    python bench/_probe.py trial CONFIG WORK_DIR H W  # the steps a trial adds around train()

Each prints one JSON line of seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def _lap(marks: dict[str, float], key: str, since: float) -> float:
    now = time.perf_counter()
    marks[key] = round(now - since, 3)
    return now


def probe_import() -> dict[str, Any]:
    marks: dict[str, float] = {}
    t = time.perf_counter()
    import ablate.cli  # noqa: F401

    _lap(marks, "import_ablate_cli_s", t)
    return marks


def _worker_imports() -> float:
    """What a trial's Ray worker imports before it can train."""
    t = time.perf_counter()
    import ablate.trial.train  # noqa: F401
    from ablate.registry import register_all

    register_all()
    import mlflow  # noqa: F401

    return time.perf_counter() - t


def probe_ray() -> dict[str, Any]:
    marks: dict[str, float] = {}
    t = time.perf_counter()
    import ray

    t = _lap(marks, "import_ray_s", t)
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    t = _lap(marks, "ray_init_s", t)
    inside = ray.get(ray.remote(_worker_imports).remote())
    t = _lap(marks, "first_task_s", t)
    marks["worker_imports_s"] = round(inside, 3)
    ray.shutdown()
    _lap(marks, "ray_shutdown_s", t)
    return marks


def probe_mlflow(db: str) -> dict[str, Any]:
    marks: dict[str, float] = {}
    t = time.perf_counter()
    from ablate import tracking

    t = _lap(marks, "import_ablate_s", t)
    import mlflow  # noqa: F401

    t = _lap(marks, "import_mlflow_s", t)
    uri = f"sqlite:///{db}"
    store = tracking.RunStore.open(uri)
    store.prepare()
    t = _lap(marks, "create_store_s", t)
    experiment = store.ensure_experiment("probe")
    t = _lap(marks, "create_experiment_s", t)
    run_id = store.start_parent_run(experiment, tracking.tags.Kind.STUDY, "probe", {tracking.tags.TRIAL_ID: "x"})
    store.end_run(run_id, "FINISHED")
    t = _lap(marks, "create_and_end_run_s", t)
    store.find_trial_runs(experiment, "x")
    _lap(marks, "find_trial_runs_s", t)
    return marks


def probe_flops(config: str, height: int, width: int) -> dict[str, Any]:
    """Building the model and counting its FLOPs, apart (a trial counts on its built model)."""
    marks: dict[str, float] = {}
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from ablate import analysis
    from ablate import config as configs
    from ablate.registry import register_all

    register_all()
    cfg = configs.load_base(config)
    configs.use_plain_bn(cfg)
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance("bench-probe", scope_name="mmseg")
    model_cfg = cfg.model.copy()
    model_cfg.pop("pretrained", None)
    t = time.perf_counter()
    model = MODELS.build(model_cfg)
    t = _lap(marks, "build_model_s", t)
    info = analysis.count_model(model, height, width)
    t = _lap(marks, "count_s", t)
    analysis.count_model(model, height, width)
    _lap(marks, "count_again_s", t)
    marks["flops_g"] = info.flops_g
    return marks


def probe_trial_parts(config: str, work_dir: str, height: int, width: int) -> dict[str, Any]:
    """The per-trial steps `train_trial` adds around `runner.train()`, on a built (untrained)
    Runner: MLflow run creation with params, the complexity count (first, then from the cache),
    artifact logging and the metric writes of a 400-iteration trial. Predictions are taken inside
    the final evaluation (no separate pass), so they have no step of their own here."""
    import os
    from pathlib import Path

    from ablate import analysis, tracking
    from ablate.registry import register_all

    register_all()
    from mlflow.entities import Param
    from mmengine.config import Config
    from mmengine.runner import Runner

    marks: dict[str, float] = {}
    root = Path(work_dir)
    root.mkdir(parents=True, exist_ok=True)
    os.environ["ABLATE_CACHE_DIR"] = str(root / "cache")
    uri = f"sqlite:///{root / 'probe.db'}"
    store = tracking.RunStore.open(uri)
    store.prepare()
    experiment = store.ensure_experiment("probe")
    cfg = Config.fromfile(config)
    cfg.work_dir = str(root)
    t = time.perf_counter()
    run_id = store.start_parent_run(experiment, tracking.tags.Kind.TRIAL, "probe", {tracking.tags.TRIAL_ID: "x"})
    store.log_batch(run_id, params=[Param(f"p{i}", str(i)) for i in range(30)])
    t = _lap(marks, "mlflow_create_run_and_params_s", t)
    runner = Runner.from_cfg(cfg)
    t = _lap(marks, "runner_build_s", t)
    analysis.cached_complexity(cfg, height, width, model=runner.model)
    t = _lap(marks, "complexity_first_count_s", t)
    analysis.cached_complexity(cfg, height, width, model=runner.model)
    t = _lap(marks, "complexity_cached_s", t)
    store.log_file(run_id, config)
    t = _lap(marks, "log_artifacts_s", t)
    for step in range(20):  # what MLflowTrialHook writes for 400 iterations logged every 20
        store.log_metrics(run_id, {"loss": 1.0, "lr": 0.01, "decode.loss_ce": 1.0}, step=step)
    _lap(marks, "mlflow_20_metric_batches_s", t)
    return marks


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "import":
        out = probe_import()
    elif kind == "ray":
        out = probe_ray()
    elif kind == "mlflow":
        out = probe_mlflow(argv[1])
    elif kind == "trial":
        out = probe_trial_parts(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif kind == "flops":
        out = probe_flops(argv[1], int(argv[2]), int(argv[3]))
    else:
        raise SystemExit(f"unknown probe {kind}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
