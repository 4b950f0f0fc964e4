"""Other datasets' folder layouts and label spaces for the same synthetic scenes.

A study on mmseg's own ADE20K or Pascal VOC dataset config should run on a laptop with no download,
so the scenes can also be written the way those datasets ship. Scenes are drawn in Cityscapes
train ids; each drawn class becomes the class of the same thing in the target label space, found
by name in the mmseg dataset class's `METAINFO` (so a label value never drifts from what mmseg
calls it). Whatever has no counterpart there becomes that dataset's "other" value, as an annotator
of that dataset would have labelled it: most of ADE20K's 150 classes never appear, which is what a
road-scene subset of ADE20K looks like too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from ablate.data.classes import CLASSES, IGNORE_INDEX
from ablate.errors import DataError

KITTI = "kitti"
"""The default: `img_dir/` + `ann_dir/` PNGs in Cityscapes train ids, what `configs/` reads."""

JPEG_QUALITY = 90
"""Both datasets ship JPEG photos; a fixed quality keeps the output byte-stable."""


@dataclass(frozen=True)
class SynthFormat:
    """Where one image and its label go, and which value each drawn class gets."""

    name: str
    dataset_type: str
    """mmseg dataset class whose `METAINFO["classes"]` is the label space."""
    renames: Mapping[str, str]
    """Cityscapes class -> the dataset's class for the same thing; absent ones become `other`."""
    image: str
    label: str
    """Paths relative to the dataset root; `{split}` is train/val, `{folder}` the dataset's split
    folder name, `{index}` counts from 0 and `{number}` from 1."""
    folders: Mapping[str, str]
    first_value: int
    """Label value of the dataset's class 0 (1 where 0 means "other", mmseg's `reduce_zero_label`)."""
    other: int
    """Label value of drawn classes the dataset has no name for."""
    unlabelled: int
    """Label value of the pixels drawn as ignore (the ego bonnet, unlabelled patches)."""
    split_list: str | None = None
    """Path of the `ann_file` listing each split's file stems, for datasets that use one."""
    indexed_labels: bool = False
    """Labels saved as palette PNGs coloured with the dataset's palette, as Pascal VOC ships them."""
    void_colour: tuple[int, int, int] = (224, 224, 192)
    """Colour of the ignore value in palette PNGs (Pascal VOC's boundary colour)."""

    def paths(self, split: str, index: int) -> tuple[str, str]:
        keys = {"split": split, "folder": self.folders[split], "index": index, "number": index + 1}
        return self.image.format(**keys), self.label.format(**keys)

    def classes(self) -> tuple[str, ...]:
        return _metainfo(self.dataset_type)[0]

    def lut(self) -> np.ndarray:
        """Cityscapes train id (and ignore) -> this dataset's label value."""
        names = self.classes()
        lut = np.full(256, self.other, np.uint8)
        lut[IGNORE_INDEX] = self.unlabelled
        for train_id, source in enumerate(CLASSES):
            target = self.renames.get(source)
            if target is not None:
                lut[train_id] = names.index(target) + self.first_value
        return lut

    def save(self, root: Path, split: str, index: int, rgb: np.ndarray, label: np.ndarray, lut: np.ndarray) -> None:
        image_rel, label_rel = self.paths(split, index)
        Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(root / image_rel, format="JPEG", quality=JPEG_QUALITY)
        labels = Image.fromarray(np.ascontiguousarray(lut[label], np.uint8))
        if self.indexed_labels:
            labels.putpalette(self._flat_palette())
        labels.save(root / label_rel, format="PNG", compress_level=6)

    def folders_to_make(self) -> set[Path]:
        rels = [Path(p).parent for split in self.folders for p in self.paths(split, 0)]
        if self.split_list:
            rels += [Path(self.split_list.format(split=s)).parent for s in self.folders]
        return set(rels)

    def write_split_lists(self, root: Path, counts: Mapping[str, int]) -> None:
        if self.split_list is None:
            return
        for split, n in counts.items():
            stems = [Path(self.paths(split, i)[0]).stem for i in range(n)]
            (root / self.split_list.format(split=split)).write_text("".join(f"{s}\n" for s in stems))

    def _flat_palette(self) -> list[int]:
        palette = [0] * 768
        for value, rgb in enumerate(_metainfo(self.dataset_type)[1]):
            palette[3 * value : 3 * value + 3] = rgb
        palette[3 * IGNORE_INDEX : 3 * IGNORE_INDEX + 3] = self.void_colour
        return palette


@cache
def _metainfo(dataset_type: str) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    # `import ablate` has already bridged mmseg to mmcv-lite (`ablate.compat`)
    import mmseg.datasets  # noqa: F401  (registers the dataset classes)
    from mmseg.registry import DATASETS

    meta = DATASETS.get(dataset_type).METAINFO
    return tuple(meta["classes"]), tuple((int(c[0]), int(c[1]), int(c[2])) for c in meta["palette"])


ADE20K = SynthFormat(
    name="ade20k",
    dataset_type="ADE20KDataset",
    renames={
        "road": "road",
        "sidewalk": "sidewalk",
        "building": "building",
        "wall": "wall",
        "fence": "fence",
        "pole": "pole",
        "traffic light": "traffic light",
        "traffic sign": "signboard",
        "vegetation": "tree",
        "terrain": "grass",
        "sky": "sky",
        "person": "person",
        "rider": "person",  # ADE20K labels riders as persons; it has no train class
        "car": "car",
        "truck": "truck",
        "bus": "bus",
        "motorcycle": "minibike",
        "bicycle": "bicycle",
    },
    image="images/{folder}/ADE_{split}_{number:08d}.jpg",
    label="annotations/{folder}/ADE_{split}_{number:08d}.png",
    folders={"train": "training", "val": "validation"},
    first_value=1,
    other=0,
    unlabelled=0,
)

VOC = SynthFormat(
    name="voc",
    dataset_type="PascalVOCDataset",
    renames={
        "person": "person",
        "rider": "person",
        "car": "car",
        "bus": "bus",
        "train": "train",
        "motorcycle": "motorbike",
        "bicycle": "bicycle",
    },
    image="JPEGImages/{split}_{index:06d}.jpg",
    label="SegmentationClass/{split}_{index:06d}.png",
    folders={"train": "train", "val": "val"},
    first_value=0,
    other=0,  # VOC's "background": everything that is none of its 20 objects
    unlabelled=IGNORE_INDEX,
    split_list="ImageSets/Segmentation/{split}.txt",
    indexed_labels=True,
)

FORMATS: Mapping[str, SynthFormat | None] = {KITTI: None, ADE20K.name: ADE20K, VOC.name: VOC}
"""Every `--format`; None is the native KITTI layout `dataset.py` writes itself."""


def synth_format(name: str) -> SynthFormat | None:
    if name not in FORMATS:
        raise DataError(
            f"synth.format: {name!r} is not one of {', '.join(FORMATS)}; pass --format kitti, ade20k or voc"
        )
    return FORMATS[name]
