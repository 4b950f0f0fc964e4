"""`ablate report`: Table 1, ladders with paired tests, mIoU vs FLOPs and vs latency, per-class and search figures,
index.html.

Every number is recomputed from the MLflow store on each run; nothing is typed in.
"""

from ablate.report.build import build_report
from ablate.report.choice import Choice, choice_csv, choice_table, choices
from ablate.report.collect import Collection, Excluded, TrialRun, TuneRun, collect, runs_frame
from ablate.report.folder import FORMATS, parse_formats
from ablate.report.groups import FAMILIES, ModelRow, model_rows
from ablate.report.ladder import Ladder, LadderStep, ladders
from ablate.report.speed import LatencyView, latency_view
from ablate.report.stats import (
    Comparison,
    Summary,
    adjust,
    compare,
    holm,
    paired_t,
    pareto_front,
    permutation_p,
    power,
    seeds_for_power,
    summarize,
    welch,
)
from ablate.report.tables import (
    Table,
    class_delta_csv,
    class_effects_table,
    ladder_csv,
    ladder_table,
    latex_escape,
    table1,
    table1_csv,
)

__all__ = [
    "Choice",
    "FAMILIES",
    "FORMATS",
    "Collection",
    "Comparison",
    "Excluded",
    "Ladder",
    "LadderStep",
    "LatencyView",
    "ModelRow",
    "Summary",
    "Table",
    "TrialRun",
    "TuneRun",
    "adjust",
    "build_report",
    "choice_csv",
    "choice_table",
    "choices",
    "class_delta_csv",
    "class_effects_table",
    "collect",
    "compare",
    "holm",
    "ladder_csv",
    "ladder_table",
    "ladders",
    "latency_view",
    "latex_escape",
    "model_rows",
    "paired_t",
    "parse_formats",
    "pareto_front",
    "permutation_p",
    "power",
    "runs_frame",
    "seeds_for_power",
    "summarize",
    "table1",
    "table1_csv",
    "welch",
]
