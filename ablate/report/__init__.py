"""`ablate report`: Table 1, ladders, mIoU-vs-FLOPs, per-class and search figures, index.html.

Every number is recomputed from the MLflow store on each run; nothing is typed in.
"""

from ablate.report.build import FORMATS, build_report, parse_formats
from ablate.report.cli import report_command
from ablate.report.collect import Collection, Excluded, TrialRun, TuneRun, collect, runs_frame
from ablate.report.groups import FAMILIES, Ladder, LadderStep, ModelRow, ladders, model_rows
from ablate.report.stats import Comparison, Summary, compare, pareto_front, permutation_p, summarize, welch
from ablate.report.tables import Table, ladder_csv, ladder_table, latex_escape, table1, table1_csv

__all__ = [
    "FAMILIES",
    "FORMATS",
    "Collection",
    "Comparison",
    "Excluded",
    "Ladder",
    "LadderStep",
    "ModelRow",
    "Summary",
    "Table",
    "TrialRun",
    "TuneRun",
    "build_report",
    "collect",
    "compare",
    "ladder_csv",
    "ladder_table",
    "ladders",
    "latex_escape",
    "model_rows",
    "parse_formats",
    "pareto_front",
    "permutation_p",
    "report_command",
    "runs_frame",
    "summarize",
    "table1",
    "table1_csv",
    "welch",
]
