"""Train one trial with the real mmengine Runner, recorded in its MLflow child run.

Everything a trial does besides the Runner's own loop (metrics to MLflow, FLOPs, the final and
test-time-augmented evaluation, predictions, `best.pth`, the non-finite-loss guard, progress,
pruning) is an mmengine hook written into the trial's `config.py`; this module only opens the
run, writes that config, builds the Runner, and records how the trial ended. A failure is a
result (FAILED, traceback attached), never an exception: a crash of one trial never hides what
the others or this one already produced.

A trial of several workers (DDP) opens and closes its run here, once; its launcher
(`ablate.dispatch.workers`) runs `train_rank` in every worker, each the same Runner on the process
group the launcher set up, rank 0 writing what belongs to the trial.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ablate.config import keys
from ablate.errors import TrialPruned
from ablate.tracking import RunStore
from ablate.tracking import tags as T
from ablate.tracking.checkpoints import localize_checkpoints
from ablate.tracking.node import node_address
from ablate.trial.progress_file import write_progress
from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.util.text import one_line

CONFIG_FILE = "config.py"
# Imported by a dumped config.py (`custom_imports`), so mmseg's own tools can train it too.
CUSTOM_IMPORTS = [keys.REGISTRY_MODULE]
# Still RUNNING when the run is closed: an interrupt (Ctrl-C) went through; KILLED runs resume.
_STATUS = {TrialState.FINISHED: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.RUNNING: "KILLED"}


def runtime_hooks(spec: TrialSpec, tracking_uri: str | None, run_id: str | None) -> list[dict[str, Any]]:
    """The hooks every trial trains with, in the order they should see each event."""
    run = dict(tracking_uri=tracking_uri, run_id=run_id)
    return [
        dict(type="NonFiniteLossHook"),
        dict(type="ComplexityHook", image_size=list(spec.image_size), **run),
        dict(type="MLflowTrialHook", interval=spec.log_interval, **run),
        dict(type="EnvironmentHook", **run),
        dict(type="SystemMetricsHook", interval=spec.log_interval, **run),
        dict(type="ProgressFileHook", interval=max(1, spec.log_interval // 5)),
        dict(type="PredictionHook", **run),
        dict(type="TrainingPressureHook", **run),
        dict(type="SpeedHook", **run),
        dict(type="BestCheckpointHook"),
        # later trials load its best.pth, possibly on another machine: into the tracking store
        *([dict(type="StoredCheckpointHook", **run)] if spec.provides else []),
        dict(type="FinalEvalHook", **run),
        dict(type="PrecisionHook", **run),
        dict(type="LatencyHook", image_size=list(spec.image_size), **run),
        *(dict(h) for h in spec.hooks),
    ]


def write_config(
    spec: TrialSpec,
    tracking_uri: str | None,
    run_id: str | None,
    resume: bool,
    experiment_id: str | None = None,
    path: Path | None = None,
    dump: bool = True,
) -> Any:
    """The trial's complete runtime config, dumped as `config.py` (or at `path`) and returned loaded.

    `dump=False` leaves the dump to the Runner built from it, which writes the very same file
    (`Runner.dump_config`: the config's file name in its work dir); formatting a config takes
    yapf a noticeable part of a second, once is enough."""
    from mmengine.config import Config
    from mmengine.device import get_device

    from ablate.config.distributed import fit_to_world
    from ablate.config.precision import fit_to_device

    path = path or spec.work_dir / CONFIG_FILE
    path.write_text(spec.config_text)
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(spec.work_dir)
    imports = [m for m in (cfg.get("custom_imports") or {}).get("imports", []) if m not in CUSTOM_IMPORTS]
    cfg.custom_imports = dict(imports=imports + CUSTOM_IMPORTS, allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get("custom_hooks") or []) + runtime_hooks(spec, tracking_uri, run_id)
    cfg.resume = resume
    if resume:  # continue from this trial's own last checkpoint, not from the one a transfer starts with
        cfg.load_from = None
    if tracking_uri and experiment_id:  # weights named by URL or runs:/ URI, or left on another machine
        localize_checkpoints(cfg, spec.depends_on, tracking_uri, experiment_id)
    fit_to_device(cfg)  # AMP where the device runs it (`budget.amp`), pinned memory on CUDA
    fit_to_world(cfg, spec.workers, cuda=get_device() == "cuda")  # DDP: launcher, and what CPU workers lack
    if dump:
        cfg.dump(str(path))
    return cfg


def _forget_unrecorded_training(spec: TrialSpec) -> None:
    """Checkpoints in the work dir of a trial whose run the store does not know (a new store, or
    a run deleted in the UI) belong to no run: training starts over rather than resuming into
    a run that would hold no history."""
    (spec.work_dir / "last_checkpoint").unlink(missing_ok=True)


def _interrupted(exc: BaseException) -> bool:
    """True when `exc` was raised while an interrupt was being handled: it is the interrupt."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False


def device_name(model: Any) -> str:
    """`cuda:2` as the machine numbers it (Ray narrows CUDA_VISIBLE_DEVICES per trial), or `cpu`."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        return device.type
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    index = device.index or 0
    return f"cuda:{visible[index] if index < len(visible) else index}"


# Trains a trial of several workers whose run is open: (spec, tracking uri, experiment id, run id,
# resume); raises what a failed worker raised (`ablate.dispatch.workers.launch_on_workers`).
Launch = Callable[[TrialSpec, str, str, str, bool], None]


def world_tags(spec: TrialSpec) -> dict[str, str]:
    """How many processes trained it together, and the images per optimizer step over them."""
    return {T.WORLD_SIZE: str(spec.workers), T.TOTAL_BATCH: str(spec.total_batch)}


def train_trial(
    spec: TrialSpec,
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    launch: Launch | None = None,
) -> TrialResult:
    """Run one trial to completion; never raises for a failure of the trial (it is recorded).

    A trial of several workers (`spec.workers > 1`) is trained by `launch`, every worker running
    `train_rank`; the run is opened and closed here, once."""
    started = time.time()
    result = TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.RUNNING)
    store: RunStore | None = None
    runner: Any = None
    try:
        from mmengine.runner import Runner

        from ablate.registry import register_all

        register_all()
        store = RunStore.open(tracking_uri)
        result.run_id, resumed = store.open_trial_run(experiment_id, spec, parent_run_id)
        store.log_tags(result.run_id, {T.NODE: node_address()})
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        if not resumed:
            _forget_unrecorded_training(spec)
        has_checkpoint = (spec.work_dir / "last_checkpoint").exists()
        if spec.workers > 1:
            if launch is None:
                raise RuntimeError(f"a trial of {spec.workers} workers needs a launcher (the Ray dispatcher)")
            store.log_tags(result.run_id, {**world_tags(spec), **(extra_tags or {})})
            launch(spec, tracking_uri, experiment_id, result.run_id, has_checkpoint)
        else:
            cfg = write_config(
                spec, tracking_uri, result.run_id, resume=has_checkpoint, experiment_id=experiment_id, dump=False
            )
            try:
                runner = Runner.from_cfg(cfg)  # dumps config.py
            except Exception:
                cfg.dump(str(spec.work_dir / CONFIG_FILE))  # what the Runner would have written, for the run
                raise
            device = device_name(runner.model)
            store.log_tags(result.run_id, {T.DEVICES: device, **world_tags(spec), **(extra_tags or {})})
            write_progress(spec.work_dir, {"device": device, "iter": 0, "max_iters": spec.iters, "phase": "start"})
            runner.train()
        result.metrics = store.run_metrics(result.run_id)
        if "mIoU" not in result.metrics:
            raise RuntimeError("training ended without a final mIoU (no evaluation ran)")
        result.state = TrialState.FINISHED
    except TrialPruned as exc:
        result.state, result.error = TrialState.PRUNED, str(exc)
        if store is not None and result.run_id:
            result.metrics = store.run_metrics(result.run_id)
            store.log_tags(result.run_id, {T.PRUNED: str(exc)})
    except Exception as exc:  # a failed trial is a result, not a crash of the study
        if _interrupted(exc):  # e.g. mmengine turns a Ctrl-C inside its config formatting into a SyntaxError
            raise KeyboardInterrupt from exc
        result.state = TrialState.FAILED
        result.error = one_line(exc)
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        trace = spec.work_dir / "traceback.txt"
        trace.write_text(getattr(exc, "trace", "") or traceback.format_exc())  # a worker's own, for DDP
        if store is not None and result.run_id:
            store.log_tags(result.run_id, {T.FAILURE: result.error})
            store.log_file(result.run_id, trace)
    finally:
        result.duration_s = time.time() - started
        if store is not None and result.run_id:
            _close_run(store, result, spec, runner)
    return result


def train_rank(
    spec: TrialSpec,
    tracking_uri: str,
    experiment_id: str,
    run_id: str,
    resume: bool,
    placement: dict[str, str] | None = None,
) -> None:
    """One worker of a trial of several, inside the process group its launcher set up: the same
    config and Runner as every other worker (mmengine shards the data by rank). Rank 0 writes
    `config.py`, the run's device tags (each worker's, comma-joined, with `placement`'s) and the
    training log; the hooks keep everything else the trial writes on rank 0. A failure leaves
    this worker's traceback for the trial's result (`ablate.trial.ranks`)."""
    import tempfile

    from mmengine.dist import all_gather_object
    from mmengine.runner import Runner

    from ablate.registry import register_all
    from ablate.trial.ranks import record_failure, world_rank

    rank = world_rank()
    runner: Any = None
    try:
        register_all()
        with tempfile.TemporaryDirectory() as scratch:  # the other ranks' copy of the same config
            path = spec.work_dir / CONFIG_FILE if rank == 0 else Path(scratch) / CONFIG_FILE
            cfg = write_config(spec, tracking_uri, run_id, resume, experiment_id=experiment_id, path=path)
            runner = Runner.from_cfg(cfg)
        seen = all_gather_object({T.DEVICES: device_name(runner.model), **(placement or {})})
        if rank == 0:
            placed = {key: ",".join(part[key] for part in seen) for key in seen[0]}
            if cfg.get(keys.SYNC_BN_FALLBACK):
                placed[T.SYNC_BN_FALLBACK] = cfg[keys.SYNC_BN_FALLBACK]
                runner.logger.warning(cfg[keys.SYNC_BN_FALLBACK])
            RunStore.open(tracking_uri).log_tags(run_id, placed)
            runner.logger.info(
                f"{spec.workers} workers, batch {spec.batch_size} per worker: {spec.total_batch} "
                f"images per step, on {placed[T.DEVICES]}"
            )
            write_progress(
                spec.work_dir, {"device": placed[T.DEVICES], "iter": 0, "max_iters": spec.iters, "phase": "start"}
            )
        runner.train()
    except BaseException:
        record_failure(spec.work_dir, rank)
        raise
    finally:
        if rank == 0 and runner is not None:
            from ablate.tracking.system import stop_monitors

            stop_monitors(runner)
            logs = sorted(Path(runner.log_dir).glob("*.log"))
            RunStore.open(tracking_uri).log_files(run_id, logs, "logs")


def _close_run(store: RunStore, result: TrialResult, spec: TrialSpec, runner: Any) -> None:
    try:
        if runner is not None:
            from ablate.tracking.system import stop_monitors

            stop_monitors(runner)
        files = [spec.work_dir / CONFIG_FILE]
        store.log_files(str(result.run_id), files)
        if runner is not None:
            store.log_files(str(result.run_id), sorted(Path(runner.log_dir).glob("*.log")), "logs")
    finally:
        store.end_run(
            str(result.run_id), _STATUS.get(result.state, "FAILED"), {T.DURATION_S: f"{result.duration_s:.1f}"}
        )
