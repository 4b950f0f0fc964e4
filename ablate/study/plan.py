"""Designs -> trials: one resolved config, id, work dir and cost per (design, seed)."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ablate.study.datasets import DataChecks, check_heads, data_plan, data_plans, ensure_data
from ablate.study.designs import SHAPE_PRETRAIN, SHAPE_TRIALS, SHAPE_ZOO, TrialDesign, dependency_graph, provider
from ablate.study.estimate import speed_key
from ablate.study.schema import BudgetSpec, DataSpec
from ablate.study.study import Study
from ablate.tracking import tags as T
from ablate.trial.spec import TrialSpec
from ablate.util.graph import dependency_order

# Shown instead of a trial id that depends on data `run` has yet to generate.
AFTER_DATA = "(after data)"


def id_known(trial_id: str) -> bool:
    """False for a trial planned before its data exists: its id hashes the data's content."""
    return not trial_id.startswith(AFTER_DATA)


def _image_size(cfg: Any, scale: tuple[int, int] | None) -> tuple[int, int]:
    """(h, w) FLOPs are counted at: the study's image scale, else the test Resize's scale."""
    if scale is None:
        for step in cfg.get("test_dataloader", cfg.val_dataloader).dataset.pipeline:
            if step.get("type") == "Resize":
                scale = tuple(step["scale"])
                break
    if scale is None:
        raise ValueError("no image scale: set data.image_scale in the study")
    width, height = scale
    return (int(height), int(width))


def model_params(cfg: Any) -> dict[str, Any]:
    """Short, human-readable identity of the model for MLflow params."""
    model = cfg.model
    out = {"model": model.get("type", "?")}
    for part in ("backbone", "decode_head", "auxiliary_head"):
        node = model.get(part)
        if isinstance(node, dict):
            out[part] = node.get("type", "?")
        elif isinstance(node, list):
            out[part] = ",".join(n.get("type", "?") for n in node)
    return out


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def config_diff(before: Any, after: Any) -> dict[str, Any]:
    """Dotted keys (and JSON-able values) whose value differs between two configs."""
    a = _flatten(json.loads(json.dumps(before.to_dict(), default=str)))
    b = _flatten(json.loads(json.dumps(after.to_dict(), default=str)))
    return {k: v for k, v in b.items() if a.get(k, object()) != v and not k.startswith("randomness.")}


def set_encoder(cfg: Any, checkpoint: Path | str) -> None:
    """ImageNet weights for the backbone only, through mmengine's init_cfg seam."""
    cfg.model.pop("pretrained", None)
    cfg.model.backbone["init_cfg"] = dict(type="Pretrained", checkpoint=str(checkpoint))


class Planner:
    """Resolves designs into trials, remembering which checkpoint each pretrain entry provides."""

    def __init__(self, study: Study, runs_dir: Path, generate_data: bool = True, with_cost: bool = True) -> None:
        from ablate import config

        self.study = study
        # False for `plan`: data still to be generated is described, and ids hashing it are unknown
        self.generate_data = generate_data
        self.with_cost = with_cost  # False: cost 0.0, no model built (`plan --no-cost`)
        self.runs_root = runs_dir.resolve() / study.name
        self.config = config
        self._bases: dict[tuple[str, str, str], Any] = {}
        self.provided: dict[str, tuple[str, Path | str]] = {}  # pretrain name -> (trial id, checkpoint)
        # zoo row, seed -> (trial id, checkpoint); a lookup without a seed finds no row
        self.rows: dict[tuple[str, int | None], tuple[str, Path]] = {}
        self.models: dict[str, Any] = {}  # trained pretrain entry / zoo row -> its resolved model config
        self.data_checks = DataChecks()
        for entry in study.spec.pretrain:
            if entry.checkpoint is not None:
                self.provided[entry.name] = ("", study.checkpoint(entry.checkpoint))  # a path, URL or runs:/

    def _budget(self, design: TrialDesign) -> BudgetSpec:
        budget = self.study.spec.budget
        if design.pretrain is not None and design.pretrain.budget is not None:
            budget = BudgetSpec(**{**budget.model_dump(), **design.pretrain.budget.model_dump(exclude_unset=True)})
        if design.budget:
            budget = BudgetSpec(**{**budget.model_dump(), **design.budget})
        return budget

    def _data(self, design: TrialDesign) -> DataSpec:
        if design.pretrain is not None and design.pretrain.data is not None:
            return design.pretrain.data
        return self.study.spec.data

    def _placement(self, design: TrialDesign) -> tuple[int, float, float | None]:
        """(workers, GPUs and CPUs per worker): the study's `resources`, or the entry's own."""
        spec = self.study.spec
        if design.pretrain is not None:
            entry: Any = design.pretrain
        else:
            entries = spec.zoo if design.shape == SHAPE_ZOO else spec.trials if design.shape == SHAPE_TRIALS else []
            entry = next((e for e in entries if e.name == design.name), None)
        return spec.resources.placement(getattr(entry, "resources", None))

    def _base(self, path: Path, data: DataSpec, data_root: Path, budget: BudgetSpec, workers: int = 1) -> Any:
        key = (str(path), str(data_root), budget.model_dump_json() + str(data.image_scale) + f"/{min(workers, 2)}")
        if key not in self._bases:
            self._bases[key] = self.config.base_config(
                path,
                data_root=data_root,
                world_size=workers,
                budget=dict(
                    iters=budget.iters,
                    val_interval=budget.val_interval,
                    batch_size=budget.batch_size,
                    log_interval=budget.log_interval,
                    workers=budget.workers,
                    crop=budget.crop,
                    image_scale=data.image_scale,
                    amp=budget.amp,
                    compile=budget.compile,
                ),
            )
        return self._bases[key]

    def source_of(self, name: str, seed: int | None = None) -> tuple[str, Path | str]:
        """(trial id, checkpoint) of a pretrain entry, or of a zoo row's trial of the same seed."""
        if name in self.provided:
            return self.provided[name]
        return self.rows[(name, seed)]

    def checkpoint_of(self, name: str, seed: int | None = None) -> Path | str:
        return self.source_of(name, seed)[1]

    def plan(self, design: TrialDesign, seed: int) -> TrialSpec:
        from ablate.tricks import TRICKS, TrickContext

        spec = self.study.spec
        data = self._data(design)
        data_root = ensure_data(self.study, data) if self.generate_data else data_plan(self.study, data).root
        ready = self.generate_data or data_plan(self.study, data).ready
        budget = self._budget(design)
        base_path = self.study.path(design.base) if design.base else self.study.base
        workers, gpus_per_worker, cpus_per_worker = self._placement(design)
        base_cfg = self._base(base_path, data, data_root, budget, workers)
        cfg = copy.deepcopy(base_cfg)
        if design.encoder:
            set_encoder(cfg, self.study.checkpoint(design.encoder))
        self.config.apply_overrides(cfg, {**spec.overrides, **design.overrides})
        fingerprint, meta, splits = self.data_checks.check(cfg, data_root, ready)
        context = TrickContext(
            iters=budget.iters,
            data_root=data_root,
            crop=budget.crop,
            checkpoint_of=lambda name: self.checkpoint_of(name, seed),
            data_ready=ready,
            model_of=self.models.get,
            path_of=self.study.path,
            dataset_meta=meta,
        )
        for trick in design.tricks:
            TRICKS[trick.name].apply(cfg, trick.params, context)
        check_heads(cfg, meta)
        self.config.use_plain_bn(cfg, world_size=workers)  # DDP keeps SyncBN
        cfg.randomness = dict(seed=seed, deterministic=False)
        sources = [self.source_of(t.source, seed) for t in design.tricks if t.source and self._provides(t.source, seed)]
        depends = tuple(dict.fromkeys(trial for trial, _ in sources if trial))
        hashed = copy.deepcopy(cfg)
        # the source trials' ids, not where their checkpoints happen to lie
        _pin_sources(hashed._cfg_dict, {str(path): f"trial:{trial}" for trial, path in sources if trial})
        if fingerprint is None or not all(id_known(d) for d in depends):
            trial_id = f"{AFTER_DATA} {design.name}/{seed}"
        else:
            # a DDP trial steps on workers x batch_size images: not the same trial as one process
            extra = {"world_size": workers} if workers > 1 else None
            trial_id = self.config.config_digest(hashed, data_fingerprint=fingerprint, extra=extra)
        image_size = _image_size(cfg, data.image_scale)
        crop = budget.crop or tuple(cfg.model.get("data_preprocessor", {}).get("size") or image_size)
        tags = {
            T.SHAPE: design.shape,
            T.MODEL: base_path.stem,
            **design.tags,
            T.TRICKS: ",".join(t.name for t in design.tricks),
        }
        trial = TrialSpec(
            study=spec.name,
            name=design.name,
            trial_id=trial_id,
            seed=seed,
            base=str(base_path),
            config_text=cfg.pretty_text,
            overrides={**spec.overrides, **design.overrides},
            work_dir=self.runs_root / trial_id,
            data_root=data_root,
            data_fingerprint=fingerprint or "",
            iters=budget.iters,
            batch_size=budget.batch_size,
            image_size=image_size,
            log_interval=budget.log_interval,
            params={
                **model_params(cfg),
                "crop": budget.crop,
                "profile": self.study.profile,
                "val_interval": budget.val_interval or budget.iters,
                "total_batch_size": budget.batch_size * workers,
                **{f"trick.{t.name}": t.params.model_dump_json(by_alias=True) for t in design.tricks},
            },
            tags=tags,
            depends_on=depends,
            resolved_overrides=config_diff(base_cfg, cfg),
            cost=estimate_cost(cfg, crop, budget.iters, budget.batch_size) if self.with_cost else 0.0,
            study_file=self.study.source.resolve(),
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
            speed_key=speed_key(cfg, crop, budget.batch_size),
            pretrain=design.pretrain.name if design.pretrain is not None else "",
            dataset_meta=meta,
            data_splits=splits,
        )
        if design.pretrain is not None:
            self.provided[design.pretrain.name] = (trial_id, trial.best_checkpoint)
        if design.shape == SHAPE_ZOO:
            self.rows[(design.name, seed)] = (trial_id, trial.best_checkpoint)
        if name := provider(design):
            self.models[name] = copy.deepcopy(cfg.model)
        return trial

    def _provides(self, name: str, seed: int) -> bool:
        return name in self.provided or (name, seed) in self.rows


def _pin_sources(node: Any, pins: dict[str, str]) -> None:
    """Replace checkpoint paths of source trials by their ids, wherever a trick wrote them."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, str) and value in pins:
            node[key] = pins[value]
        elif isinstance(value, (dict, list)):
            _pin_sources(value, pins)


def providers_first(study: Study) -> list[TrialDesign]:
    """File order, except that a design others read from (a pretrain entry, a zoo teacher) comes
    first. The loader refused circles (`designs.dependency_problems`)."""
    designs = list(study.designs)
    return [designs[i] for i in dependency_order(dependency_graph(designs), range(len(designs)))]


def estimate_cost(cfg: Any, crop: tuple[int, int], iters: int, batch_size: int) -> float:
    """GFLOPs of one forward at the training crop x iterations x batch (a relative cost).

    A distillation student adds its teacher's forward, which has no backward: about a third of
    what a training step of the same model costs.
    """
    from ablate.analysis import cached_flops
    from ablate.config.distillation import split_distillation

    student, teacher = split_distillation(cfg)
    flops = cached_flops(_forward_only(student), crop[0], crop[1])
    if teacher is not None:
        flops += cached_flops(_forward_only(teacher), crop[0], crop[1]) / 3
    return round(flops * iters * batch_size, 1)


def _forward_only(cfg: Any) -> Any:
    """The config as one inference forward sees it. Losses, samplers, an auxiliary head and
    initial weights change no FLOP, so trials that differ only there (most rungs of a ladder)
    share one FLOPs count and its cache entry instead of each building the model again."""
    from ablate.tricks.base import decode_heads

    slim = copy.deepcopy(cfg)
    for key in ("auxiliary_head", "pretrained"):
        slim.model.pop(key, None)
    if isinstance(slim.model.get("backbone"), dict):
        slim.model.backbone.pop("init_cfg", None)
    for head in decode_heads(slim):
        head.pop("sampler", None)
        head["loss_decode"] = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
    return slim


def plan_trials(
    study: Study,
    runs_dir: Path | str = "runs",
    generate_data: bool = True,
    with_cost: bool = True,
    seeds: Sequence[int] | None = None,
) -> list[TrialSpec]:
    """Every trial of the study: pretraining first, then in file order, seeds innermost.

    `seeds` replaces the study's (a round of `seeds: auto`); by default its listed seeds, or the
    first round of `seeds: auto`.

    `generate_data=False` writes nothing: synthetic data not generated yet stays a `DataPlan`
    and the ids of trials that read it are `AFTER_DATA` (their costs are still computed).
    `with_cost=False` skips the FLOPs estimate (the first count of a large model at its crop
    takes seconds to minutes on a CPU); `cost` is then 0.0.

    A study planned before from the same inputs gets that plan back (`ablate.study.plan_cache`).
    """
    from ablate.study import plan_cache

    datasets = data_plans(study)
    key = None
    if all(d.ready for d in datasets):  # data still to be generated: plan (and generate) afresh
        chosen = study.spec.seed_list if seeds is None else seeds  # the study's seeds, named or not: one plan
        options = {"generate_data": generate_data, "with_cost": with_cost, "seeds": [int(s) for s in chosen]}
        key = plan_cache.plan_key(study, Path(runs_dir), [d.root for d in datasets], options)
    if key is not None:
        stored = plan_cache.load(key)
        if stored is not None:
            return stored
    planner = Planner(study, Path(runs_dir), generate_data, with_cost)
    trials: list[TrialSpec] = []
    for design in providers_first(study):
        chosen = study.spec.seed_list if seeds is None else list(seeds)
        if design.shape == SHAPE_PRETRAIN:
            assert design.pretrain is not None  # a pretrain design carries its entry
            chosen = [design.pretrain.seed]
        for seed in chosen:
            trials.append(planner.plan(design, seed))
    if key is not None:
        plan_cache.store(key, trials)
    return trials
