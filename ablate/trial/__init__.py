"""One trial: its spec, state and result, and the code that trains it."""

from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.trial.train import train_trial

__all__ = ["TrialResult", "TrialSpec", "TrialState", "train_trial"]
