"""mmseg metrics extended so that every per-class and per-image number reaches the tracker."""

from ablate.metrics.iou import PER_IMAGE_INFO, ImageAreas, PerClassIoUMetric, image_scores, metric_key

__all__ = ["PER_IMAGE_INFO", "ImageAreas", "PerClassIoUMetric", "image_scores", "metric_key"]
