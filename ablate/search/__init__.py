"""Hyper-parameter search (`ablate tune`): space, Optuna ask/tell loop, pruning hook."""

from ablate.search.schema import PrunerSpec, SamplerSpec, SearchSpec
from ablate.search.space import search_space, split_params

__all__ = ["PrunerSpec", "SamplerSpec", "SearchSpec", "TuneOutcome", "default_storage", "search_space",
           "split_params", "tune_study"]


def __getattr__(name: str):  # the loop imports the study package, which imports this one's schema
    if name in ("TuneOutcome", "default_storage", "tune_study"):
        from ablate.search import tune

        return getattr(tune, name)
    raise AttributeError(name)
