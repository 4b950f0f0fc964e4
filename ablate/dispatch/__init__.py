"""The dispatcher: how a study's trials are placed and run."""

from ablate.dispatch.base import Dispatcher, EventSink, RunContext, SequentialDispatcher

__all__ = ["Dispatcher", "EventSink", "RunContext", "SequentialDispatcher"]
