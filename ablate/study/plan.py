"""Expand a study into trials: one resolved config, id and work dir per (trial, seed)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ablate.study.loader import Study
from ablate.trial.spec import TrialSpec


def ensure_data(study: Study) -> Path:
    """The study's dataset, generated first when the study asks for synthetic data."""
    from ablate import data

    synth = study.spec.data.synth
    if synth is not None and not (study.data_root / ".complete").exists():
        data.synthesize(study.data_root, **synth.model_dump())
    data.check_layout(study.data_root)
    return study.data_root


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


def plan_trials(study: Study, runs_dir: Path | str = "runs") -> list[TrialSpec]:
    """Every trial of the study, in file order, seeds innermost."""
    from ablate import config, data

    spec = study.spec
    data_root = ensure_data(study)
    fingerprint = data.dataset_fingerprint(data_root)
    budget = dict(
        iters=spec.budget.iters,
        val_interval=spec.budget.val_interval,
        batch_size=spec.budget.batch_size,
        log_interval=spec.budget.log_interval,
        workers=spec.budget.workers,
        crop=spec.budget.crop,
        image_scale=spec.data.image_scale,
    )
    base_cfg = config.load_base(study.base)
    config.set_data_root(base_cfg, data_root)
    config.apply_budget(base_cfg, **budget)
    runs_root = Path(runs_dir).resolve() / spec.name
    trials: list[TrialSpec] = []
    for entry in spec.trials:
        overrides = {**spec.overrides, **entry.overrides}
        for seed in spec.seeds:
            cfg = copy.deepcopy(base_cfg)
            config.apply_overrides(cfg, overrides)
            config.use_plain_bn(cfg)
            cfg.randomness = dict(seed=seed, deterministic=False)
            trial_id = config.config_digest(cfg, data_fingerprint=fingerprint)
            trials.append(
                TrialSpec(
                    study=spec.name,
                    name=entry.name,
                    trial_id=trial_id,
                    seed=seed,
                    base=str(study.base),
                    config_text=cfg.pretty_text,
                    overrides=overrides,
                    work_dir=runs_root / trial_id,
                    data_root=data_root,
                    data_fingerprint=fingerprint,
                    iters=spec.budget.iters,
                    batch_size=spec.budget.batch_size,
                    image_size=_image_size(cfg, spec.data.image_scale),
                    log_interval=spec.budget.log_interval,
                    params={**model_params(cfg), "crop": spec.budget.crop, "profile": study.profile},
                )
            )
    return trials
