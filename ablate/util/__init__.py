"""Small helpers every layer may use: one line of an exception, a duration, atomic files and a
file lock, the cache folder, the GPUs this process sees, and dependency order. Nothing here
imports torch, mmengine or MLflow."""

from ablate.util.devices import visible_gpus
from ablate.util.files import atomic_link, atomic_write, cache_dir, locked, replace_folder
from ablate.util.graph import Cycle, dependency_order, first_cycle
from ablate.util.logs import LOG_FILE, library_logs
from ablate.util.text import LINE_LIMIT, duration, one_line

__all__ = [
    "LINE_LIMIT",
    "LOG_FILE",
    "Cycle",
    "atomic_link",
    "atomic_write",
    "cache_dir",
    "dependency_order",
    "duration",
    "first_cycle",
    "library_logs",
    "locked",
    "one_line",
    "replace_folder",
    "visible_gpus",
]
