"""Numbers computed from finished runs, shared by the report and by `seeds: auto`.

Both read the same tests (`inference`), the same ladders (`ladder`) and the same per-image table
(`per_image`), so a stopping rule and the table a reader checks it against cannot disagree. Below
`study/` and `report/`: it reads typed run records and never talks to the store.
"""

from ablate.statistics.inference import (
    ALPHA,
    EXACT_PAIRS,
    MAX_SEEDS,
    PAIRED,
    WELCH,
    Comparison,
    Summary,
    adjust,
    compare,
    holm,
    mean_of,
    paired_t,
    pairs_to_reach,
    pareto_front,
    permutation_floor,
    permutation_p,
    power,
    seeds_for_power,
    summarize,
    welch,
)
from ablate.statistics.ladder import SHAPE_ORDER, Ladder, LadderStep, ladders
from ablate.statistics.per_image import PER_IMAGE_FILE, WORST_DIR, ImageScore, PerImageTable, metric_key

__all__ = [
    "ALPHA",
    "EXACT_PAIRS",
    "MAX_SEEDS",
    "PAIRED",
    "PER_IMAGE_FILE",
    "SHAPE_ORDER",
    "WELCH",
    "WORST_DIR",
    "Comparison",
    "ImageScore",
    "Ladder",
    "LadderStep",
    "PerImageTable",
    "Summary",
    "adjust",
    "compare",
    "holm",
    "ladders",
    "mean_of",
    "metric_key",
    "paired_t",
    "pairs_to_reach",
    "pareto_front",
    "permutation_floor",
    "permutation_p",
    "power",
    "seeds_for_power",
    "summarize",
    "welch",
]
