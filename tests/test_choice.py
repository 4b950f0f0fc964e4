"""Choosing a model: per-image results, training pressure, the failure gallery and the "which model" table.

Two tiny real trials (one with test-time augmentation) on a 5-image validation split, more
images than the 4 worst a trial keeps, so keeping the worst ones is a real choice.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from ablate import data
from ablate.report.gallery import DRAWN
from ablate.statistics.per_image import PER_IMAGE_FILE, WORST_DIR, read_table, worst
from ablate.study import load_study, run_study
from ablate.trial import TrialState
from tests.conftest import write_study

VAL_IMAGES = 5
BUDGET = {"iters": 4, "val_interval": 4, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}
LADDER = [{"multiscale_test": {"scales": [1.0]}}]  # rung 1: rung 0 with flip test-time augmentation
BASE, TTA = "r0-base", "r1-multiscale_test"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("choice")
    root = data.synthesize(tmp / "data", train=4, test=VAL_IMAGES, height=64, width=192, seed=5)
    study = load_study(write_study(tmp / "s.yaml", root, name="choice", trials=[], ladder=LADDER, budget=BUDGET))
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp / "runs")
    assert [r.state for r in outcome.results] == [TrialState.FINISHED, TrialState.FINISHED], [r.error for r in outcome.results]
    client = MlflowClient(uri)
    runs = {r.name: client.get_run(r.run_id) for r in outcome.results}
    tables = {}
    for name, run in runs.items():
        local = client.download_artifacts(run.info.run_id, PER_IMAGE_FILE, str(tmp / "dl" / name))
        tables[name] = read_table(Path(local))
    return {"tmp": tmp, "uri": uri, "study": study, "root": root, "runs": runs, "tables": tables, "client": client}


@pytest.fixture(scope="module")
def report(trained: dict[str, Any]) -> Path:
    from ablate.report import build_report

    out = trained["tmp"] / "report"
    build_report(study=trained["study"].source, out=out, tracking_uri=trained["uri"])
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _metric_pair(pred: np.ndarray, label: np.ndarray, classes: tuple[str, ...]) -> tuple:
    import torch
    from mmseg.evaluation.metrics import IoUMetric

    return IoUMetric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(label), len(classes), 255)


# -- the metric -------------------------------------------------------------------------------

def test_image_miou_counts_the_classes_of_its_ground_truth() -> None:
    """A class only predicted lowers the image's mIoU through the pixels it takes, and is listed;
    an image without labelled pixels has no mIoU and is never among the worst."""
    from mmengine.logging import MessageHub

    from ablate.metrics import PER_IMAGE_INFO, PerClassIoUMetric

    classes = ("road", "car", "sky")
    metric = PerClassIoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = {"classes": classes}
    # a: road 4 px, 3 right, 1 predicted as sky (absent from its ground truth) -> road IoU 3/4, sky extra
    a = (np.array([[0, 0, 0, 2]]), np.array([[0, 0, 0, 0]]))
    # b: road 2 px right, car 2 px, 1 right and 1 predicted road -> road 2/3, car 1/2
    b = (np.array([[0, 0, 1, 0]]), np.array([[0, 0, 1, 1]]))
    empty = (np.array([[1, 1]]), np.array([[255, 255]]))
    results = [(*_metric_pair(p, g, classes), name) for name, (p, g) in zip(("a", "b", "empty"), (a, b, empty))]
    got = metric.compute_metrics(results)
    table = MessageHub.get_current_instance().get_info(PER_IMAGE_INFO)
    rows = {r.image: r for r in table.rows}
    assert rows["a"].miou == pytest.approx(75.0) and rows["a"].extra == ("sky",)
    assert math.isnan(rows["a"].class_iou[2]) and math.isnan(rows["a"].class_iou[1])
    assert rows["b"].miou == pytest.approx((200 / 3 + 50) / 2) and rows["b"].extra == ()
    assert rows["b"].aacc == pytest.approx(75.0) and rows["b"].pixels == 4
    assert math.isnan(rows["empty"].miou) and rows["empty"].pixels == 0
    assert [r.image for r in worst(table.rows, 5)] == ["b", "a"]
    assert got["worst10_mIoU"] == pytest.approx(rows["b"].miou, abs=1e-3)  # ceil(10% of 2) = 1 image
    assert got["image_mIoU"] == pytest.approx((rows["a"].miou + rows["b"].miou) / 2, abs=1e-3)
    assert got["min_class_IoU"] == min(got[f"IoU.{c}"] for c in classes)


def _record(name: str, seed: int, miou: float, **metrics: float) -> Any:
    from ablate.tracking import TrialRun

    device = metrics.pop("device", "")
    return TrialRun(
        run_id=f"{name}-{seed}", experiment="s", name=name, trial_id=f"{name}-{seed}", seed=seed, status="FINISHED",
        shape="trials", rung=None, trick="", tricks=(), model=name, enc_pretrained=False, dec_pretrained=False,
        pretrain=False, tta=False, duration_s=100.0, failure="", optuna_trial=None, optuna_state="", start_time=seed,
        latency_device=str(device), metrics={"mIoU": miou, "flops_g": 10.0, **metrics},
    )


def test_choice_front_uses_one_latency_device_and_gpu_memory_first() -> None:
    from ablate.report import choices, model_rows
    from ablate.report.collect import Collection

    runs = [
        _record("a", 0, 50.0, latency_ms=10.0, device="gpu-x", peak_gpu_mem_gb=3.0),
        _record("a", 1, 52.0, latency_ms=12.0, device="gpu-x", peak_rss_gb=9.0),  # a CPU seed: not averaged in
        _record("b", 0, 40.0, latency_ms=5.0, device="gpu-y"),  # faster, but on another device
        _record("c", 0, 60.0, latency_ms=20.0, device="gpu-x", **{"IoU.road": 70.0, "IoU.sky": 30.0}),
        _record("d", 0, 45.0, latency_ms=15.0, device="gpu-x", min_class_IoU=5.0),  # slower and worse than a
    ]
    (items,) = choices(model_rows(Collection("sqlite://", ["s"], runs, []))).values()
    by_name = {c.row.label: c for c in items}
    assert {n for n, c in by_name.items() if c.pareto} == {"a", "c"}
    assert by_name["a"].latency_ms == pytest.approx(11.0) and by_name["a"].peak_mem_kind == "GPU"
    assert by_name["a"].peak_mem_gb == pytest.approx(3.0)
    assert by_name["c"].min_class_iou == pytest.approx(30.0)  # from the per-class metrics of a run without it
    assert by_name["d"].min_class_iou == pytest.approx(5.0)
    assert math.isnan(by_name["b"].peak_mem_gb) and by_name["b"].peak_mem_kind == ""


# -- a real trial ---------------------------------------------------------------------------------

def test_per_image_table_agrees_with_the_runs_numbers(trained: dict[str, Any]) -> None:
    val_images = sorted(p.stem for p in (trained["root"] / "img_dir" / "val").iterdir())
    for name, run in trained["runs"].items():
        table, metrics = trained["tables"][name], run.data.metrics
        assert sorted(r.image for r in table.rows) == val_images, name
        ranked = [r.miou for r in table.rows if r.ranked]
        assert metrics["image_mIoU"] == pytest.approx(float(np.mean(ranked)), abs=1e-3), name
        worst_tenth = sorted(ranked)[: max(1, math.ceil(0.1 * len(ranked)))]
        assert metrics["worst10_mIoU"] == pytest.approx(float(np.mean(worst_tenth)), abs=1e-3), name
        # the pixel-weighted mean of the images' accuracy is the run's aAcc
        weighted = sum(r.aacc * r.pixels for r in table.rows) / sum(r.pixels for r in table.rows)
        assert metrics["aAcc"] == pytest.approx(weighted, abs=1e-3), name
        for row in table.rows:
            assert row.miou == pytest.approx(float(np.nanmean(row.class_iou)))
        per_class = [v for k, v in metrics.items() if k.startswith("IoU.") and not math.isnan(v)]
        assert metrics["min_class_IoU"] == pytest.approx(min(per_class)), name
    # the test-time-augmented trial's table is its final (augmented) evaluation, not the single-scale one
    tta = trained["runs"][TTA]
    assert tta.data.tags["ablate.final_eval"] == "tta" and "ss_mIoU" in tta.data.metrics


def test_worst_images_are_kept_without_a_second_pass(trained: dict[str, Any]) -> None:
    client = trained["client"]
    for name, run in trained["runs"].items():
        saved = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, WORST_DIR)}
        expected = worst(trained["tables"][name].rows, 4)
        assert len(expected) == 4 and VAL_IMAGES > 4
        assert saved == {f"{r.image}_{kind}.png" for r in expected for kind in ("img", "gt", "pred")}, name


def test_training_pressure_is_logged(trained: dict[str, Any]) -> None:
    import torch

    for name, run in trained["runs"].items():
        metrics = run.data.metrics
        peak = "peak_gpu_mem_gb" if torch.cuda.is_available() else "peak_rss_gb"
        assert 0 < metrics[peak] < 1024, name
        duration = float(run.data.tags["ablate.duration_s"])
        assert 0 < metrics["train_time_s"] < duration, name
        batch, iters = BUDGET["batch_size"], BUDGET["iters"]
        assert metrics["train_images_per_s"] == pytest.approx(batch * iters / metrics["train_time_s"], rel=1e-3), name


# -- the report -----------------------------------------------------------------------------------

def test_which_model_table(trained: dict[str, Any], report: Path) -> None:
    header = (report / "choice.md").read_text()
    for column in ("mIoU (%)", "Worst 10% (%)", "Min class IoU (%)", "FLOPs (G)", "Latency (ms)", "FPS",
                   "Peak mem. (GiB)", "Train time", "Pareto"):
        assert column in header
        assert column.replace("%", r"\%") in (report / "choice.tex").read_text()
    rows = {r["trial"]: r for r in _csv(report / "choice.csv")}
    assert set(rows) == set(trained["runs"])
    for name, run in trained["runs"].items():  # the CSV keeps 6 decimals
        row, metrics = rows[name], run.data.metrics
        assert float(row["miou_mean"]) == pytest.approx(metrics["mIoU"], rel=1e-5, abs=1e-6)
        assert float(row["worst10_miou"]) == pytest.approx(metrics["worst10_mIoU"], rel=1e-5, abs=1e-6)
        assert float(row["min_class_iou"]) == pytest.approx(metrics["min_class_IoU"], rel=1e-5, abs=1e-6)
        assert float(row["flops_g"]) == pytest.approx(metrics["flops_g"], rel=1e-5, abs=1e-6)
        kind = "GPU" if "peak_gpu_mem_gb" in metrics else "RSS"
        assert row["peak_mem_kind"] == kind
        assert float(row["peak_mem_gb"]) == pytest.approx(metrics[f"peak_{'gpu_mem' if kind == 'GPU' else 'rss'}_gb"], rel=1e-5, abs=1e-6)
        assert float(row["train_time_s"]) == pytest.approx(metrics["train_time_s"], rel=1e-5, abs=1e-6)
    # the marked rows are exactly the placed ones no other row beats on both mIoU and cost
    axis = {r["pareto_axis"] for r in rows.values()}.pop()
    if axis.startswith("latency on "):
        device = axis[len("latency on "):]
        cost = {n: float(r["latency_ms"]) if r["latency_device"] == device else math.nan for n, r in rows.items()}
    else:
        cost = {n: float(r["flops_g"]) for n, r in rows.items()}
    points = {n: (cost[n], float(r["miou_mean"])) for n, r in rows.items() if not math.isnan(cost[n])}
    assert points
    for name, row in rows.items():
        c, m = points.get(name, (math.nan, math.nan))
        beaten = name not in points or any(
            c2 <= c and m2 >= m and (c2, m2) != (c, m) for other, (c2, m2) in points.items() if other != name
        )
        assert (row["pareto"] == "True") == (not beaten), name
    html = (report / "index.html").read_text()
    assert 'id="choice"' in html and "choice.tex" in html and "choice.csv" in html


def test_failure_gallery_shows_each_models_worst_image(trained: dict[str, Any], report: Path) -> None:
    shown = _csv(report / "failures.csv")
    for name, run in trained["runs"].items():
        lowest = worst(trained["tables"][name].rows, 1)[0]
        first = next(r for r in shown if r["run_id"] == run.info.run_id and r["rank"] == "1")
        assert first["image"] == lowest.image and float(first["mIoU"]) == pytest.approx(lowest.miou)
        assert first["saved"] == "True", name  # its image, ground truth and prediction were drawn
    html = (report / "index.html").read_text()
    assert 'id="failures"' in html
    figures = [p.name for p in (report / "figures").iterdir() if p.name.startswith("failures_")]
    assert len(figures) == 2 and all(f in html for f in figures)


def test_disagreement_ranks_images_by_spread(trained: dict[str, Any], report: Path) -> None:
    tables = {name: {r.image: r.miou for r in t.rows} for name, t in trained["tables"].items()}
    spreads = {image: abs(tables[BASE][image] - tables[TTA][image]) for image in tables[BASE]}
    listed = _csv(report / "disagreement.csv")
    assert [r["image"] for r in listed] == sorted(spreads, key=lambda i: (-spreads[i], i))
    for row in listed:
        assert float(row["spread"]) == pytest.approx(spreads[row["image"]], abs=1e-5)
    # drawn: the most disputed images of which both runs kept a prediction
    client, kept = trained["client"], {}
    for name, run in trained["runs"].items():
        kept[name] = {Path(a.path).name[: -len("_pred.png")] for folder in ("predictions", WORST_DIR)
                      for a in client.list_artifacts(run.info.run_id, folder) if a.path.endswith("_pred.png")}
    both = [r["image"] for r in listed if all(r["image"] in k for k in kept.values())]
    drawn = [r["image"] for r in listed if r["drawn"] == "True"]
    assert drawn and drawn == both[:DRAWN]
    assert "figures/disagreement.png" in (report / "index.html").read_text()


def test_report_tex_of_real_trials_fits_a_two_column_paper(report: Path, tmp_path: Path) -> None:
    """The .tex files of a report of trials the real runner trained compile in a two-column article
    (pdflatex exits 0) with no box more than 1 pt wider than its column or page."""
    from tests.latex_check import compile_in_paper

    written = sorted(report.glob("*.tex"))
    assert {"table1.tex", "table1_full.tex", "choice.tex"} <= {p.name for p in written}
    assert {"ladder.tex", "ladder_full.tex"} <= {p.name for p in written}
    for tex in written:
        overfull = [width for width in compile_in_paper(tex, tmp_path) if width > 1.0]
        assert not overfull, f"{tex.name}: Overfull \\hbox of {overfull} pt"
