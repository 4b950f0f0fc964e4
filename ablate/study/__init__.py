"""Study files: schema, loading/validation and expansion into trials."""

from ablate.study.loader import Study, load_study
from ablate.study.plan import AFTER_DATA, DataPlan, data_plans, ensure_data, id_known, plan_trials
from ablate.study.run import StudyOutcome, cached_result, cached_results, run_study
from ablate.study.schema import BudgetSpec, DataSpec, StudySpec, TrialEntry

__all__ = [
    "AFTER_DATA",
    "BudgetSpec",
    "DataPlan",
    "DataSpec",
    "Study",
    "StudySpec",
    "TrialEntry",
    "StudyOutcome",
    "cached_result",
    "cached_results",
    "data_plans",
    "ensure_data",
    "id_known",
    "load_study",
    "plan_trials",
    "run_study",
]
