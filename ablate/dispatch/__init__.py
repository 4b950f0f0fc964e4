"""The dispatcher: how a study's trials are placed and run."""

from ablate.dispatch.base import Dispatcher, EventSink, RunContext, SequentialDispatcher, order_by_dependencies

__all__ = ["Dispatcher", "EventSink", "RunContext", "SequentialDispatcher", "order_by_dependencies"]
