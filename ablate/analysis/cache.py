"""A small on-disk cache of FLOPs/parameter counts and measured latencies, keyed by model config
and input size (latencies also by device and precision).

`plan` estimates costs and every trial logs its complexity and latency; building and tracing a
model costs about a second and timing it a few, so each is done once per machine, not per seed.
Each table is one JSON file under `cache_dir()`, updated under a file lock: trials of one study
write their entries at the same time, and an unlocked read-modify-write would drop some.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ablate.analysis.flops import Complexity, count_config, count_model
from ablate.util.files import atomic_write, cache_dir, locked

COMPLEXITY = "complexity"


def model_dict(cfg: Any) -> dict[str, Any]:
    """The config's `model` as a plain dict."""
    return cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)


def model_key(model: dict[str, Any], height: int, width: int, *extra: str) -> str:
    """Cache key of a model config at (height, width), plus anything else the value depends on."""
    text = json.dumps(model, sort_keys=True, default=str)
    return hashlib.sha256("|".join([text, f"{height}x{width}", *extra]).encode()).hexdigest()[:20]


def table_path(table: str) -> Path:
    return cache_dir() / f"{table}.json"


def read_table(table: str) -> dict[str, Any]:
    try:
        return json.loads(table_path(table).read_text())
    except (OSError, ValueError):
        return {}


def write_entry(table: str, key: str, value: dict[str, Any]) -> None:
    """Add one entry; the table is re-read under the lock, so entries other processes added
    meanwhile stay. Readers take no lock: the file is replaced whole."""
    path = table_path(table)
    with locked(path):
        entries = read_table(table)
        entries[key] = value
        atomic_write(path, json.dumps(entries, indent=0))


def cached_complexity(cfg: Any, height: int, width: int, model: Any | None = None) -> Complexity:
    """Complexity of the config's model at (height, width); counted on `model` when given
    (already built: no second build) and not yet cached."""
    key = model_key(model_dict(cfg), height, width)
    hit = read_table(COMPLEXITY).get(key)
    if isinstance(hit, dict):
        return Complexity(float(hit["flops_g"]), float(hit["params_m"]), height, width)
    if model is not None:
        info = count_model(model, height, width)
    else:
        import copy

        info = count_config(copy.deepcopy(cfg), height, width)
    write_entry(COMPLEXITY, key, {"flops_g": info.flops_g, "params_m": info.params_m})
    return info


def cached_flops(cfg: Any, height: int, width: int) -> float:
    """GFLOPs of the config's model at (height, width), computed once per model and shape."""
    return cached_complexity(cfg, height, width).flops_g
