"""Dependency order and cycles, once (graphlib), for trials, study entries and designs.

A graph maps each node to the nodes it waits for. A cycle is given in waiting order, closed:
`[a, b, a]` means a waits for b, which waits for a. Callers name the field or trial in their own
message; this module only finds the order or the cycle.
"""

from __future__ import annotations

import graphlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar, cast

N = TypeVar("N", bound=Hashable)


class Cycle(ValueError):
    """Nodes that wait on each other in a circle (`nodes`, in waiting order, first == last)."""

    def __init__(self, nodes: Sequence[Hashable]) -> None:
        self.nodes = list(nodes)
        super().__init__("circular dependency: " + " -> ".join(str(n) for n in self.nodes))


def prepared(graph: Mapping[N, Iterable[N]]) -> graphlib.TopologicalSorter:
    """A prepared sorter of `graph`; raises `Cycle` when some nodes can never start."""
    sorter: graphlib.TopologicalSorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node before the one that waits for it: reversed, each waits for the next
        raise Cycle(list(reversed(exc.args[1]))) from None
    return sorter


def first_cycle(graph: Mapping[N, Iterable[N]]) -> list[N] | None:
    """One cycle of `graph` in waiting order (closed), or None."""
    try:
        prepared(graph)
    except Cycle as cycle:  # its nodes are keys of `graph`
        return cast("list[N]", cycle.nodes)
    return None


def dependency_order(graph: Mapping[N, Iterable[N]], order: Sequence[N] = ()) -> list[N]:
    """Every node after the nodes it waits for; among nodes free to go, the earliest in `order`
    (then the rest in the order graphlib frees them). Raises `Cycle`."""
    rank = {node: i for i, node in enumerate(order)}
    sorter = prepared(graph)
    ready: list[N] = []
    out: list[N] = []
    while sorter.is_active():
        ready += sorter.get_ready()
        if not ready:
            break
        ready.sort(key=lambda n: rank.get(n, len(rank)))
        node = ready.pop(0)
        out.append(node)
        sorter.done(node)
    return out
