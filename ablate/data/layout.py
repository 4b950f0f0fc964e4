"""The mmseg folder layout: validation, content fingerprint, and atomic publication of a dataset."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ablate.data.classes import CLASSES
from ablate.errors import DataError
from ablate.util.files import replace_folder

SPLITS: tuple[str, ...] = ("train", "val")
"""mmseg split folder names; the generators' `test` images go to `val`."""

IMG_DIR = "img_dir"
ANN_DIR = "ann_dir"
META_FILE = "dataset.json"
COMPLETE_MARKER = ".complete"

PNG_COMPRESS_LEVEL: dict[str, int] = {"RGB": 1, "L": 6}
"""Fixed zlib levels, so identical arrays give identical bytes. Noisy photos barely shrink beyond
level 1 but take twice as long; labels are flat and compress well at any level."""

_HASH_CHUNK = 1 << 20

# root -> (stat signature, fingerprint); one entry per root so long sessions do not grow it.
_FINGERPRINTS: dict[str, tuple[tuple[tuple[str, int, int, int, int], ...], str]] = {}
_DIGESTS: dict[tuple[str, int, int, int, int], bytes] = {}


def _fix_hint(root: Path) -> str:
    return f"create it with `ablate data synth --out {root}` or `ablate data kitti RAW --out {root}`"


def check_layout(root: Path) -> None:
    """Fail early, with the command that fixes it, before mmseg fails deep inside a dataloader."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; {_fix_hint(root)}")
    for top in (IMG_DIR, ANN_DIR):
        for split in SPLITS:
            folder = root / top / split
            if not folder.is_dir():
                raise DataError(f"{folder}: folder missing; {_fix_hint(root)}")
            if not any(p.suffix == ".png" for p in folder.iterdir()):
                raise DataError(f"{folder}: no .png files; {_fix_hint(root)}")
    for split in SPLITS:
        imgs = {p.stem for p in (root / IMG_DIR / split).glob("*.png")}
        anns = {p.stem for p in (root / ANN_DIR / split).glob("*.png")}
        if imgs != anns:
            lonely = sorted(imgs ^ anns)
            shown = ", ".join(lonely[:5]) + (" ..." if len(lonely) > 5 else "")
            raise DataError(
                f"{root / IMG_DIR / split}: {len(lonely)} image/label files without a partner in "
                f"{ANN_DIR}/{split} or {IMG_DIR}/{split} ({shown}); regenerate the dataset or remove them"
            )


def _data_files(root: Path) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for top in (IMG_DIR, ANN_DIR):
        base = root / top
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                path = Path(dirpath) / name
                files.append((path.relative_to(root).as_posix(), path))
    files.sort()
    return files


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.digest()


def dataset_fingerprint(root: Path) -> str:
    """Content hash that keys caches and run records, so edited labels never reuse stale results.

    Hashing every byte is the slow part, so the result is remembered per root until any file's
    size, mtime, ctime or inode changes.
    """
    root = Path(root)
    check_layout(root)
    return files_fingerprint(str(root.resolve()), _data_files(root))


def tree_fingerprint(root: Path) -> str:
    """`dataset_fingerprint` of a folder in the layout above, else the hash of every file under
    `root` but ablate's own caches beside the data: a key that changes whenever the data does."""
    root = Path(root)
    try:
        return dataset_fingerprint(root)
    except DataError:
        pass
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    files: list[tuple[str, Path]] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if not (rel.startswith("stats_") and rel.endswith(".json")):
                files.append((rel, path))
    files.sort()
    return files_fingerprint(f"tree:{root.resolve()}", files)


def files_fingerprint(key: str, files: list[tuple[str, Path]]) -> str:
    """Hash of (relative name, size, bytes) of sorted `files`, remembered under `key` until any
    file's size, mtime, ctime or inode changes."""
    signature = []
    for rel, path in files:
        st = path.stat()
        signature.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    sig = tuple(signature)
    cached = _FINGERPRINTS.get(key)
    if cached is not None and cached[0] == sig:
        return cached[1]
    h = hashlib.sha256()
    for (rel, path), (_, size, mtime, ctime, inode) in zip(files, sig, strict=True):
        h.update(rel.encode("utf-8") + b"\0" + str(size).encode("ascii") + b"\0")
        # one file hashed once per process, whichever fingerprint (layout, tree, config) lists it
        known = (str(path), size, mtime, ctime, inode)
        if known not in _DIGESTS:
            _DIGESTS[known] = _file_digest(path)
        h.update(_DIGESTS[known])
    fingerprint = h.hexdigest()[:16]
    _FINGERPRINTS[key] = (sig, fingerprint)
    return fingerprint


def save_png(path: Path, array: np.ndarray) -> None:
    """One PNG writer for every dataset file: fixed settings and no metadata keep output byte-stable."""
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))  # HxWx3 -> RGB, HxW -> L
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL[image.mode])


def read_meta(root: Path) -> dict[str, Any] | None:
    """The dataset.json of a completed dataset, or None when it is absent, partial or unreadable."""
    root = Path(root)
    if not (root / COMPLETE_MARKER).is_file():
        return None
    try:
        meta = json.loads((root / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _existing_difference(out: Path, source: str, parameters: Mapping[str, Any]) -> str | None:
    """None when `out` already holds exactly this dataset, else why it does not."""
    meta = read_meta(out)
    if meta is None:
        return "it is not a completed ablate dataset"
    if meta.get("source") != source:
        return f"it was made from source {meta.get('source')!r}, not {source!r}"
    old = meta.get("parameters")
    if not isinstance(old, dict):
        return "its dataset.json has no parameters"
    changed = sorted(k for k in set(old) | set(parameters) if old.get(k) != parameters.get(k))
    if changed:
        shown = ", ".join(f"{k}={old.get(k)!r}" for k in changed)
        return f"it was made with {shown}"
    return None


def write_dataset(
    out: Path,
    source: str,
    parameters: Mapping[str, Any],
    build: Callable[[Path], Mapping[str, Any]],
    overwrite: bool = False,
) -> Path:
    """Build into a temporary sibling and rename it onto `out`, so a crash never leaves half a dataset.

    `build(tmp)` writes the images and labels under tmp and returns extra dataset.json fields (counts,
    the classes of a layout other than the KITTI one, ...).
    An existing complete dataset with the same source and parameters is returned untouched.
    """
    out = Path(out)
    params = dict(parameters)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; pass a different --out")
    existing = out.is_dir() and any(out.iterdir())
    if existing:
        why = _existing_difference(out, source, params)
        if why is None:
            return out
        if not overwrite:
            raise DataError(
                f"{out}: already exists and differs ({why}); pass a new --out, delete the folder, or pass --overwrite"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for top in (IMG_DIR, ANN_DIR):
            for split in SPLITS:
                (tmp / top / split).mkdir(parents=True)
        extra = dict(build(tmp))
        meta = {"source": source, "parameters": params, "classes": list(CLASSES), **extra}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / COMPLETE_MARKER).write_bytes(b"")
        _publish(tmp, out, source, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _publish(tmp: Path, out: Path, source: str, params: Mapping[str, Any]) -> None:
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():  # only reached with overwrite=True
        replace_folder(tmp, out)
        return
    try:
        os.replace(tmp, out)
    except OSError:
        # Another process published the same folder first; accept it if it is the same dataset.
        if out.is_dir() and _existing_difference(out, source, params) is None:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise
