"""What a trial ran on: the study's git state, package versions, the GPU and the determinism flags.

Two trials with equal configs and data can still disagree because the code or the libraries
under them changed; these tags make that visible (`ablate diff`). Nothing here may fail a trial:
a missing git, a folder outside any repository or an unknown package becomes a tag value that
says so.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ablate.tracking import tags as T

GIT_TIMEOUT_S = 10.0
NOT_A_REPOSITORY = "not a git repository"
NO_COMMIT = "no commit yet"
NO_GIT = "git not installed"
UNKNOWN = "unknown"

# version tag suffix -> distributions that provide it, first installed wins (mmcv or mmcv-lite)
PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "mmseg": ("mmsegmentation",),
    "mmengine": ("mmengine",),
    "mmcv": ("mmcv", "mmcv-lite", "mmcv-full"),
    "ablate": ("mmseg-ablate",),
    "mlflow": ("mlflow", "mlflow-skinny"),
}


@dataclass(frozen=True)
class GitState:
    """The commit of the repository holding a folder, and whether tracked files differ from it."""

    commit: str  # a hash, or why there is none (NOT_A_REPOSITORY, NO_COMMIT, NO_GIT, UNKNOWN)
    dirty: bool | None

    @property
    def known(self) -> bool:
        return self.commit not in (NOT_A_REPOSITORY, NO_COMMIT, NO_GIT, UNKNOWN)

    def tags(self) -> dict[str, str]:
        out = {T.GIT_COMMIT: self.commit, T.GIT_DIRTY: UNKNOWN if self.dirty is None else str(self.dirty).lower()}
        if self.known:  # MLflow's UI shows its own tag on the run page
            out[T.MLFLOW_GIT_COMMIT] = self.commit
        return out


def _git(folder: Path, *args: str) -> str | None:
    """stdout of one git command in `folder`, or None when git is missing, fails or hangs."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(folder: Path | None) -> GitState:
    """Untracked files do not make a tree dirty: run outputs (work dirs, stores) often lie inside
    the repository, and a study's own inputs are tracked files once committed."""
    if folder is None or not Path(folder).is_dir():
        return GitState(UNKNOWN, None)
    if shutil.which("git") is None:
        return GitState(NO_GIT, None)
    head = _git(Path(folder), "rev-parse", "HEAD")
    if head is None:
        inside = _git(Path(folder), "rev-parse", "--is-inside-work-tree")
        return GitState(NOT_A_REPOSITORY if inside is None else NO_COMMIT, None)
    status = _git(Path(folder), "status", "--porcelain", "--untracked-files=no")
    return GitState(head.strip(), None if status is None else bool(status.strip()))


def package_version(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def version_tags() -> dict[str, str]:
    """Versions read from the installed distributions (importing none of them)."""
    out = {T.VERSION_PREFIX + "python": platform.python_version()}
    out.update({T.VERSION_PREFIX + key: package_version(names) for key, names in PACKAGES.items()})
    return out


def torch_tags(device: Any = None) -> dict[str, str]:
    """CUDA/cuDNN builds, the GPU model and the determinism switches as torch holds them now.

    Read when training starts, after mmengine applied the config's `randomness` and `env_cfg`,
    so the tags say what the trial really ran with rather than what was asked for.
    """
    import torch

    cuda = torch.version.cuda or "none"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    gpu = "none"
    if device is not None and getattr(device, "type", None) == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(device)
    return {
        T.VERSION_PREFIX + "cuda": cuda,
        T.VERSION_PREFIX + "cudnn": str(cudnn) if cudnn else "none",
        T.GPU: gpu,
        T.DETERMINISTIC_ALGORITHMS: str(torch.are_deterministic_algorithms_enabled()).lower(),
        T.CUDNN_DETERMINISTIC: str(bool(torch.backends.cudnn.deterministic)).lower(),
        T.CUDNN_BENCHMARK: str(bool(torch.backends.cudnn.benchmark)).lower(),
    }


def randomness_tags(randomness: Any) -> dict[str, str]:
    """The config's `randomness` (seed, deterministic) as tags."""
    randomness = dict(randomness or {})
    out = {T.DETERMINISTIC: str(bool(randomness.get("deterministic", False))).lower()}
    if randomness.get("seed") is not None:
        out[T.SEED] = str(randomness["seed"])
    return out


def environment_keys(tags: dict[str, str]) -> dict[str, str]:
    """The environment part of a run's tags: versions, git state, GPU, devices and determinism."""
    return {k: v for k, v in tags.items() if k.startswith(T.VERSION_PREFIX) or k in T.ENVIRONMENT}
