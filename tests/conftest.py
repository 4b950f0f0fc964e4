"""Shared fixtures: a tiny synthetic dataset (made once), a fresh sqlite MLflow store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep every test on loopback and off the user's own stores.
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("ABLATE_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "ablate"))

REPO = Path(__file__).resolve().parents[1]
B0_CONFIG = REPO / "configs" / "segformer" / "segformer_mit-b0_kitti.py"
TINY = dict(train=6, test=3, height=64, width=192, seed=0)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6/3-image 64x192 synthetic KITTI-like dataset, generated once per test session."""
    from ablate import data

    return data.synthesize(tmp_path_factory.mktemp("data") / "tiny", **TINY)


@pytest.fixture(scope="session")
def tiny_ade20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same scenes in ADE20K's layout and label space, for configs on mmseg's ADE20K dataset."""
    from ablate import data

    return data.synthesize(tmp_path_factory.mktemp("data") / "tiny_ade20k", **TINY, format="ade20k")


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


def write_study(path: Path, data_root: Path, **extra: object) -> Path:
    """A tiny SegFormer-B0 study file; `extra` replaces top-level sections."""
    import yaml

    doc: dict = {
        "name": "tiny",
        "base": str(B0_CONFIG),
        "data": {"root": str(data_root), "image_scale": [192, 64]},
        "budget": {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        "seeds": [0],
        "trials": [{"name": "base"}],
    }
    doc.update(extra)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# The longest files first: with `-n 2 --dist loadfile` (make test) the workers take files in this
# order, so the long ones do not start last and leave one worker idle at the end.
_LONGEST_FIRST = ["test_slurm.py", "test_chaos.py", "test_multinode.py", "test_ddp.py", "test_dispatch.py", "test_auto_seeds.py",
                  "test_studies.py", "test_search.py", "test_server.py", "test_quiet_output.py", "test_cluster.py"]


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file kept
