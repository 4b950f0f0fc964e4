"""Convert the official KITTI semantics download (Cityscapes label ids) to the mmseg train-id layout."""

from __future__ import annotations

import shutil
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ablate.data.classes import label_id_to_train_id
from ablate.data.layout import ANN_DIR, IMG_DIR, save_png, write_dataset
from ablate.errors import DataError

IMAGE_SUBDIR = Path("training") / "image_2"
LABEL_SUBDIR = Path("training") / "semantic"

_SHOW = 5


def _shown(stems: list[str]) -> str:
    return ", ".join(stems[:_SHOW]) + (f" and {len(stems) - _SHOW} more" if len(stems) > _SHOW else "")


def _check_count(field: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise DataError(f"kitti.{field}: {value!r} is not an integer >= {minimum}; pass --{field} {minimum} or more")
    return int(value)


def _find_pairs(raw_dir: Path) -> list[str]:
    """Sorted stems present in both folders; refuses partial downloads instead of silently dropping files."""
    if not raw_dir.is_dir():
        raise DataError(
            f"{raw_dir}: KITTI folder not found; download data_semantics.zip from the KITTI website, "
            "unzip it, and pass the folder that contains training/"
        )
    image_dir, label_dir = raw_dir / IMAGE_SUBDIR, raw_dir / LABEL_SUBDIR
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DataError(
                f"{folder}: folder missing; pass the unzipped KITTI semantics folder that contains "
                f"{IMAGE_SUBDIR.as_posix()} and {LABEL_SUBDIR.as_posix()}"
            )
    images = {p.stem for p in image_dir.glob("*.png")}
    labels = {p.stem for p in label_dir.glob("*.png")}
    if not images:
        raise DataError(f"{image_dir}: no .png images; re-download or unzip the KITTI semantics data")
    no_label = sorted(images - labels)
    if no_label:
        raise DataError(
            f"{label_dir}: no label for {len(no_label)} image(s) ({_shown(no_label)}); "
            "restore the missing label PNGs or remove those images"
        )
    no_image = sorted(labels - images)
    if no_image:
        raise DataError(
            f"{image_dir}: no image for {len(no_image)} label(s) ({_shown(no_image)}); "
            "restore the missing images or remove those labels"
        )
    return sorted(images)


def _check_files(raw_dir: Path, stems: list[str]) -> None:
    """Header-only checks of every pair, so a bad file fails before any conversion work starts."""
    for stem in stems:
        img_path = raw_dir / IMAGE_SUBDIR / f"{stem}.png"
        lab_path = raw_dir / LABEL_SUBDIR / f"{stem}.png"
        try:
            with Image.open(img_path) as im:
                img_mode, img_size = im.mode, im.size
            with Image.open(lab_path) as lab:
                lab_mode, lab_size = lab.mode, lab.size
        except OSError as exc:
            raise DataError(
                f"{raw_dir / IMAGE_SUBDIR}: cannot read pair {stem!r} ({exc}); re-download the file"
            ) from exc
        if img_mode != "RGB":
            raise DataError(
                f"{img_path}: image mode is {img_mode!r}, expected 8-bit 'RGB'; "
                "replace it with the original KITTI image"
            )
        if lab_mode != "L":
            raise DataError(
                f"{lab_path}: label mode is {lab_mode!r}, expected 8-bit single-channel 'L' with label ids; "
                "use the files from training/semantic, not semantic_rgb"
            )
        if img_size != lab_size:
            raise DataError(
                f"{lab_path}: label size {lab_size[0]}x{lab_size[1]} differs from image size "
                f"{img_size[0]}x{img_size[1]}; replace it with the original KITTI label"
            )


def convert_kitti(
    raw_dir: Path,
    out: Path,
    train: int = 150,
    test: int = 50,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a reproducible shuffled train/val split of KITTI semantics with train-id labels.

    Images are copied byte for byte; labels go through the Cityscapes id -> train id table, so
    classes KITTI shares with Cityscapes but mmseg does not train on (parking, guard rail, ...) become 255.
    """
    raw_dir, out = Path(raw_dir), Path(out)
    train = _check_count("train", train, 1)
    test = _check_count("test", test, 1)
    seed = _check_count("seed", seed, 0)
    stems = _find_pairs(raw_dir)
    if len(stems) < train + test:
        raise DataError(
            f"{raw_dir / IMAGE_SUBDIR}: {len(stems)} image/label pairs but --train {train} + --test {test} = "
            f"{train + test} requested; lower --train/--test"
        )
    _check_files(raw_dir, stems)
    order = np.random.default_rng(seed).permutation(len(stems))
    splits = {
        "train": [stems[i] for i in order[:train]],
        "val": [stems[i] for i in order[train : train + test]],
    }
    parameters = {"raw_dir": str(raw_dir.resolve()), "train": train, "test": test, "seed": seed}
    lut = label_id_to_train_id()

    def build(tmp: Path) -> dict[str, Any]:
        for split, chosen in splits.items():
            for stem in chosen:
                shutil.copyfile(raw_dir / IMAGE_SUBDIR / f"{stem}.png", tmp / IMG_DIR / split / f"{stem}.png")
                with Image.open(raw_dir / LABEL_SUBDIR / f"{stem}.png") as lab:
                    ids = np.asarray(lab)
                save_png(tmp / ANN_DIR / split / f"{stem}.png", lut[ids])
        return {"counts": {k: len(v) for k, v in splits.items()}, "splits": splits}

    return write_dataset(out, "kitti", parameters, build, overwrite=overwrite)
