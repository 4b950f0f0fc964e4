"""Designs -> trials: one resolved config, id, work dir and cost per (design, seed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional

from ablate.study.designs import SHAPE_PRETRAIN, TrialDesign
from ablate.study.loader import Study
from ablate.study.schema import BudgetSpec, DataSpec
from ablate.trial.spec import TrialSpec


def ensure_data(study: Study, data: Optional[DataSpec] = None) -> Path:
    """The dataset a study (or pretrain entry) names, generated first when it asks for synthetic data."""
    from ablate import data as datasets

    data = data or study.spec.data
    root = study.path(data.root)
    if data.synth is not None and not (root / ".complete").exists():
        datasets.synthesize(root, **data.synth.model_dump())
    datasets.check_layout(root)
    return root


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


def set_encoder(cfg: Any, checkpoint: Path) -> None:
    """ImageNet weights for the backbone only, through mmengine's init_cfg seam."""
    cfg.model.pop("pretrained", None)
    cfg.model.backbone["init_cfg"] = dict(type="Pretrained", checkpoint=str(checkpoint))


class Planner:
    """Resolves designs into trials, remembering which checkpoint each pretrain entry provides."""

    def __init__(self, study: Study, runs_dir: Path) -> None:
        from ablate import config

        self.study = study
        self.runs_root = runs_dir.resolve() / study.name
        self.config = config
        self._bases: dict[tuple[str, str, str], Any] = {}
        self.provided: dict[str, tuple[str, Path]] = {}  # pretrain name -> (trial id, checkpoint)
        for entry in study.spec.pretrain:
            if entry.checkpoint is not None:
                self.provided[entry.name] = ("", study.path(entry.checkpoint))

    def _budget(self, design: TrialDesign) -> BudgetSpec:
        budget = self.study.spec.budget
        if design.pretrain is not None and design.pretrain.budget is not None:
            budget = BudgetSpec(**{**budget.model_dump(), **design.pretrain.budget.model_dump(exclude_unset=True)})
        return budget

    def _data(self, design: TrialDesign) -> DataSpec:
        if design.pretrain is not None and design.pretrain.data is not None:
            return design.pretrain.data
        return self.study.spec.data

    def _base(self, path: Path, data: DataSpec, data_root: Path, budget: BudgetSpec) -> Any:
        key = (str(path), str(data_root), budget.model_dump_json() + str(data.image_scale))
        if key not in self._bases:
            cfg = self.config.load_base(path)
            self.config.set_data_root(cfg, data_root)
            self.config.apply_budget(
                cfg, iters=budget.iters, val_interval=budget.val_interval, batch_size=budget.batch_size,
                log_interval=budget.log_interval, workers=budget.workers, crop=budget.crop,
                image_scale=data.image_scale,
            )
            self.config.use_plain_bn(cfg)
            self._bases[key] = cfg
        return self._bases[key]

    def checkpoint_of(self, name: str) -> Path:
        return self.provided[name][1]

    def plan(self, design: TrialDesign, seed: int) -> TrialSpec:
        from ablate import data as datasets
        from ablate.tricks import TRICKS, TrickContext

        spec = self.study.spec
        data = self._data(design)
        data_root = ensure_data(self.study, data)
        fingerprint = datasets.dataset_fingerprint(data_root)
        budget = self._budget(design)
        base_path = self.study.path(design.base) if design.base else self.study.base
        base_cfg = self._base(base_path, data, data_root, budget)
        cfg = copy.deepcopy(base_cfg)
        if design.encoder:
            set_encoder(cfg, self.study.path(design.encoder))
        self.config.apply_overrides(cfg, {**spec.overrides, **design.overrides})
        context = TrickContext(iters=budget.iters, data_root=data_root, crop=budget.crop, checkpoint_of=self.checkpoint_of)
        for trick in design.tricks:
            TRICKS[trick.name].apply(cfg, trick.params, context)
        self.config.use_plain_bn(cfg)
        cfg.randomness = dict(seed=seed, deterministic=False)
        depends = tuple(self.provided[t.source][0] for t in design.tricks if t.source and self.provided[t.source][0])
        hashed = copy.deepcopy(cfg)
        if depends:  # the source trial's id, not where its checkpoint happens to lie
            hashed.load_from = "trial:" + ",".join(depends)
        trial_id = self.config.config_digest(hashed, data_fingerprint=fingerprint)
        image_size = _image_size(cfg, data.image_scale)
        crop = budget.crop or tuple(cfg.model.get("data_preprocessor", {}).get("size") or image_size)
        tags = {"ablate.shape": design.shape, "ablate.model": base_path.stem, **design.tags,
                "ablate.tricks": ",".join(t.name for t in design.tricks)}
        trial = TrialSpec(
            study=spec.name, name=design.name, trial_id=trial_id, seed=seed, base=str(base_path),
            config_text=cfg.pretty_text, overrides={**spec.overrides, **design.overrides},
            work_dir=self.runs_root / trial_id, data_root=data_root, data_fingerprint=fingerprint,
            iters=budget.iters, batch_size=budget.batch_size, image_size=image_size,
            log_interval=budget.log_interval,
            params={**model_params(cfg), "crop": budget.crop, "profile": self.study.profile,
                    **{f"trick.{t.name}": t.params.model_dump_json(by_alias=True) for t in design.tricks}},
            tags=tags, depends_on=depends, resolved_overrides=config_diff(base_cfg, cfg),
            cost=estimate_cost(cfg, crop, budget.iters, budget.batch_size),
        )
        if design.pretrain is not None:
            self.provided[design.pretrain.name] = (trial_id, trial.best_checkpoint)
        return trial


def estimate_cost(cfg: Any, crop: tuple[int, int], iters: int, batch_size: int) -> float:
    """GFLOPs of one forward at the training crop x iterations x batch (a relative cost)."""
    from ablate.analysis import cached_flops

    return round(cached_flops(cfg, crop[0], crop[1]) * iters * batch_size, 1)


def plan_trials(study: Study, runs_dir: Path | str = "runs") -> list[TrialSpec]:
    """Every trial of the study: pretraining first, then in file order, seeds innermost."""
    planner = Planner(study, Path(runs_dir))
    trials: list[TrialSpec] = []
    for design in study.designs:
        seeds = [design.pretrain.seed] if design.shape == SHAPE_PRETRAIN else study.spec.seeds
        for seed in seeds:
            trials.append(planner.plan(design, seed))
    return trials
