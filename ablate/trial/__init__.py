"""One trial: its spec, state and result, and the code that trains it."""

from ablate.trial.ranks import WorkerFailed, is_main_rank
from ablate.trial.spec import LaunchEstimate, TrialResult, TrialSpec, TrialState
from ablate.trial.train import train_rank, train_trial

__all__ = [
    "LaunchEstimate",
    "TrialResult",
    "TrialSpec",
    "TrialState",
    "WorkerFailed",
    "is_main_rank",
    "train_rank",
    "train_trial",
]
