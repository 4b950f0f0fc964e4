"""Which machine a process runs on, as an address the other machines of a cluster know it by.

A trial records it (`ablate.node`) so that a study spread over several machines says where each
trial trained and where its files lie; `ablate server` prints it when it listens on every
interface. Nothing here sends a packet or looks a name up: the address comes from Ray (inside a
Ray worker) or from the machine's own interfaces.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path


def _usable(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def _default_route_interface() -> str | None:
    """The interface of the default route (Linux), the one other machines most likely reach."""
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 1 and fields[1] == "00000000":
            return fields[0]
    return None


def host_address() -> str:
    """This machine's IPv4 address: that of the default route's interface, else of the first
    interface that is up, else 127.0.0.1 (a machine with no network). No name lookup, which could
    wait on an unreachable DNS server."""
    import psutil

    addresses = psutil.net_if_addrs()
    stats = psutil.net_if_stats()
    preferred = _default_route_interface()
    names = ([preferred] if preferred in addresses else []) + sorted(addresses)
    for name in names:
        if name in stats and not stats[name].isup:
            continue
        for entry in addresses[name]:
            if entry.family == socket.AF_INET and _usable(entry.address):
                return str(entry.address)
    return "127.0.0.1"


def node_address() -> str:
    """The Ray node's IP address inside a Ray worker or driver (what `ray status` lists), else
    the host's address."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.util.get_node_ip_address())
    return host_address()
