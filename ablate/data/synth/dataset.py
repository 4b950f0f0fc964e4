"""`synthesize`: arguments checked, one seed per image, images rendered in threads, published atomically."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from ablate.data.layout import ANN_DIR, IMG_DIR, save_png, write_dataset
from ablate.data.synth.formats import KITTI, synth_format
from ablate.data.synth.scene import render
from ablate.data.synth.styles import DOMAINS
from ablate.errors import DataError

GENERATOR = "ablate.synth/1"
"""Recorded in dataset.json; bump when the output changes so stale datasets are not reused."""

# Part of every image's seed: new splits or domains get new codes, existing ones never change.
_SPLIT_CODE = {"train": 0, "val": 1}
_DOMAIN_CODE = {"kitti": 0, "city": 1}


def _check(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise DataError(f"synth.{field}: {value!r} is not an integer >= {minimum}; pass --{field} {minimum} or more")
    return int(value)


def _drop_empty_folders(root: Path, tops: tuple[str, ...]) -> None:
    """The KITTI folders the publisher prepares; another layout leaves them out (only when empty)."""
    for top in tops:
        for folder in sorted((p for p in (root / top).glob("**/*") if p.is_dir()), reverse=True):
            folder.rmdir()
        if (root / top).is_dir():
            (root / top).rmdir()


def image_seed(seed: int, split: str, index: int, domain: str) -> np.random.SeedSequence:
    """Each image has its own stream, so any subset can be regenerated (or generated in parallel) alone."""
    return np.random.SeedSequence([seed, _SPLIT_CODE[split], index, _DOMAIN_CODE[domain]])


def synthesize(
    out: Path,
    train: int = 150,
    test: int = 50,
    height: int = 375,
    width: int = 1242,
    seed: int = 0,
    domain: str = "kitti",
    overwrite: bool = False,
    format: str = KITTI,
) -> Path:
    """Write a synthetic road-scene dataset in mmseg layout; same arguments give byte-identical files.

    `format` picks the layout and label space: the KITTI layout in Cityscapes train ids (the
    default), or ADE20K's or Pascal VOC's as those datasets ship (see `formats.py`).
    """
    train = _check("train", train, 1)
    test = _check("test", test, 1)
    height = _check("height", height, 32)
    width = _check("width", width, 32)
    seed = _check("seed", seed, 0)
    if domain not in DOMAINS:
        raise DataError(
            f"synth.domain: {domain!r} is not one of {', '.join(DOMAINS)}; pass --domain kitti or --domain city"
        )
    target = synth_format(format)
    parameters = {
        "generator": GENERATOR,
        "train": train,
        "test": test,
        "height": height,
        "width": width,
        "seed": seed,
        "domain": domain,
    }
    if target is not None:  # KITTI datasets written before formats existed keep matching
        parameters["format"] = target.name
    jobs = [("train", i) for i in range(train)] + [("val", i) for i in range(test)]

    def build(tmp: Path) -> dict[str, Any]:
        lut = None if target is None else target.lut()
        if target is not None:
            _drop_empty_folders(tmp, (IMG_DIR, ANN_DIR))
            for folder in target.folders_to_make():
                (tmp / folder).mkdir(parents=True, exist_ok=True)

        def one(job: tuple[str, int]) -> None:
            split, index = job
            rgb, label = render(np.random.default_rng(image_seed(seed, split, index, domain)), height, width, domain)
            if target is not None and lut is not None:
                target.save(tmp, split, index, rgb, label, lut)
                return
            stem = f"{index:06d}.png"
            save_png(tmp / IMG_DIR / split / stem, rgb)
            save_png(tmp / ANN_DIR / split / stem, label)

        # numpy, cv2 and zlib release the GIL for the heavy parts; every image has its own seed,
        # so the thread count never changes the output.
        workers = max(1, min(4, os.cpu_count() or 1, len(jobs)))
        if workers == 1:
            for job in jobs:
                one(job)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(one, jobs):
                    pass
        counts = {"train": train, "val": test}
        if target is None:
            return {"counts": counts}
        target.write_split_lists(tmp, counts)
        return {"counts": counts, "format": target.name, "classes": list(target.classes())}

    return write_dataset(out, "synth", parameters, build, overwrite=overwrite)
