"""`--address`: the Ray cluster to join, checked with one TCP connect before Ray is started.

Ray itself keeps retrying an address nobody listens on for minutes; a connect with a short
timeout tells the same thing in seconds, with the command that fixes it.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ablate.errors import AblateError

CONNECT_TIMEOUT_S = 5.0
_FIX = "start the head with `ray start --head` (it prints the address to pass), or drop --address to run on a local Ray"


def _current_cluster_file() -> Path:
    """Where `ray start --head` records its address for `auto` (Ray's own lookup order)."""
    if "RAY_TMPDIR" in os.environ:
        temp = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        temp = os.environ["TMPDIR"]
    else:
        temp = "/tmp"
    return Path(temp) / "ray" / "ray_current_cluster"


def parse_ray_address(address: str, option: str = "--address") -> tuple[str, int]:
    """(host, port) of `host:port` or `ray://host:port`; `auto` is the cluster `ray start` recorded."""
    text = address.strip()
    if text == "auto":
        recorded = _current_cluster_file()
        try:
            text = recorded.read_text().strip()
        except OSError:
            raise AblateError(
                f"{option}: auto finds no Ray cluster started on this machine ({recorded} is missing); {_FIX}"
            ) from None
    rest = text[len("ray://") :] if text.startswith("ray://") else text
    if "://" in rest or not rest:
        raise AblateError(f"{option}: '{address}' is not host:port, ray://host:port or auto")
    parts = urlsplit("//" + rest)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise AblateError(
            f"{option}: '{address}' is not host:port, ray://host:port or auto "
            "(e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)"
        )
    return parts.hostname, port


def check_ray_address(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S, option: str = "--address") -> None:
    """Refuse a Ray address nothing listens on; None (an embedded local Ray) is always fine."""
    if not address:
        return
    host, port = parse_ray_address(address, option)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        reason = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        shown = f"[{host}]" if ":" in host else host
        raise AblateError(
            f"{option}: no Ray cluster answers at {shown}:{port} ({reason}; waited up to {timeout_s:g} s); {_FIX}"
        ) from None
