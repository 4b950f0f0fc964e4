"""Dotted-key overrides of mmseg configs, checked against the config before anything runs.

A plain key (`optim_wrapper.optimizer.lr`) must already exist in the config, so a typo fails
early with a suggestion; a key written `+model.decode_head.sampler` may add a new leaf. Values
are applied with mmengine's own `Config.merge_from_dict`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ablate.errors import ConfigError

if TYPE_CHECKING:  # mmengine (and yapf with it) is imported by whoever parses a config, not here
    from mmengine.config import Config


def _child(node: Any, part: str) -> tuple[bool, Any]:
    if isinstance(node, dict):
        return (part in node, node.get(part))
    if isinstance(node, (list, tuple)) and part.lstrip("-").isdigit():
        index = int(part)
        return (-len(node) <= index < len(node), node[index] if -len(node) <= index < len(node) else None)
    return (False, None)


def check_override_key(cfg: Config | dict, key: str) -> str | None:
    """None when `key` can be applied to `cfg`, else a message saying what is wrong."""
    adding = key.startswith("+")
    parts = key.lstrip("+").split(".")
    if not all(parts):
        return f"'{key}' is not a dotted key (empty part)"
    node: Any = getattr(cfg, "_cfg_dict", cfg)
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        found, value = _child(node, part)
        if not found:
            if last and adding and isinstance(node, dict):
                return None
            where = ".".join(parts[:depth]) or "the config"
            options = list(node.keys()) if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, [str(o) for o in options], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            add = " (prefix the key with '+' to add a new one)" if last and isinstance(node, dict) else ""
            return f"no key '{part}' under {where}{hint}{add}"
        node = value
    return None


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> None:
    """Apply checked overrides in order; raises ConfigError naming the first bad key."""
    for key, value in overrides.items():  # one at a time: a later key may use what `+key` added
        msg = check_override_key(cfg, key)
        if msg is not None:
            raise ConfigError(f"override {key}: {msg}")
        cfg.merge_from_dict({key.lstrip("+"): value})


def iter_problems(cfg: Config, overrides: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(key, message) for every override that cannot be applied."""
    for key in overrides:
        msg = check_override_key(cfg, key)
        if msg is not None:
            yield key, msg
