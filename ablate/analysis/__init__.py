"""Model analysis: FLOPs and parameter counts for the report and `ablate flops`."""

from ablate.analysis.flops import Complexity, count_config, count_model

__all__ = ["Complexity", "count_config", "count_model"]
