"""Train one trial with the real mmengine Runner and record it in its MLflow child run.

The run is created (or found again, for a resumed trial) before training starts, metrics stream in
through `MLflowTrialHook`, and the run ends FINISHED or FAILED with its traceback attached: a
crash of one trial never hides what the others or this one already produced.
"""

from __future__ import annotations

import copy
import json
import math
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from ablate.trial.spec import TrialResult, TrialSpec, TrialState

CONFIG_FILE = "config.py"
PER_CLASS_FILE = "per_class_iou.json"


def _prepare_run(mlflow_client: Any, experiment_id: str, parent_run_id: Optional[str], spec: TrialSpec) -> str:
    """The trial's child run: an unfinished one of the same trial id is reused (resume)."""
    from ablate import tracking

    for run in tracking.find_trial_runs(mlflow_client, experiment_id, spec.trial_id):
        if run.info.status in ("RUNNING", "FAILED", "KILLED", "SCHEDULED"):
            mlflow_client.update_run(run.info.run_id, status="RUNNING")
            return run.info.run_id
    tags = {
        tracking.TRIAL_TAG: spec.trial_id,
        tracking.STUDY_TAG: spec.study,
        tracking.KIND_TAG: "trial",
        "ablate.trial_name": spec.name,
        "ablate.seed": str(spec.seed),
        **spec.tags,
    }
    if parent_run_id:
        tags[tracking.PARENT_TAG] = parent_run_id
    run = mlflow_client.create_run(experiment_id, run_name=f"{spec.name}-s{spec.seed}", tags=tags)
    params = {
        "trial_name": spec.name,
        "base": spec.base,
        "seed": spec.seed,
        "iters": spec.iters,
        "batch_size": spec.batch_size,
        "dataset": f"{spec.data_root.name}@{spec.data_fingerprint}",
        **spec.params,
        **{f"override.{k}": v for k, v in spec.overrides.items()},
    }
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in tracking.param_items(params).items()]
    for start in range(0, len(items), 100):
        mlflow_client.log_batch(run.info.run_id, params=items[start : start + 100])
    return run.info.run_id


def _per_class(metrics: dict[str, float]) -> dict[str, Optional[float]]:
    return {
        k.split(".", 1)[1]: (None if math.isnan(v) else v)
        for k, v in metrics.items()
        if k.startswith("IoU.")
    }


def _runtime_config(spec: TrialSpec, tracking_uri: str, run_id: str, log_interval: int) -> Any:
    from mmengine.config import Config

    # Loaded from the work dir's own file, so mmengine's dump of it keeps the name config.py.
    path = spec.work_dir / CONFIG_FILE
    path.write_text(spec.config_text)
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(spec.work_dir)
    hooks = list(cfg.get("custom_hooks") or [])
    hooks.append(dict(type="MLflowTrialHook", tracking_uri=tracking_uri, run_id=run_id, interval=log_interval))
    hooks.append(dict(type="ProgressFileHook", interval=max(1, log_interval // 5)))
    hooks.extend(dict(h) for h in spec.hooks)
    cfg.custom_hooks = hooks
    # An interrupted trial continues from its last checkpoint in its own work dir.
    cfg.resume = (spec.work_dir / "last_checkpoint").exists()
    return cfg


def execute_trial(
    spec: TrialSpec,
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: Optional[str] = None,
    extra_tags: Optional[dict[str, str]] = None,
) -> TrialResult:
    """Run one trial to completion; never raises for a training failure (it is recorded)."""
    from ablate import tracking
    from ablate.registry import register_all

    register_all()

    started = time.time()
    mlflow_client = tracking.client(tracking_uri)
    run_id = _prepare_run(mlflow_client, experiment_id, parent_run_id, spec)
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    result = TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.RUNNING, run_id=run_id)
    runner = None
    try:
        from mmengine.runner import Runner

        cfg = _runtime_config(spec, tracking_uri, run_id, spec.log_interval)
        runner = Runner.from_cfg(cfg)
        devices = {"ablate.devices": _device_name(runner.model), **(extra_tags or {})}
        for key, value in devices.items():
            mlflow_client.set_tag(run_id, key, value)
        (spec.work_dir / "progress.json").write_text(json.dumps({"device": devices["ablate.devices"], "iter": runner.iter}))
        _log_complexity(mlflow_client, run_id, runner, spec)
        runner.train()
        hook = next(h for h in runner.hooks if type(h).__name__ == "MLflowTrialHook")
        result.metrics = dict(hook.last_metrics)
        _keep_best_checkpoint(runner, spec)
        from ablate.trial.predictions import PREDICTIONS_DIR, save_predictions

        pred_dir = spec.work_dir / PREDICTIONS_DIR
        if save_predictions(runner, pred_dir):
            mlflow_client.log_artifacts(run_id, str(pred_dir), artifact_path=PREDICTIONS_DIR)
        if cfg.get("ablate_final_eval") == "tta":
            result.metrics = _final_tta_eval(cfg, spec, mlflow_client, run_id)
        per_class = spec.work_dir / PER_CLASS_FILE
        per_class.write_text(json.dumps(_per_class(result.metrics), indent=2))
        mlflow_client.log_artifact(run_id, str(per_class))
        result.state = TrialState.FINISHED
    except Exception as exc:  # a failed trial is a result, not a crash of the study
        if type(exc).__name__ == "TrialPruned":  # optuna's signal, raised by OptunaPruningHook
            result.state, result.error = TrialState.PRUNED, str(exc)
            result.metrics = dict(next((h.last_metrics for h in (runner.hooks if runner else [])
                                        if type(h).__name__ == "MLflowTrialHook"), {}))
            mlflow_client.set_tag(run_id, "ablate.pruned", str(exc))
            return result
        result.state = TrialState.FAILED
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        tb = spec.work_dir / "traceback.txt"
        tb.write_text(traceback.format_exc())
        mlflow_client.set_tag(run_id, "ablate.failure", result.error)
        mlflow_client.log_artifact(run_id, str(tb))
    finally:
        result.duration_s = time.time() - started
        _log_files(mlflow_client, run_id, spec.work_dir, runner)
        mlflow_client.set_tag(run_id, "ablate.duration_s", f"{result.duration_s:.1f}")
        status = {TrialState.FINISHED: "FINISHED", TrialState.PRUNED: "KILLED"}.get(result.state, "FAILED")
        mlflow_client.set_terminated(run_id, status=status)
    return result


def _device_name(model: Any) -> str:
    """`cuda:2` as the machine numbers it (Ray narrows CUDA_VISIBLE_DEVICES per trial), or `cpu`."""
    import os

    device = next(model.parameters()).device
    if device.type != "cuda":
        return device.type
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    index = device.index or 0
    return f"cuda:{visible[index] if index < len(visible) else index}"


def _keep_best_checkpoint(runner: Any, spec: TrialSpec) -> None:
    """`best.pth` in the work dir: the stable name later trials transfer from."""
    import os
    import shutil

    best = runner.message_hub.get_info("best_ckpt")
    source = Path(best) if best else spec.work_dir / f"iter_{spec.iters}.pth"
    if not source.exists():
        return
    target = spec.best_checkpoint
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _final_tta_eval(cfg: Any, spec: TrialSpec, mlflow_client: Any, run_id: str) -> dict[str, float]:
    """Test-time augmentation on the final weights, the way mmseg's test tool does it.

    Logged under the usual metric names at the last step (so they are the run's final values);
    the single-scale numbers stay in the history and as `ss_mIoU`.
    """
    from mmengine.runner import Runner

    from ablate import tracking

    test_cfg = copy.deepcopy(cfg)
    test_cfg.test_dataloader.dataset.pipeline = test_cfg.tta_pipeline
    test_cfg.tta_model.module = test_cfg.model
    test_cfg.model = test_cfg.tta_model
    test_cfg.load_from = str(spec.work_dir / f"iter_{spec.iters}.pth")
    test_cfg.resume = False
    test_cfg.work_dir = str(spec.work_dir / "tta")
    test_cfg.custom_hooks = []
    metrics = Runner.from_cfg(test_cfg).test()
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    single = mlflow_client.get_run(run_id).data.metrics.get("mIoU")
    extra = {"ss_mIoU": single} if single is not None else {}
    tracking.log_metrics(mlflow_client, run_id, {**numbers, **extra}, step=spec.iters)
    mlflow_client.set_tag(run_id, "ablate.final_eval", "tta")
    return numbers


def _log_complexity(mlflow_client: Any, run_id: str, runner: Any, spec: TrialSpec) -> None:
    """FLOPs/params once per run, at the dataset's image size (skipped if already logged)."""
    from ablate import analysis, tracking

    if "flops_g" in mlflow_client.get_run(run_id).data.metrics:
        return
    height, width = spec.image_size
    info = analysis.count_model(runner.model, height, width)
    tracking.log_metrics(mlflow_client, run_id, {"flops_g": info.flops_g, "params_m": info.params_m}, step=0)


def _log_files(mlflow_client: Any, run_id: str, work_dir: Path, runner: Any) -> None:
    config = work_dir / CONFIG_FILE
    if config.exists():
        mlflow_client.log_artifact(run_id, str(config))
    log_dir = Path(runner.log_dir) if runner is not None else None
    if log_dir is not None:
        for log_file in log_dir.glob("*.log"):
            mlflow_client.log_artifact(run_id, str(log_file), artifact_path="logs")
