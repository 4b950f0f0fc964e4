"""Model analysis: FLOPs and parameter counts for the report and `ablate flops`."""

from ablate.analysis.cache import cached_complexity, cached_flops
from ablate.analysis.flops import Complexity, count_config, count_model

__all__ = ["Complexity", "cached_complexity", "cached_flops", "count_config", "count_model"]
