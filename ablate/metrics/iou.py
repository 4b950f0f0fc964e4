"""IoU metric that returns per-class IoU/Acc next to the means.

mmseg's `IoUMetric` prints a per-class table but returns only aAcc/mIoU/mAcc, so per-class
numbers would never reach MLflow or the report. This subclass returns them as `IoU.<class>` and
`Acc.<class>` (percent, like the means; NaN where a class is absent from both prediction and
ground truth).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from mmengine.logging import print_log
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS


def metric_key(prefix: str, class_name: str) -> str:
    """`IoU.traffic_light`: class names with spaces become tracker-friendly keys."""
    return f"{prefix}.{class_name.replace(' ', '_')}"


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """`IoUMetric` whose result dict also holds every class's IoU and accuracy."""

    def compute_metrics(self, results: list) -> dict[str, float]:
        if self.format_only:
            return super().compute_metrics(results)
        intersect, union, pred_area, label_area = (sum(part) for part in zip(*results))
        per_metric = self.total_area_to_metrics(
            intersect, union, pred_area, label_area, self.metrics, self.nan_to_num, self.beta
        )
        metrics: dict[str, float] = OrderedDict()
        for name, values in per_metric.items():
            mean = float(np.nanmean(values)) * 100 if np.size(values) else float("nan")
            metrics[name if name == "aAcc" else f"m{name}"] = round(mean, 4)
        classes = self.dataset_meta["classes"]
        for name, values in per_metric.items():
            if name == "aAcc":
                continue
            for cls, value in zip(classes, np.asarray(values, dtype=float)):
                metrics[metric_key(name, cls)] = round(float(value) * 100, 4)
        shown = ", ".join(f"{c}={metrics[metric_key('IoU', c)]:.1f}" for c in classes)
        print_log(f"per-class IoU: {shown}", logger="current")
        return metrics
