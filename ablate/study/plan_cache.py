"""Plans of unchanged studies, kept on disk so a rerun neither parses nor formats a config again.

Planning a study parses every mmseg config it names (mmengine's `Config.fromfile`) and formats
each trial's resolved config (yapf): about a second of a rerun of a finished study, spent to find
the same trial ids again. A plan is stored under a digest of everything it is computed from (the
study file and its includes, every config file in each inheritance chain (`pkg::` bases by the
package's version), the datasets' content fingerprints, the working directory paths resolve
against, ablate's own source and the versions of the libraries that parse and format configs)
and the planning arguments. Anything the digest cannot account for (a config in mmengine's
pure-Python `read_base()` style or reading environment variables, data still to be generated) is
planned afresh and not stored.

Entries are pickles of the planned `TrialSpec`s, written atomically under a file lock in
`$ABLATE_CACHE_DIR/plans` (per user and machine, written only by ablate itself).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as metadata
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ablate.study.study import resolve_path

if TYPE_CHECKING:
    from ablate.study.study import Study
    from ablate.trial.spec import TrialSpec

FOLDER = "plans"
KEEP = 256  # entries kept; the oldest go first
_LOCK_TIMEOUT_S = 30.0
# Libraries whose behaviour shapes a plan: config parsing, formatting, validation, hashing inputs.
_LIBRARIES = ("mmengine", "mmsegmentation", "mmcv", "mmcv-lite", "torch", "yapf", "pydantic", "numpy", "pyyaml")
# `pkg::` config prefixes that name a distribution other than the package.
_DISTRIBUTIONS = {"mmseg": "mmsegmentation", "mmdet": "mmdet", "mmpretrain": "mmpretrain", "mmcls": "mmcls"}


class _Unaccountable(Exception):
    """An input the digest cannot capture: plan afresh, store nothing."""


def folder() -> Path:
    from ablate.analysis.cache import cache_dir

    return cache_dir() / FOLDER


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """ablate's own source and the library versions: a change to either may change a plan."""
    import ablate

    h = hashlib.sha256(f"{ablate.__version__}|{sys.version}".encode())
    package = Path(ablate.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _LIBRARIES:
        try:
            h.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=-\0".encode())
    return h.hexdigest()


def _bases(path: Path, text: str) -> list[str]:
    """The `_base_` entries of an mmengine config file, read without running it."""
    if "read_base" in text:
        raise _Unaccountable(f"{path}: pure-Python config")
    if "{{$" in text:  # mmengine substitutes environment variables there
        raise _Unaccountable(f"{path}: reads environment variables")
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise _Unaccountable(str(exc)) from None
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise _Unaccountable(f"{path}: _base_ is not a literal") from None
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
                raise _Unaccountable(f"{path}: _base_ is not a file name or a list of them")
            found += list(values)
    return found


def _package_version(package: str) -> str:
    try:
        return metadata.version(_DISTRIBUTIONS.get(package, package))
    except metadata.PackageNotFoundError:
        raise _Unaccountable(f"{package}:: config of an unknown distribution") from None


def _config_chain(path: Path, h: Any, seen: set[str]) -> None:
    """Feed a config file and every file it inherits from into `h` (`pkg::` bases by version)."""
    key = str(path.resolve())
    if key in seen:
        return
    seen.add(key)
    data = path.read_bytes()
    h.update(key.encode() + b"\0" + hashlib.sha256(data).digest())
    for base in _bases(path, data.decode("utf-8", errors="replace")):
        if "::" in base:
            package = base.split("::", 1)[0]
            h.update(f"{base}@{_package_version(package)}\0".encode())
        else:
            target = path.parent / base
            if not target.is_file():
                raise _Unaccountable(f"{path}: base {base} not found")
            _config_chain(target, h, seen)


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, (list, tuple)):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def _study_files(source: Path) -> list[Path]:
    """The study file and the files it includes (resolved as `expand_includes` does)."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8-sig"))
    names = raw.get("include") if isinstance(raw, dict) else None
    names = [names] if isinstance(names, str) else names or []
    return [source, *(resolve_path(n, source.resolve().parent) for n in names if isinstance(n, str))]


def _inputs(study: Study) -> str:
    h = hashlib.sha256(_code_digest().encode())
    for path in _study_files(study.source):
        h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(
        json.dumps(
            [str(study.source), study.profile, str(study.base), str(study.data_root), str(Path.cwd())], default=str
        ).encode()
    )
    h.update(study.spec.model_dump_json().encode())
    # Paths resolve against the working directory first, then the study's folder: record where
    # every string the study holds resolves now, and the inheritance chain of each config named.
    seen: set[str] = set()
    for value in sorted(set(_strings(study.spec.model_dump(mode="json")))):
        if not value or "://" in value or "\0" in value or len(value) > 4096:
            continue
        try:
            resolved = resolve_path(value, study.source.parent)
        except (RuntimeError, ValueError):  # `~user` of no such user: not a path the study uses
            continue
        h.update(f"{value}\0{resolved}\0".encode())
        if resolved.suffix == ".py" and resolved.is_file():
            _config_chain(resolved, h, seen)
    return h.hexdigest()


def inputs_digest(study: Study) -> str | None:
    """Digest of what a study's plan is computed from, data aside; None when that cannot be told."""
    try:
        return _inputs(study)
    except (_Unaccountable, OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def plan_key(study: Study, runs_dir: Path, data_roots: Sequence[Path], options: dict[str, Any]) -> str | None:
    """The key of one plan: the study's inputs, its datasets' contents and the planning options."""
    from ablate.data import tree_fingerprint

    inputs = inputs_digest(study)
    if inputs is None:
        return None
    try:
        data = [(str(root), tree_fingerprint(root)) for root in data_roots]
    except Exception:  # noqa: BLE001  (planning itself reports a broken dataset, with its own words)
        return None
    payload = json.dumps(
        {"inputs": inputs, "runs_dir": str(runs_dir.resolve()), "data": data, **options}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _entry(key: str, kind: str) -> Path:
    return folder() / f"{key}.{kind}"


def load(key: str) -> list[TrialSpec] | None:
    """The plan stored under `key`, or None (absent, unreadable, or written by other code)."""
    try:
        trials = pickle.loads(_entry(key, "plan").read_bytes())
    except Exception:  # noqa: BLE001  (a damaged entry is a miss; it is replaced below)
        return None
    return trials if isinstance(trials, list) else None


def _write(key: str, kind: str, data: bytes) -> None:
    """Atomically, under the folder's lock; a cache that cannot be written is simply not kept."""
    from filelock import FileLock, Timeout

    target = _entry(key, kind)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / ".lock"), timeout=_LOCK_TIMEOUT_S):
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            _prune(target.parent)
    except (OSError, Timeout):
        return


def _prune(where: Path) -> None:
    entries = sorted((p for p in where.iterdir() if p.suffix in (".plan", ".checked")), key=lambda p: p.stat().st_mtime)
    for path in entries[:-KEEP] if len(entries) > KEEP else []:
        path.unlink(missing_ok=True)


def store(key: str, trials: list[TrialSpec]) -> None:
    _write(key, "plan", pickle.dumps(trials, protocol=pickle.HIGHEST_PROTOCOL))


def checked(digest: str | None) -> bool:
    """True when the study's configs passed `check_study_files` with these very inputs before."""
    return digest is not None and _entry(digest, "checked").is_file()


def mark_checked(digest: str | None) -> None:
    if digest is not None:
        _write(digest, "checked", b"")
