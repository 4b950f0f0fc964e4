"""Study files: schema, loading/validation, expansion into trials, time estimates and running."""

from ablate.study.checkpoints import checkpoint_sources, fetch_sources, source_problems
from ablate.study.datasets import DataPlan, data_plans, dataset_config, ensure_data
from ablate.study.estimate import Estimator, Speed, TrialEstimate, makespan, speed_key
from ablate.study.loader import load_study
from ablate.study.plan import AFTER_DATA, id_known, plan_trials
from ablate.study.run import StudyOutcome, cached_result, cached_results, run_study
from ablate.study.schema import AutoSeeds, BudgetSpec, DataSpec, StudySpec, TrialEntry
from ablate.study.seed_rounds import SeedRound, delta_widths
from ablate.study.slurm_schema import SlurmSpec
from ablate.study.study import Study

__all__ = [
    "AFTER_DATA",
    "AutoSeeds",
    "BudgetSpec",
    "DataPlan",
    "DataSpec",
    "Estimator",
    "SeedRound",
    "SlurmSpec",
    "Speed",
    "Study",
    "StudyOutcome",
    "StudySpec",
    "TrialEntry",
    "TrialEstimate",
    "cached_result",
    "cached_results",
    "checkpoint_sources",
    "data_plans",
    "dataset_config",
    "delta_widths",
    "ensure_data",
    "fetch_sources",
    "id_known",
    "load_study",
    "makespan",
    "plan_trials",
    "run_study",
    "source_problems",
    "speed_key",
]
