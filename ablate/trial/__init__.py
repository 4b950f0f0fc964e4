"""One trial: its spec, state and result, and the code that trains it."""

from ablate.trial.spec import TrialResult, TrialSpec, TrialState

__all__ = ["TrialResult", "TrialSpec", "TrialState", "execute_trial"]


def __getattr__(name: str):  # the executor imports mmengine: load it only when asked for
    if name == "execute_trial":
        from ablate.trial.execute import execute_trial

        return execute_trial
    raise AttributeError(name)
