"""The dataset a config declares, as mmseg itself would read it.

Whatever the train/val/test dataloaders name (any registered dataset type, `data_prefix`,
suffixes, `ann_file` split lists, `metainfo`, wrappers such as `ConcatDataset`, a type a lab
registers through `custom_imports`) is built by mmseg with no pipeline and asked for its file
list. That list is what the pre-training check verifies, what the content fingerprint hashes and
what the split sizes count, so ablate never guesses a folder layout of its own.
"""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.data.layout import files_fingerprint
from ablate.data.meta import DatasetMeta, default_palette
from ablate.errors import ConfigError, DataError

SPLIT_LOADERS: dict[str, str] = {"train": "train_dataloader", "val": "val_dataloader", "test": "test_dataloader"}
"""Split name -> the dataloader that reads it."""

_WRAPPED = ("dataset", "datasets")  # keys of dataset wrappers (ConcatDataset, RepeatDataset, ...)


@dataclass(frozen=True)
class ListedDataset:
    """One dataset of a config, built without a pipeline, with the samples it lists."""

    field: str  # where the config declares it, e.g. `train_dataloader.dataset`
    node: dict[str, Any]  # its config, pipeline included
    dataset: Any  # the mmseg dataset (lazy; `samples` are its data list)
    samples: tuple[dict[str, Any], ...]

    @property
    def type(self) -> str:
        return str(self.node.get("type", type(self.dataset).__name__))

    def files(self) -> list[str]:
        out: list[str] = []
        for sample in self.samples:
            out.extend(str(sample[k]) for k in ("img_path", "seg_map_path") if sample.get(k))
        return out


@dataclass(frozen=True)
class ConfigData:
    """What the plan keeps of a config's datasets: content fingerprint, images per split, labels."""

    fingerprint: str
    splits: dict[str, int]
    meta: DatasetMeta


def prepare_registry(cfg: Any) -> None:
    """mmseg's datasets and transforms, and the modules the config's `custom_imports` names.

    Importing `ablate` already installed the mmcv-lite bridge mmseg's imports need."""
    import mmseg.datasets  # noqa: F401  (registers every packaged dataset and transform)

    imports = cfg.get("custom_imports") or {}
    modules = imports.get("imports") or []
    modules = [modules] if isinstance(modules, str) else list(modules)
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if not imports.get("allow_failed_imports", False):
                raise ConfigError(f"custom_imports.imports: cannot import {name!r}: {exc}") from exc


def _plain(node: Any) -> Any:
    to_dict = getattr(node, "to_dict", None)
    return to_dict() if callable(to_dict) else copy.deepcopy(node)


def _leaves(node: Any, field: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The datasets under a dataloader's `dataset`, through wrappers (ConcatDataset, ...)."""
    if not isinstance(node, dict):
        raise ConfigError(f"{field}: expected a dataset config (a dict with `type`), got {type(node).__name__}")
    inner = node.get("datasets")
    if isinstance(inner, (list, tuple)):
        for i, child in enumerate(inner):
            yield from _leaves(child, f"{field}.datasets[{i}]")
        return
    if isinstance(node.get("dataset"), dict):
        yield from _leaves(node["dataset"], f"{field}.dataset")
        return
    yield field, node


def dataset_nodes(cfg: Any, split: str) -> list[tuple[str, dict[str, Any]]]:
    """(field, config) of every dataset the split's dataloader reads; [] when it has none."""
    if split not in SPLIT_LOADERS:
        raise DataError(f"split: {split!r} is not one of {', '.join(SPLIT_LOADERS)}")
    loader = cfg.get(SPLIT_LOADERS[split])
    if not loader:
        return []
    loader = _plain(loader)
    if "dataset" not in loader:
        raise ConfigError(f"{SPLIT_LOADERS[split]}.dataset: the dataloader names no dataset")
    return list(_leaves(loader["dataset"], f"{SPLIT_LOADERS[split]}.dataset"))


def build_lazy(field: str, node: dict[str, Any]) -> Any:
    """The dataset object mmseg would build, minus its pipeline and without reading any file."""
    from mmseg.registry import DATASETS

    kind = node.get("type")
    if not kind:
        raise ConfigError(f"{field}.type: missing; name a registered mmseg dataset (e.g. BaseSegDataset)")
    if isinstance(kind, str) and DATASETS.get(kind) is None:
        raise ConfigError(
            f"{field}.type: {kind!r} is not a registered mmseg dataset; register it in a module "
            "the config names in custom_imports"
        )
    built = dict(copy.deepcopy(node), pipeline=[], lazy_init=True, serialize_data=False)
    try:
        return DATASETS.build(built)
    except (ConfigError, DataError):
        raise
    except Exception as exc:  # noqa: BLE001  (any dataset class may raise anything)
        raise ConfigError(f"{field}: cannot build {kind}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _check_sources(field: str, dataset: Any) -> None:
    """Where the file list comes from must exist before mmseg is asked for it."""
    ann_file = str(getattr(dataset, "ann_file", "") or "")
    prefix = getattr(dataset, "data_prefix", None) or {}
    if ann_file and not os.path.isdir(ann_file):
        if not os.path.isfile(ann_file):
            raise DataError(f"{field}.ann_file: {ann_file}: file not found")
    else:
        img_dir = prefix.get("img_path")
        if img_dir and not os.path.isdir(img_dir):
            raise DataError(f"{field}.data_prefix.img_path: {img_dir}: folder not found")
    seg_dir = prefix.get("seg_map_path")
    if seg_dir and not os.path.isdir(seg_dir):
        raise DataError(f"{field}.data_prefix.seg_map_path: {seg_dir}: folder not found")


def _check_samples(field: str, dataset: Any, samples: tuple[dict[str, Any], ...]) -> None:
    ann_file = str(getattr(dataset, "ann_file", "") or "")
    prefix = getattr(dataset, "data_prefix", None) or {}
    if not samples:
        if ann_file:
            raise DataError(f"{field}.ann_file: {ann_file}: lists no images")
        suffix = getattr(dataset, "img_suffix", "") or "image"
        raise DataError(f"{field}.data_prefix.img_path: {prefix.get('img_path')}: no {suffix} files")
    images = [str(s["img_path"]) for s in samples if s.get("img_path") and not os.path.isfile(s["img_path"])]
    if images:
        where = f"{field}.ann_file: {ann_file} lists" if ann_file else f"{field}.data_prefix.img_path:"
        raise DataError(f"{where} {len(images)} missing image(s): {_shown(images)}")
    labels = [
        str(s["seg_map_path"]) for s in samples if s.get("seg_map_path") and not os.path.isfile(s["seg_map_path"])
    ]
    if labels:
        suffix = getattr(dataset, "seg_map_suffix", "")
        raise DataError(
            f"{field}.data_prefix.seg_map_path: {len(labels)} of {len(samples)} images have no label file"
            f"{f' ({suffix})' if suffix else ''}: {_shown(labels)}"
        )


def list_dataset(field: str, node: dict[str, Any]) -> ListedDataset:
    """Build one dataset lazily, check where its files come from, and list and check its samples."""
    dataset = build_lazy(field, node)
    _check_sources(field, dataset)
    try:
        if hasattr(dataset, "full_init"):
            dataset.full_init()
        data_list = getattr(dataset, "data_list", None)
        if data_list is None:
            data_list = [dataset.get_data_info(i) for i in range(len(dataset))]
    except (ConfigError, DataError):
        raise
    except Exception as exc:  # noqa: BLE001  (mmseg asserts, fileio raises several types)
        raise DataError(f"{field}: cannot list the dataset's files: {_one_line(exc)}") from exc
    samples = tuple(dict(s) for s in data_list)
    _check_samples(field, dataset, samples)
    return ListedDataset(field, node, dataset, samples)


def list_split(cfg: Any, split: str) -> list[ListedDataset]:
    """Every dataset of one split, listed and checked (`prepare_registry` first)."""
    prepare_registry(cfg)
    return [list_dataset(field, node) for field, node in dataset_nodes(cfg, split)]


def _data_root(cfg: Any) -> Path | None:
    root = cfg.get("data_root")
    return Path(root) if root else None


def check_data(cfg: Any) -> ConfigData:
    """Check every dataset the config's dataloaders read, before anything trains.

    Fails with a DataError or ConfigError naming the config field and the missing folder or file.
    Returns the content fingerprint of every file listed (relative to `data_root`: moving the
    data keeps it; for the KITTI layout it equals `dataset_fingerprint(root)`), images per split,
    and the label space.
    """
    root = _data_root(cfg)
    if root is not None and not root.is_dir():
        raise DataError(
            f"data.root: {root}: dataset folder not found; create it (e.g. `ablate data synth --out {root}`) "
            "or point data.root at the dataset"
        )
    prepare_registry(cfg)
    seen: dict[str, ListedDataset] = {}
    splits: dict[str, int] = {}
    files: dict[str, Path] = {}
    for split in SPLIT_LOADERS:
        count = 0
        for field, node in dataset_nodes(cfg, split):
            key = repr(sorted((k, repr(v)) for k, v in node.items() if k != "pipeline"))
            if key not in seen:
                seen[key] = list_dataset(field, node)
            listed = seen[key]
            count += len(listed.samples)
            for path in listed.files():
                files[_relative(path, root)] = Path(path)
        if cfg.get(SPLIT_LOADERS[split]):
            splits[split] = count
    fingerprint = files_fingerprint(str(root.resolve()) if root else "", sorted(files.items()))
    return ConfigData(fingerprint, splits, config_meta(cfg))


def _relative(path: str, root: Path | None) -> str:
    if root is None:
        return Path(path).as_posix()
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).as_posix()


def config_meta(cfg: Any, split: str = "train") -> DatasetMeta:
    """The label space of the split's (first) dataset: the class's metainfo with the config's
    `metainfo` override, mmseg's own reading of both; `default_palette` when neither gives colours."""
    prepare_registry(cfg)
    nodes = dataset_nodes(cfg, split) or dataset_nodes(cfg, "val")
    if not nodes:
        raise ConfigError(f"{SPLIT_LOADERS[split]}: the config has no dataloader to read classes from")
    field, node = nodes[0]
    dataset = build_lazy(field, node)
    metainfo = dict(getattr(dataset, "metainfo", None) or {})
    classes = metainfo.get("classes")
    if not classes:
        raise ConfigError(
            f"{field}.metainfo.classes: {node.get('type')} names no classes; give metainfo=dict(classes=[...])"
        )
    declared = dict(getattr(type(dataset), "METAINFO", None) or {})
    override = node.get("metainfo") or {}
    given = declared.get("palette") or override.get("palette")
    palette = metainfo.get("palette") if given else None
    if not palette or len(palette) != len(classes):
        palette = default_palette(len(classes))
    return DatasetMeta(
        classes=tuple(str(c) for c in classes),
        palette=tuple((int(c[0]), int(c[1]), int(c[2])) for c in palette),
        ignore_index=int(getattr(dataset, "ignore_index", 255)),
        reduce_zero_label=bool(getattr(dataset, "reduce_zero_label", False)),
    )
