"""`ablate report`: Table 1, ladders with paired tests, mIoU vs FLOPs and vs latency, per-class and search figures,
index.html.

Every number is recomputed from the MLflow store on each run; nothing is typed in.
"""

from ablate.report.build import build_report
from ablate.report.choice import Choice, choice_csv, choice_table, choices
from ablate.report.collect import Collection, Excluded, TrialRun, TuneRun, collect, runs_frame
from ablate.report.folder import FORMATS, parse_formats
from ablate.report.groups import FAMILIES, ModelRow, model_rows
from ablate.report.label_space import LabelSpace, label_space
from ablate.report.ladder_tables import class_delta_csv, class_effects_table, ladder_csv, ladder_table
from ablate.report.latex import latex_escape
from ablate.report.model_table import table1, table1_csv
from ablate.report.speed import LatencyView, latency_view
from ablate.report.tables import Table
from ablate.statistics import (
    Comparison,
    Ladder,
    LadderStep,
    Summary,
    adjust,
    compare,
    holm,
    ladders,
    paired_t,
    pareto_front,
    permutation_p,
    power,
    seeds_for_power,
    summarize,
    welch,
)

__all__ = [
    "Choice",
    "FAMILIES",
    "FORMATS",
    "Collection",
    "Comparison",
    "Excluded",
    "LabelSpace",
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
    "label_space",
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
