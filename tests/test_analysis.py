"""FLOPs counting and the per-class IoU metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ablate.cli import main
from tests.conftest import B0_CONFIG


def test_segformer_b0_flops_match_table1(capsys: pytest.CaptureFixture) -> None:
    """Table 1 lists SegFormer-B0 at 15.579 GFLOPs for a 375x1242 input."""
    with pytest.raises(SystemExit) as info:
        main(["flops", str(B0_CONFIG), "--shape", "375", "1242", "--json"])
    assert info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["flops_g"] == pytest.approx(15.579, abs=0.01)
    assert report["params_m"] == pytest.approx(3.72, abs=0.01)


def test_flops_scale_with_input_area() -> None:
    from ablate import analysis, config

    cfg = config.load_base(B0_CONFIG)
    small = analysis.count_config(cfg, 64, 64).flops_g
    large = analysis.count_config(cfg, 128, 128).flops_g
    assert large == pytest.approx(4 * small, rel=0.15)


def _results(pred: np.ndarray, label: np.ndarray, num_classes: int) -> tuple:
    from mmseg.evaluation.metrics import IoUMetric

    return IoUMetric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(label), num_classes, 255)


def test_per_class_metric_returns_every_class_and_matches_mmseg_means() -> None:
    from mmseg.evaluation.metrics import IoUMetric

    from ablate.metrics import PerClassIoUMetric

    classes = ("road", "traffic light", "sky")
    label = np.array([[0, 0, 1, 2], [0, 1, 255, 2]])
    pred = np.array([[0, 1, 1, 2], [0, 1, 0, 0]])
    results = [_results(pred, label, 3)]
    ours = PerClassIoUMetric(iou_metrics=["mIoU"])
    ours.dataset_meta = {"classes": classes}
    ref = IoUMetric(iou_metrics=["mIoU"])
    ref.dataset_meta = {"classes": classes}
    got, want = ours.compute_metrics(results), ref.compute_metrics(results)
    for key in ("aAcc", "mIoU", "mAcc"):
        assert got[key] == pytest.approx(want[key], abs=0.01)
    # road: inter 2 (of pred 4 incl. ignored-pixel prediction excluded -> 3, label 3) -> 2/4
    assert got["IoU.road"] == pytest.approx(100 * 2 / 4)
    assert got["IoU.traffic_light"] == pytest.approx(100 * 2 / 3)
    assert got["IoU.sky"] == pytest.approx(100 * 1 / 2)
    assert got["Acc.sky"] == pytest.approx(50.0)


def test_absent_class_is_nan_not_zero() -> None:
    from ablate.metrics import PerClassIoUMetric

    metric = PerClassIoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = {"classes": ("a", "b", "c")}
    label = np.array([[0, 1]])
    got = metric.compute_metrics([_results(np.array([[0, 1]]), label, 3)])
    assert math.isnan(got["IoU.c"]) and got["mIoU"] == pytest.approx(100.0)


def test_concurrent_writers_lose_no_cache_entry(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials of one study add FLOPs, latency and probe entries to the same JSON table at once;
    every entry each of them wrote is there afterwards."""
    import multiprocessing

    from ablate.analysis.cache import read_table
    from tests.cache_writers import write_entries

    writers, count = 6, 25
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(writers)
    procs = [context.Process(target=write_entries, args=(str(tmp_path), w, count, start)) for w in range(writers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path))
    table = read_table("shared")
    assert set(table) == {f"w{w}-{i}" for w in range(writers) for i in range(count)}
    assert not list(tmp_path.glob("*.tmp"))  # no writer left a partial file behind
