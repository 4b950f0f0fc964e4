"""A trial's live progress file: written by `ProgressFileHook` in the worker, read by the driver.

Kept free of mmengine and torch so the driver's board can read it cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ablate.trial.ranks import is_main_rank
from ablate.util.files import atomic_write

PROGRESS_FILE = "progress.json"
PHASE_INFO = "ablate_phase"  # {phase, total}, set by a hook that runs a loop of its own (e.g. tta)


def read_progress(work_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((work_dir / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_progress(work_dir: Path, state: dict[str, Any]) -> None:
    """Written by one process per trial: rank 0 of a DDP trial (the others return)."""
    if not is_main_rank():
        return
    atomic_write(work_dir / PROGRESS_FILE, json.dumps(state))
