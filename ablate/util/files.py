"""Files several processes share: written whole or not at all, updated under a lock, kept in
one cache folder per machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "ABLATE_CACHE_DIR"


def cache_dir() -> Path:
    """`$ABLATE_CACHE_DIR`, else `~/.cache/ablate`: FLOPs, latencies, probes and fetched
    checkpoints, per machine."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ablate")


def _scratch(path: Path) -> Path:
    """A name beside `path` no other writer uses (same folder: the final rename stays atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: Path, text: str) -> Path:
    """Write `text` to `path` so that a reader sees the old file or the new one, never a part."""
    path = Path(path)
    tmp = _scratch(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_link(source: Path, target: Path) -> Path:
    """Make `target` the same file as `source` (a hard link, else a copy), atomically."""
    target = Path(target)
    tmp = _scratch(target)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def replace_folder(new: Path, target: Path) -> Path:
    """Put the folder `new` at `target`; an existing `target` is moved aside first and deleted
    after, so `target` is never missing for longer than two renames."""
    target = Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


@contextlib.contextmanager
def locked(path: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold `<path>.lock` (an OS file lock: released if the holder dies) while reading, changing
    and writing `path`, so that concurrent updates from other processes are not lost."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout_s):
        yield
