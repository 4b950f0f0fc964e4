"""Which machine a process runs on, as an address the other machines of a cluster know it by.

A trial records it (`ablate.node`) so that a study spread over several machines says where each
trial trained and where its files lie; `ablate server` prints it when it listens on every
interface. Nothing here sends a packet: the address comes from Ray (inside a Ray worker) or from
the machine's own name and interfaces.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Optional


def _usable(address: Optional[str]) -> bool:
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def host_address() -> str:
    """The address the machine's name resolves to, else the first non-loopback IPv4 address of an
    interface that is up, else 127.0.0.1 (a machine with no network)."""
    try:
        named = socket.gethostbyname(socket.gethostname())
    except OSError:
        named = None
    if _usable(named):
        return str(named)
    try:
        import psutil

        stats = psutil.net_if_stats()
        for name, addresses in psutil.net_if_addrs().items():
            if name in stats and not stats[name].isup:
                continue
            for entry in addresses:
                if entry.family == socket.AF_INET and _usable(entry.address):
                    return str(entry.address)
    except Exception:  # psutil missing or an interface that cannot be read: fall through
        pass
    return "127.0.0.1"


def node_address() -> str:
    """The Ray node's IP address inside a Ray worker or driver (what `ray status` lists), else
    the host's address."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.util.get_node_ip_address())
    return host_address()
