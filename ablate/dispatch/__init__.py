"""The dispatcher: how a study's trials are placed and run (in-process, or on Ray)."""

from ablate.dispatch.base import Dispatcher, EventSink, RunContext, SequentialDispatcher, order_by_dependencies
from ablate.dispatch.ray_dispatcher import RayDispatcher

__all__ = [
    "Dispatcher",
    "EventSink",
    "RayDispatcher",
    "RunContext",
    "SequentialDispatcher",
    "order_by_dependencies",
]
