"""Convert the official Cityscapes download (`leftImg8bit/` + `gtFine/`) to the mmseg train-id layout.

The paper pretrains on Cityscapes before transferring to KITTI; with the converted folder that
pretraining is one `pretrain:` entry of a study (`data: {root: data/cityscapes}`). The official
splits are kept: `train` (2975 images) becomes `img_dir/train`, `val` (500) becomes `img_dir/val`;
`test` has no public labels and is left out. Label ids go through cityscapesscripts' table to
train ids (255 = ignore), as for KITTI.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ablate.data.classes import label_id_to_train_id
from ablate.data.layout import ANN_DIR, IMG_DIR, save_png, write_dataset
from ablate.errors import DataError

IMAGE_DIR = "leftImg8bit"
LABEL_DIR = "gtFine"
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
SPLITS = {"train": "train", "val": "val"}  # Cityscapes split -> mmseg split folder
_SHOW = 5


def _shown(names: list[str]) -> str:
    return ", ".join(names[:_SHOW]) + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def _pairs(raw_dir: Path, split: str) -> dict[str, tuple[Path, Path]]:
    """stem (`<city>_<seq>_<frame>`) -> (image, label ids) of one split; a partial download is
    refused instead of silently dropping images."""
    image_root, label_root = raw_dir / IMAGE_DIR / split, raw_dir / LABEL_DIR / split
    for folder, what in ((image_root, "leftImg8bit_trainvaltest.zip"), (label_root, "gtFine_trainvaltest.zip")):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder missing; unzip {what} from the Cityscapes website into {raw_dir}")
    images = {p.name[: -len(IMAGE_SUFFIX)]: p for p in image_root.glob(f"*/*{IMAGE_SUFFIX}")}
    labels = {p.name[: -len(LABEL_SUFFIX)]: p for p in label_root.glob(f"*/*{LABEL_SUFFIX}")}
    if not images:
        raise DataError(f"{image_root}: no <city>/*{IMAGE_SUFFIX} images; unzip leftImg8bit_trainvaltest.zip again")
    no_label = sorted(set(images) - set(labels))
    if no_label:
        raise DataError(
            f"{label_root}: no *{LABEL_SUFFIX} for {len(no_label)} image(s) ({_shown(no_label)}); "
            "unzip gtFine_trainvaltest.zip again (the label ids, not only the colour images)"
        )
    no_image = sorted(set(labels) - set(images))
    if no_image:
        raise DataError(
            f"{image_root}: no image for {len(no_image)} label(s) ({_shown(no_image)}); "
            "unzip leftImg8bit_trainvaltest.zip again"
        )
    return {stem: (images[stem], labels[stem]) for stem in sorted(images)}


def _check_pair(image: Path, label: Path) -> None:
    """Header-only checks, so a bad file fails before any conversion work starts."""
    try:
        with Image.open(image) as im:
            image_mode, image_size = im.mode, im.size
        with Image.open(label) as lab:
            label_mode, label_size = lab.mode, lab.size
    except OSError as exc:
        raise DataError(
            f"{image.parent}: cannot read the pair {image.name} / {label.name} ({exc}); re-download it"
        ) from None
    if image_mode != "RGB":
        raise DataError(f"{image}: image mode is {image_mode!r}, expected 8-bit 'RGB'; use the leftImg8bit PNGs")
    if label_mode not in ("L", "P"):
        raise DataError(
            f"{label}: label mode is {label_mode!r}, expected 8-bit label ids; use the "
            f"*{LABEL_SUFFIX} files, not the colour or instance images"
        )
    if image_size != label_size:
        raise DataError(
            f"{label}: label size {label_size[0]}x{label_size[1]} differs from image size "
            f"{image_size[0]}x{image_size[1]}; replace it with the original gtFine file"
        )


def convert_cityscapes(raw_dir: Path, out: Path, overwrite: bool = False, workers: int | None = None) -> Path:
    """Write Cityscapes' train and val splits with train-id labels into `out`.

    Images are copied byte for byte; labels go through the Cityscapes id -> train id table
    (`workers` threads encode them; PNG coding releases the GIL).
    """
    raw_dir, out = Path(raw_dir), Path(out)
    if not raw_dir.is_dir():
        raise DataError(
            f"{raw_dir}: Cityscapes folder not found; unzip leftImg8bit_trainvaltest.zip and "
            f"gtFine_trainvaltest.zip into one folder and pass it (it holds {IMAGE_DIR}/ and {LABEL_DIR}/)"
        )
    splits = {ours: _pairs(raw_dir, theirs) for theirs, ours in SPLITS.items()}
    for pairs in splits.values():
        for image, label in pairs.values():
            _check_pair(image, label)
    lut = label_id_to_train_id()

    def convert(tmp: Path, split: str, stem: str, image: Path, label: Path) -> None:
        shutil.copyfile(image, tmp / IMG_DIR / split / f"{stem}.png")
        with Image.open(label) as lab:
            ids = np.asarray(lab)
        save_png(tmp / ANN_DIR / split / f"{stem}.png", lut[ids])

    def build(tmp: Path) -> dict[str, Any]:
        jobs = [(tmp, split, stem, *pair) for split, pairs in splits.items() for stem, pair in pairs.items()]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda job: convert(*job), jobs))  # list(): the first failure is raised here
        return {
            "counts": {split: len(pairs) for split, pairs in splits.items()},
            "cities": {split: sorted({p[0].parent.name for p in pairs.values()}) for split, pairs in splits.items()},
        }

    return write_dataset(out, "cityscapes", {"raw_dir": str(raw_dir.resolve())}, build, overwrite=overwrite)
