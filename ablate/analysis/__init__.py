"""Model analysis: FLOPs and parameter counts for the report and `ablate flops`, measured
inference latency on the device at hand, and a short probe of its training speed."""

from ablate.analysis.cache import cached_complexity, cached_flops
from ablate.analysis.flops import Complexity, count_config, count_model
from ablate.analysis.latency import Latency, cached_latency, device_label, measure_latency
from ablate.analysis.speed import Probe, ProbeBudget, cached_probe, probe_training, this_device

__all__ = [
    "Complexity",
    "Latency",
    "Probe",
    "ProbeBudget",
    "cached_complexity",
    "cached_flops",
    "cached_latency",
    "cached_probe",
    "count_config",
    "count_model",
    "device_label",
    "measure_latency",
    "probe_training",
    "this_device",
]
