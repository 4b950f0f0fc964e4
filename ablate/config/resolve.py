"""From a base mmseg config and a study's budget/data/seed to the config one trial trains with.

Only the settings a study owns are touched (iterations, intervals, batch, crop, image scale,
data root, seed, workers); everything else stays exactly as the mmseg config says.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ablate.config.precision import request_amp
from ablate.errors import ConfigError

# Keys that change how a trial is watched (or how fast it runs), not what it learns: left out
# of the trial id. The precision (`keys.AMP`) is not among them.
_COSMETIC_TOP = {
    "work_dir",
    "log_level",
    "visualizer",
    "vis_backends",
    "log_processor",
    "env_cfg",
    "launcher",
    "custom_imports",
    "resume",
    "compile",
}
_COSMETIC_DATALOADER = {"num_workers", "persistent_workers", "pin_memory"}
_COSMETIC_HOOKS = {"logger", "checkpoint", "timer", "visualization"}


_PARSED: dict[tuple[str, int, int], Any] = {}


def load_base(path: str | Path) -> Any:
    """Load an mmseg config file (with `mmseg::` inheritance) into an mmengine Config.

    The config's `custom_imports` are not imported here (that would import torch and mmseg just
    to read settings): whatever builds a model registers ablate's modules first. Each file is
    parsed once per process (validation and planning both need it); callers get their own copy.
    """
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        try:
            _PARSED[key] = Config.fromfile(str(path), import_custom_modules=False)
        except Exception as exc:  # mmengine raises many types for a broken config
            raise ConfigError(f"{path}: cannot load config: {exc}") from exc
    return copy.deepcopy(_PARSED[key])


def _walk(node: Any, visit: Callable[[dict], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, visit)


def _set_transforms(cfg: Any, kind: str, key: str, value: Any) -> None:
    def visit(node: dict) -> None:
        if node.get("type") == kind and key in node:
            node[key] = value

    _walk(cfg._cfg_dict, visit)


def _dataloaders(cfg: Any) -> list[Any]:
    return [cfg[k] for k in ("train_dataloader", "val_dataloader", "test_dataloader") if cfg.get(k)]


def apply_budget(
    cfg: Any,
    *,
    iters: int,
    val_interval: int | None,
    batch_size: int,
    log_interval: int,
    workers: int,
    crop: tuple[int, int] | None = None,
    image_scale: tuple[int, int] | None = None,
    amp: str = "off",
    compile: bool = False,
) -> None:
    """Set the training budget, shapes and speed settings a study controls, in place.

    `amp` is only recorded here (the worker applies it: `ablate.config.precision`); `compile`
    is mmengine's own switch. cuDNN picks its fastest kernels for the fixed training crop.
    """
    old_max = int(cfg.get("train_cfg", {}).get("max_iters", iters))
    interval = val_interval or iters
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=interval)
    # Schedulers spanning the old budget now span the new one; short ones (warm-up) are clipped.
    schedulers = cfg.get("param_scheduler") or []
    for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
        end = sched.get("end")
        if end is None or end >= old_max or end > iters:
            sched["end"] = iters if end is None or end >= old_max else min(end, iters)
    hooks = cfg.setdefault("default_hooks", {})
    if "logger" in hooks:
        hooks["logger"]["interval"] = log_interval
    if "checkpoint" in hooks:
        hooks["checkpoint"].update(interval=interval, by_epoch=False)
    cfg.train_dataloader.batch_size = batch_size
    for loader in _dataloaders(cfg):
        loader["num_workers"] = workers
        loader["persistent_workers"] = workers > 0
    if crop is not None:
        _set_transforms(cfg, "RandomCrop", "crop_size", tuple(crop))
        if cfg.model.get("data_preprocessor") is not None:
            cfg.model.data_preprocessor["size"] = tuple(crop)
    if image_scale is not None:
        for kind in ("RandomResize", "Resize"):
            _set_transforms(cfg, kind, "scale", tuple(image_scale))
    request_amp(cfg, amp)
    if compile:  # like `amp: off`, False adds nothing (a config's own setting stays)
        cfg.compile = True
    cfg.env_cfg = {**(cfg.get("env_cfg") or {}), "cudnn_benchmark": True}


def set_data_root(cfg: Any, root: Path) -> None:
    """Point every dataloader (and wrapped datasets) at `root`."""

    def visit(node: dict) -> None:
        if "data_root" in node:
            node["data_root"] = str(root)

    for loader in _dataloaders(cfg):
        _walk(loader, visit)
    cfg.data_root = str(root)


_SYNC_BN = ("SyncBN", "MMSyncBN")


def has_sync_bn(cfg: Any) -> bool:
    found: list[bool] = []
    _walk(cfg._cfg_dict, lambda node: found.append(node.get("type") in _SYNC_BN))
    return any(found)


def use_plain_bn(cfg: Any, world_size: int = 1) -> None:
    """SyncBN needs a process group: a trial of one process trains with BN (the same maths), one
    of several workers (DDP) keeps SyncBN, whose statistics span the total batch."""
    if world_size > 1:
        return

    def visit(node: dict) -> None:
        if node.get("type") in _SYNC_BN:
            node["type"] = "BN"

    _walk(cfg._cfg_dict, visit)


PER_CLASS_METRIC = "PerClassIoUMetric"
_IOU_METRICS = ("IoUMetric", "mmseg.IoUMetric")


def use_per_class_metric(cfg: Any) -> None:
    """mmseg's `IoUMetric` in the val/test evaluators becomes ablate's subclass, every setting kept
    (iou_metrics, ignore_index, nan_to_num, ...): per-class IoU and per-image scores for any dataset."""
    from ablate.config.keys import METRICS_MODULE

    changed = False
    for name in ("val_evaluator", "test_evaluator"):
        node = cfg.get(name)
        for metric in node if isinstance(node, (list, tuple)) else [node]:
            if isinstance(metric, dict) and metric.get("type") in _IOU_METRICS:
                metric["type"] = PER_CLASS_METRIC
                changed = True
    if changed:
        add_import(cfg, METRICS_MODULE)


def base_config(base: str | Path, *, data_root: Path, budget: dict[str, Any], world_size: int = 1) -> Any:
    """A study's base config on its data and budget, before the trial's own overrides, tricks and
    seed (the plan shares it between the trials of one base)."""
    cfg = load_base(base)
    use_per_class_metric(cfg)
    set_data_root(cfg, data_root)
    apply_budget(cfg, **budget)
    use_plain_bn(cfg, world_size=world_size)
    return cfg


def _canonical(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _canonical(v) for k, v in sorted(node.items(), key=lambda kv: str(kv[0]))}
    if isinstance(node, (list, tuple)):
        return [_canonical(v) for v in node]
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    return repr(node)


def config_digest(cfg: Any, *, data_fingerprint: str, extra: dict[str, Any] | None = None) -> str:
    """Short hash of everything that changes a trial's result, and nothing cosmetic.

    The data root is replaced by the dataset's content fingerprint, so moving the data or
    renaming a trial keeps its id, while editing one label changes it.
    """
    plain = _canonical(cfg.to_dict())
    for key in _COSMETIC_TOP:
        plain.pop(key, None)
    plain.pop("data_root", None)
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = plain.get(name)
        if isinstance(loader, dict):
            for key in _COSMETIC_DATALOADER:
                loader.pop(key, None)

    def blank_root(node: dict) -> None:
        if "data_root" in node:
            node["data_root"] = data_fingerprint

    _walk(plain, blank_root)
    hooks = plain.get("default_hooks")
    if isinstance(hooks, dict):
        for key in _COSMETIC_HOOKS:
            hooks.pop(key, None)
    payload = json.dumps({"config": plain, "data": data_fingerprint, **(extra or {})}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def add_import(cfg: Any, module: str) -> None:
    """Name a module in `custom_imports`, so the dumped config builds under a plain Runner too."""
    imports = dict(cfg.get("custom_imports") or {"imports": [], "allow_failed_imports": False})
    if module not in imports["imports"]:
        imports["imports"] = [*imports["imports"], module]
    cfg.custom_imports = imports
