"""Hyper-parameter search (`ablate tune`): space, Optuna ask/tell loop, pruning hook.

The `search:` block's schema is part of the study file's schema (`ablate.study.search_schema`);
this package depends on `ablate.study`, never the other way round.
"""

from ablate.search.space import search_space, split_params
from ablate.search.storage import check_storage_url, default_storage
from ablate.search.tune import TuneOutcome, tune_study
from ablate.study.search_schema import PrunerSpec, SamplerSpec, SearchSpec

__all__ = ["PrunerSpec", "SamplerSpec", "SearchSpec", "TuneOutcome", "check_storage_url", "default_storage",
           "search_space", "split_params", "tune_study"]
