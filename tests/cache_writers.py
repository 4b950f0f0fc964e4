"""A process adding entries to a shared on-disk cache table (a module of its own: spawned
children import it, not the test module and its torch)."""

from __future__ import annotations

import os
from typing import Any


def write_entries(cache_dir: str, worker: int, count: int, start: Any) -> None:
    os.environ["ABLATE_CACHE_DIR"] = cache_dir
    from ablate.analysis.cache import write_entry

    start.wait()  # every writer starts together: their read-modify-writes overlap
    for i in range(count):
        write_entry("shared", f"w{worker}-{i}", {"worker": worker, "i": i})
