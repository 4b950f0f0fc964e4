"""Datasets in mmseg layout: a synthetic KITTI-like generator, the KITTI and Cityscapes converters,
checks and stats."""

from ablate.data.cityscapes import convert_cityscapes
from ablate.data.classes import CLASSES, IGNORE_INDEX, PALETTE, label_id_to_train_id
from ablate.data.configured import ConfigData, check_data, config_meta, list_split
from ablate.data.kitti import convert_kitti
from ablate.data.layout import check_layout, dataset_fingerprint, tree_fingerprint
from ablate.data.meta import CITYSCAPES_META, META_ARTIFACT, DatasetMeta, default_palette
from ablate.data.stats import ClassStats, class_stats, split_stats
from ablate.data.synth import synthesize

__all__ = [
    "CITYSCAPES_META",
    "CLASSES",
    "IGNORE_INDEX",
    "META_ARTIFACT",
    "PALETTE",
    "ClassStats",
    "ConfigData",
    "DatasetMeta",
    "check_data",
    "check_layout",
    "class_stats",
    "config_meta",
    "convert_cityscapes",
    "convert_kitti",
    "dataset_fingerprint",
    "default_palette",
    "label_id_to_train_id",
    "list_split",
    "split_stats",
    "synthesize",
    "tree_fingerprint",
]
