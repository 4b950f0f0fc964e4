"""The accelerators this process may use, counted without importing torch."""

from __future__ import annotations

import os
from pathlib import Path


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use: `CUDA_VISIBLE_DEVICES` when set, else those the driver
    lists (`/proc/driver/nvidia/gpus`); importing torch to ask would cost seconds."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0
