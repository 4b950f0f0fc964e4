"""Model analysis: FLOPs and parameter counts for the report and `ablate flops`, and measured
inference latency on the device at hand."""

from ablate.analysis.cache import cached_complexity, cached_flops
from ablate.analysis.flops import Complexity, count_config, count_model
from ablate.analysis.latency import Latency, cached_latency, device_label, measure_latency

__all__ = [
    "Complexity",
    "Latency",
    "cached_complexity",
    "cached_flops",
    "cached_latency",
    "count_config",
    "count_model",
    "device_label",
    "measure_latency",
]
