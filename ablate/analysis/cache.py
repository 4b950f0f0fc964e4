"""A small on-disk cache of FLOPs counts: `plan` estimates costs without rebuilding every model."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("ABLATE_CACHE_DIR", Path.home() / ".cache" / "ablate"))


def _key(cfg: Any, height: int, width: int) -> str:
    model = json.dumps(cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model), sort_keys=True, default=str)
    return hashlib.sha256(f"{model}|{height}x{width}".encode()).hexdigest()[:20]


def cached_flops(cfg: Any, height: int, width: int) -> float:
    """GFLOPs of the config's model at (height, width), computed once per model and shape."""
    from ablate.analysis.flops import count_config

    path = cache_dir() / "flops.json"
    key = _key(cfg, height, width)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return float(table[key])
    import copy

    value = count_config(copy.deepcopy(cfg), height, width).flops_g
    table[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=0))
    os.replace(tmp, path)
    return value
