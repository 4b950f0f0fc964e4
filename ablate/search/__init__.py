"""Hyper-parameter search (`ablate tune`): space, objectives and constraints, Optuna ask/tell
loop, pruning hook, best parameters or Pareto set as includable YAML.

The `search:` block's schema is part of the study file's schema (`ablate.study.search_schema`);
this package depends on `ablate.study`, never the other way round.
"""

from ablate.search.objectives import Scores, describe, score
from ablate.search.pareto import ParetoEntry, pareto_entries, write_pareto, write_snippet
from ablate.search.space import search_space, searched_crop, snippet_doc, split_params
from ablate.search.storage import check_storage_url, default_storage
from ablate.search.tune import TuneOutcome, tune_study
from ablate.study.search_schema import CROP_PARAM, PrunerSpec, SamplerSpec, SearchSpec

__all__ = [
    "CROP_PARAM",
    "ParetoEntry",
    "PrunerSpec",
    "SamplerSpec",
    "Scores",
    "SearchSpec",
    "TuneOutcome",
    "check_storage_url",
    "default_storage",
    "describe",
    "pareto_entries",
    "score",
    "search_space",
    "searched_crop",
    "snippet_doc",
    "split_params",
    "tune_study",
    "write_pareto",
    "write_snippet",
]
