"""The dispatcher: how a study's trials are ordered and packed (the scheduler) and placed and run
(a dispatcher: in-process, on Ray, or as Slurm jobs; on the last two a trial may span several GPUs as
one DDP job)."""

from ablate.dispatch.address import check_ray_address
from ablate.dispatch.driver import CapacityError, Feed, drive
from ablate.dispatch.inprocess import InProcessDispatcher, NeedsWorkersError, refuse_workers
from ablate.dispatch.protocol import (
    Capacity,
    Completion,
    Dispatcher,
    EventSink,
    Resources,
    RunContext,
    StartSink,
    Trainable,
)
from ablate.dispatch.ray_pool import RayDispatcher
from ablate.dispatch.scheduler import Action, DependencyCycleError, Scheduler, critical_path_costs, widest_first
from ablate.dispatch.slurm import SlurmDispatcher, sbatch_options
from ablate.dispatch.workers import launch_on_workers, run_on_workers

__all__ = [
    "Action",
    "Capacity",
    "CapacityError",
    "Completion",
    "DependencyCycleError",
    "Dispatcher",
    "EventSink",
    "Feed",
    "InProcessDispatcher",
    "NeedsWorkersError",
    "RayDispatcher",
    "Resources",
    "RunContext",
    "Scheduler",
    "SlurmDispatcher",
    "StartSink",
    "Trainable",
    "check_ray_address",
    "critical_path_costs",
    "drive",
    "launch_on_workers",
    "refuse_workers",
    "run_on_workers",
    "sbatch_options",
    "widest_first",
]
