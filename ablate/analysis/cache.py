"""A small on-disk cache of FLOPs/parameter counts, keyed by model config and input size.

`plan` estimates costs and every trial logs its complexity; building and tracing a model for that
costs about a second, so each (model config, size) is counted once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from ablate.analysis.flops import Complexity, count_config, count_model


def cache_dir() -> Path:
    return Path(os.environ.get("ABLATE_CACHE_DIR", Path.home() / ".cache" / "ablate"))


def _key(cfg: Any, height: int, width: int) -> str:
    model = json.dumps(cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model), sort_keys=True, default=str)
    return hashlib.sha256(f"{model}|{height}x{width}".encode()).hexdigest()[:20]


def _table_path() -> Path:
    return cache_dir() / "complexity.json"


def _read() -> dict[str, Any]:
    try:
        return json.loads(_table_path().read_text())
    except (OSError, ValueError):
        return {}


def _write(key: str, info: Complexity) -> None:
    table = _read()  # re-read: another process may have added entries meanwhile
    table[key] = {"flops_g": info.flops_g, "params_m": info.params_m}
    path = _table_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=0))
    os.replace(tmp, path)


def cached_complexity(cfg: Any, height: int, width: int, model: Optional[Any] = None) -> Complexity:
    """Complexity of the config's model at (height, width); counted on `model` when given
    (already built: no second build) and not yet cached."""
    key = _key(cfg, height, width)
    hit = _read().get(key)
    if isinstance(hit, dict):
        return Complexity(float(hit["flops_g"]), float(hit["params_m"]), height, width)
    if model is not None:
        info = count_model(model, height, width)
    else:
        import copy

        info = count_config(copy.deepcopy(cfg), height, width)
    _write(key, info)
    return info


def cached_flops(cfg: Any, height: int, width: int) -> float:
    """GFLOPs of the config's model at (height, width), computed once per model and shape."""
    return cached_complexity(cfg, height, width).flops_g
