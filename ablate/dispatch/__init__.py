"""The dispatcher: how a study's trials are ordered (the scheduler) and placed and run (a
dispatcher: in-process, or on Ray)."""

from ablate.dispatch.address import check_ray_address
from ablate.dispatch.driver import Feed, drive
from ablate.dispatch.inprocess import InProcessDispatcher
from ablate.dispatch.protocol import Completion, Dispatcher, EventSink, RunContext, StartSink, Trainable
from ablate.dispatch.ray_pool import RayDispatcher
from ablate.dispatch.scheduler import Action, DependencyCycleError, Scheduler, critical_path_costs

__all__ = [
    "Action",
    "Completion",
    "DependencyCycleError",
    "Dispatcher",
    "EventSink",
    "Feed",
    "InProcessDispatcher",
    "RayDispatcher",
    "RunContext",
    "Scheduler",
    "StartSink",
    "Trainable",
    "check_ray_address",
    "critical_path_costs",
    "drive",
]
