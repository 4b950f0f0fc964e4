"""Checkpoints that cross machines: kept in the MLflow artifact store, fetched into a local cache.

On a cluster the trial that loads a checkpoint (a transfer rung, a distillation student) may
train on another machine than the trial that wrote it. The writer logs its `best.pth` as an
artifact with its SHA-256; a reader that does not find the file on its own disk downloads it from
the writer's run into a cache keyed by run id and checksum, and trains from there. The same cache
serves `runs:/<run_id>/<path>` sources (a checkpoint of another study's run), and `http(s)://`
sources are downloaded once into the cache mmengine itself uses for URLs (torch.hub's), with the
SHA-256 prefix of mmengine's file naming convention (`name-<sha256 prefix>.pth`) verified.

Trial ids never change: a dependent's id hashes its source trial's id, not where the file lies.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ablate.errors import AblateError
from ablate.tracking import tags as T
from ablate.tracking.failures import TrackingUnavailable
from ablate.util.files import cache_dir
from ablate.util.text import one_line

if TYPE_CHECKING:
    from ablate.tracking.store import RunStore

ARTIFACT_DIR = "checkpoints"  # the folder of a run's artifacts that holds its checkpoint
BEST_CHECKPOINT = "best.pth"  # in a trial's work dir: the weights later trials load
RUNS_SCHEME = "runs:/"
URL_SCHEMES = ("http://", "https://")
# mmengine's (and torch.hub's) convention: `<name>-<first 8+ hex digits of the SHA-256>.<ext>`
HASH_PREFIX = re.compile(r"-([a-f0-9]{8,64})\.")
_CHUNK = 1 << 20


class CheckpointError(AblateError):
    """A checkpoint a study names cannot be found, reached or trusted."""


def is_url(value: str) -> bool:
    return value.startswith(URL_SCHEMES)


def is_runs_uri(value: str) -> bool:
    return value.startswith(RUNS_SCHEME)


def is_remote(value: str) -> bool:
    """A checkpoint named by URL or MLflow artifact URI rather than a file on this machine."""
    return is_url(value) or is_runs_uri(value)


def parse_runs_uri(value: str) -> tuple[str, str]:
    """(run id, artifact path) of `runs:/<run_id>/<path>`."""
    run_id, _, path = value[len(RUNS_SCHEME) :].strip("/").partition("/")
    if not run_id or not path.strip("/"):
        raise CheckpointError(
            f"'{value}' is not runs:/<run_id>/<artifact path> (e.g. runs:/0a1b2c/checkpoints/best.pth)"
        )
    return run_id, path.strip("/")


def hash_prefix(url: str) -> str | None:
    """The SHA-256 prefix a URL's file name promises, if it follows the convention."""
    match = HASH_PREFIX.search(os.path.basename(urlsplit(url).path))
    return match.group(1) if match else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """`$ABLATE_CACHE_DIR/checkpoints` (default `~/.cache/ablate/checkpoints`): per machine."""
    return cache_dir() / "checkpoints"


def url_cache_path(url: str) -> Path:
    """Where mmengine's URL loader keeps a download: `<torch hub dir>/checkpoints/<file name>`."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlsplit(url).path)


# -- writing ---------------------------------------------------------------------------------------
def log_checkpoint(store: RunStore, run_id: str, path: Path) -> str:
    """Store a trial's checkpoint with its run (`checkpoints/<name>`) and tag its SHA-256."""
    digest = sha256_of(path)
    store.log_file(run_id, path, ARTIFACT_DIR)
    store.log_tags(run_id, {T.CHECKPOINT: f"{ARTIFACT_DIR}/{path.name}", T.CHECKPOINT_SHA256: digest})
    return digest


# -- reading ---------------------------------------------------------------------------------------
def _move_into_place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)  # atomic: trials fetching the same file at once each land a whole one


def fetch_artifact(tracking_uri: str, run_id: str, artifact_path: str, sha256: str | None = None) -> Path:
    """A run's artifact as a local file, downloaded once per machine (verified when the SHA-256 is
    known) into `<cache>/<run id>/<sha256 prefix>/<path>`."""
    from ablate.tracking.store import RunStore

    key = sha256[:16] if sha256 else "unverified"
    target = cache_root() / run_id / key / artifact_path
    if target.is_file():
        return target
    partial = cache_root() / f".partial-{uuid.uuid4().hex}"
    partial.mkdir(parents=True)
    try:
        try:
            local = RunStore.open(tracking_uri).download_artifact(run_id, artifact_path, partial)
        except TrackingUnavailable:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"cannot download {RUNS_SCHEME}{run_id}/{artifact_path} from {tracking_uri} "
                f"({one_line(exc, with_type=False)})"
            ) from None
        if not local.is_file():
            raise CheckpointError(f"{RUNS_SCHEME}{run_id}/{artifact_path} is a folder, not a checkpoint file")
        if sha256 is not None:
            got = sha256_of(local)
            if got != sha256:
                raise CheckpointError(
                    f"{RUNS_SCHEME}{run_id}/{artifact_path}: downloaded file has SHA-256 {got}, "
                    f"the run recorded {sha256}"
                )
        _move_into_place(local, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def fetch_runs_uri(tracking_uri: str, uri: str) -> Path:
    """A `runs:/<run_id>/<path>` checkpoint as a local file (verified when it is the run's stored
    checkpoint, whose SHA-256 the run records)."""
    from ablate.tracking.store import RunStore

    run_id, path = parse_runs_uri(uri)
    run = RunStore.open(tracking_uri).trial_run(run_id)
    if run is None:
        raise CheckpointError(f"{uri}: no run {run_id} in the tracking store {tracking_uri}")
    stored = run.stored_checkpoint
    return fetch_artifact(tracking_uri, run_id, path, stored[1] if stored and stored[0] == path else None)


def fetch_url(url: str) -> Path:
    """A checkpoint URL as a local file in mmengine's download cache, fetched once per machine; a
    SHA-256 prefix in its file name is checked before the file is kept."""
    import torch.hub

    target = url_cache_path(url)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    expected = hash_prefix(url)
    try:
        torch.hub.download_url_to_file(url, str(target), expected, progress=False)
    except RuntimeError as exc:
        if "invalid hash value" in str(exc):
            raise CheckpointError(
                f"{url}: the downloaded file's SHA-256 does not start with {expected}, which its "
                "name promises; the file is corrupt or not the one named (it was not kept)"
            ) from None
        raise CheckpointError(f"cannot download {url} ({exc})") from None
    except OSError as exc:
        raise CheckpointError(f"cannot download {url} ({getattr(exc, 'reason', None) or exc})") from None
    return target


def trial_checkpoint(tracking_uri: str, experiment_id: str, trial_id: str) -> Path:
    """The checkpoint a finished trial of the study stored, fetched from its newest such run."""
    from ablate.tracking.store import RunStore

    for record in RunStore.open(tracking_uri).find_trial_runs(experiment_id, trial_id):
        if record.finished and record.stored_checkpoint is not None:
            return fetch_artifact(tracking_uri, record.run_id, *record.stored_checkpoint)
    raise CheckpointError(
        f"the checkpoint of trial {trial_id} is not on this machine, and no finished run of it "
        f"in {tracking_uri} stored one; train it again (`ablate run --rerun`) so that it does"
    )


def local_checkpoint(value: str, depends_on: Iterable[str], tracking_uri: str, experiment_id: str) -> str:
    """Where this machine reads a checkpoint a config names: URLs and `runs:/` URIs fetched into
    the cache, a dependency's `best.pth` missing here fetched from its run, anything else as is."""
    if is_runs_uri(value):
        return str(fetch_runs_uri(tracking_uri, value))
    if is_url(value):
        return str(fetch_url(value))
    path = Path(value)
    if "://" in value or path.exists():
        return value  # another loader scheme of mmengine's (open-mmlab://, ...), or here already
    if path.name == BEST_CHECKPOINT and path.parent.name in set(depends_on):
        return str(trial_checkpoint(tracking_uri, experiment_id, path.parent.name))
    return value


def _checkpoint_slots(cfg: Any) -> Iterable[tuple[Any, str]]:
    """(container, key) of every place a config names weights: `load_from`, and every
    `checkpoint` / `pretrained` under `model` (init_cfg, a distillation teacher)."""
    if isinstance(cfg.get("load_from"), str):
        yield cfg, "load_from"
    stack = [cfg.get("model")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("checkpoint", "pretrained") and isinstance(value, str):
                    yield node, key
                elif isinstance(value, (dict, list, tuple)):
                    stack.append(value)
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def localize_checkpoints(cfg: Any, depends_on: Iterable[str], tracking_uri: str, experiment_id: str) -> dict[str, str]:
    """Rewrite the config's checkpoints to files on this machine (see `local_checkpoint`); returns
    {as named: as read} for those that moved."""
    moved: dict[str, str] = {}
    deps = list(depends_on)
    for node, key in list(_checkpoint_slots(cfg)):
        value = node[key]
        local = local_checkpoint(value, deps, tracking_uri, experiment_id)
        if local != value:
            node[key] = local
            moved[value] = local
    return moved
