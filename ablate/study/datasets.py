"""The datasets a study's trials read, as their configs declare them: checked once per distinct
dataset config before anything trains, and the config a study's class statistics come from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.study.schema import DataSpec, SynthSpec

if TYPE_CHECKING:
    from ablate.study.study import Study

_LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


@dataclass(frozen=True)
class DataPlan:
    """A dataset a study reads, and the synthetic set `run` generates there first (if any)."""

    root: Path
    generate: SynthSpec | None = None

    @property
    def ready(self) -> bool:
        return self.generate is None

    def describe(self) -> str:
        if self.generate is None:
            return f"data: {self.root}"
        g = self.generate
        domain = "" if g.domain == "kitti" else f", {g.domain} domain"
        layout = "" if g.format == "kitti" else f", {g.format} format"
        return (
            f"data: would generate synthetic data at {self.root} "
            f"({g.train} train / {g.test} val, {g.height}x{g.width}, seed {g.seed}{domain}{layout})"
        )


def data_plan(study: Study, data: DataSpec | None = None) -> DataPlan:
    """What `ensure_data` would do for a study's (or pretrain entry's) data, without doing it."""
    from ablate.data.layout import COMPLETE_MARKER

    data = data or study.spec.data
    root = study.path(data.root)
    pending = data.synth is not None and not (root / COMPLETE_MARKER).exists()
    return DataPlan(root, data.synth if pending else None)


def data_plans(study: Study) -> list[DataPlan]:
    """Every dataset the study's trials read (the study's, then pretrain entries'), once each."""
    plans = [data_plan(study)]
    for design in study.designs:
        if design.pretrain is not None and design.pretrain.data is not None:
            plan = data_plan(study, design.pretrain.data)
            if plan.root not in {p.root for p in plans}:
                plans.append(plan)
    return plans


def ensure_data(study: Study, data: DataSpec | None = None) -> Path:
    """The dataset a study (or pretrain entry) names, generated first when it asks for synthetic data.

    What the folder must hold is the config's to say: each trial's datasets are checked when it
    is planned (`ablate.data.check_data`)."""
    from ablate import data as datasets

    plan = data_plan(study, data)
    if plan.generate is not None:
        datasets.synthesize(plan.root, **plan.generate.model_dump())
    return plan.root


def _plain(node: Any) -> Any:
    to_dict = getattr(node, "to_dict", None)
    return to_dict() if callable(to_dict) else node


class DataChecks:
    """`ablate.data.check_data` of each trial's config, once per distinct dataset config."""

    def __init__(self) -> None:
        self._found: dict[str, tuple[str | None, Any, dict[str, int]]] = {}

    def check(self, cfg: Any, data_root: Path, ready: bool) -> tuple[str | None, Any, dict[str, int]]:
        """(content fingerprint, DatasetMeta, images per split); data still to be generated
        (`ready` False) has no fingerprint and no counts, only its label space."""
        from ablate import data as datasets

        key = json.dumps(
            [str(data_root), ready, [_plain(cfg.get(n)) for n in _LOADERS], _plain(cfg.get("custom_imports"))],
            sort_keys=True,
            default=str,
        )
        if key not in self._found:
            if ready:
                found = datasets.check_data(cfg)
                self._found[key] = (found.fingerprint, found.meta, found.splits)
            else:
                self._found[key] = (None, datasets.config_meta(cfg), {})
        return self._found[key]


def check_heads(cfg: Any, meta: Any) -> None:
    """Every head predicts the dataset's classes: a head of another class count would train
    without complaint and be scored against the wrong label space."""
    from ablate.errors import ConfigError
    from ablate.tricks.base import head_classes

    for field, count in head_classes(cfg):
        if count is not None and count != meta.num_classes:
            shown = ", ".join(meta.classes[:4]) + (", ..." if meta.num_classes > 4 else "")
            raise ConfigError(
                f"{field}: the head predicts {count} classes but the dataset has {meta.num_classes} ({shown}); "
                f"set {field}={meta.num_classes} in the config or the study's overrides"
            )


def dataset_config(study: Study, data: DataSpec | None = None) -> Any:
    """The study's base config on its data (generated first when synthetic), with the study's
    overrides: where its dataset, classes and class statistics are read from
    (`ablate.data.split_stats`, `ablate.data.config_meta`)."""
    from ablate import config

    root = ensure_data(study, data)
    cfg = config.load_base(study.base)
    config.set_data_root(cfg, root)
    config.apply_overrides(cfg, dict(study.spec.overrides))
    return cfg
