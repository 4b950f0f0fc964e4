"""Study files: schema, loading/validation and expansion into trials."""

from ablate.study.execute import StudyOutcome, cached_results, run_study
from ablate.study.loader import Study, load_study
from ablate.study.plan import ensure_data, plan_trials
from ablate.study.schema import BudgetSpec, DataSpec, StudySpec, TrialEntry

__all__ = [
    "BudgetSpec",
    "DataSpec",
    "Study",
    "StudySpec",
    "TrialEntry",
    "StudyOutcome",
    "cached_results",
    "ensure_data",
    "load_study",
    "plan_trials",
    "run_study",
]
