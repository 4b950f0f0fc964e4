"""mmseg metrics extended so that every per-class number reaches the tracker."""

from ablate.metrics.iou import PerClassIoUMetric, metric_key

__all__ = ["PerClassIoUMetric", "metric_key"]
