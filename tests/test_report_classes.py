"""`ablate report` on datasets other than Cityscapes: class names and colours come from the runs'
logged label space, and a report of ADE20K's 150 classes keeps every class in its CSVs while its
figures stay legible (bounded pixel size, a named subset of classes per figure)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from ablate import tracking
from ablate.data import CITYSCAPES_META, CLASSES, ClassStats, DatasetMeta
from ablate.report import build_report, class_figures
from ablate.report.classes import distribution_section
from ablate.report.folder import Writer
from ablate.report.label_space import LabelSpace, colour_key
from tests.test_report import add_run

ADE, LOVEDA, OLD, OTHER = "ade-ladder", "loveda-zoo", "city-old", "other-old"
SEEDS = range(4)
RUNGS = ["base", "poly_lr", "class_balanced_loss", "ohem"]
HELPED = 14  # classes the second rung lifts by 10 points: more than the helped/hurt table names
MAX_SIDE = 3600  # pixels: no figure of the report may grow past this with the class count


def _mmseg_meta(name: str) -> DatasetMeta:
    import importlib

    import ablate.compat  # noqa: F401  (first: mmseg on this torch/numpy)

    info = getattr(importlib.import_module("mmseg.datasets"), name).METAINFO
    return DatasetMeta(classes=tuple(info["classes"]), palette=tuple(tuple(c) for c in info["palette"]))


def _ious(classes: tuple[str, ...], miou: float, rng: np.random.Generator, lift: set[str]) -> dict[str, float]:
    """Every class at its own level around `miou` with a small per-run wobble; a few classes absent."""
    out = {}
    for i, name in enumerate(classes):
        key = name.replace(" ", "_")
        level = miou + 30 * np.sin(i) + (10.0 if name in lift else 0.0) + rng.normal(0, 0.05)
        out[f"IoU.{key}"] = float("nan") if i % 50 == 49 else float(np.clip(level, 0, 100))
    return out


def _png(path: Path, colours: list[tuple[int, int, int]]) -> Path:
    from PIL import Image

    arr = np.zeros((24, 48, 3), dtype=np.uint8)
    for k, colour in enumerate(colours):
        arr[:, 48 * k // len(colours) : 48 * (k + 1) // len(colours)] = colour
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report-classes")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    client = MlflowClient(uri)
    store = tracking.RunStore.open(uri)
    ade, loveda = _mmseg_meta("ADE20KDataset"), _mmseg_meta("LoveDADataset")
    lifted = set(ade.classes[:HELPED])
    rng = np.random.default_rng(0)
    exp = store.ensure_experiment(ADE)
    best = ""
    for rung, trick in enumerate(RUNGS):
        for seed in SEEDS:
            miou = 40.0 + rung + 0.5 * seed  # classes other than the lifted ones keep their level
            run_id = add_run(client, exp, ADE, f"r{rung}-{trick}", seed, shape="ladder", miou=miou,
                             tags={"ablate.rung": str(rung), "ablate.trick": trick},
                             class_metrics=_ious(ade.classes, 40.0 + 0.5 * seed, rng, lifted if rung >= 1 else set()))
            store.log_dataset_meta(run_id, ade)
            best = run_id
    preds = tmp / "preds"
    preds.mkdir()
    label_colours = [ade.palette[ade.classes.index(n)] for n in ("wall", "sky", "floor", "car")]
    for kind, colours in (("img", [(1, 2, 3), (200, 200, 200)]), ("gt", label_colours), ("pred", label_colours[:3])):
        client.log_artifact(best, str(_png(preds / f"a_{kind}.png", colours)), artifact_path="predictions")
    exp = store.ensure_experiment(LOVEDA)
    for model, miou in (("segformer-b0", 50.0), ("pspnet-r18", 45.0)):
        for seed in range(2):
            run_id = add_run(client, exp, LOVEDA, model, seed, shape="zoo", miou=miou + seed,
                             tags={"ablate.model": model},
                             class_metrics=_ious(loveda.classes, miou + seed, rng, set()))
            store.log_dataset_meta(run_id, loveda)
    exp = store.ensure_experiment(OLD)  # runs from before the label space was logged
    for seed in range(2):
        add_run(client, exp, OLD, "segformer-b2", seed, shape="zoo", miou=60.0 + seed,
                class_metrics=_ious(CLASSES, 60.0 + seed, rng, set()))
    exp = store.ensure_experiment(OTHER)
    add_run(client, exp, OTHER, "unet", 0, shape="zoo", miou=30.0,
            class_metrics={"IoU.lawn": 31.0, "IoU.pond": 29.0, "IoU.path_way": 30.0})
    return {"tmp": tmp, "uri": uri, "ade": ade, "loveda": loveda}


@pytest.fixture(scope="module")
def ade_report(stores: dict[str, Any]) -> tuple[Path, list[Path], int]:
    reads = []
    original = tracking.RunStore.dataset_meta

    def counted(self: tracking.RunStore, run_id: str) -> DatasetMeta | None:
        reads.append(run_id)
        return original(self, run_id)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking.RunStore, "dataset_meta", counted)
        out = stores["tmp"] / "out-ade"
        written = build_report([ADE], out=out, tracking_uri=stores["uri"], formats="png,svg")
    return out, written, len(reads)


def _rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _svg_texts(path: Path) -> list[str]:
    """The strings an SVG figure draws (matplotlib writes each as a comment above its glyphs)."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


def test_label_space_is_read_once_per_dataset(ade_report: tuple[Path, list[Path], int]) -> None:
    _, _, reads = ade_report
    assert reads == 1  # 16 runs of one dataset


def test_per_class_csvs_have_all_150_classes(stores: dict[str, Any], ade_report: tuple[Path, list[Path], int]) -> None:
    out, _, _ = ade_report
    ade = stores["ade"]
    table = _rows(out / "per_class_iou.csv")
    assert table[0] == ["model", *ade.classes] and len(table) == 1 + len(RUNGS)
    ranked = _rows(out / "per_class_ranked.csv")
    assert sorted(r[1] for r in ranked[1:]) == sorted(ade.classes)
    means = [float(r[2]) for r in ranked[1:] if r[2]]
    assert means == sorted(means) and len(means) == 147  # 3 classes never seen come last, blank
    deltas = _rows(out / "ladder_class_delta.csv")
    assert len(deltas) == 1 + (len(RUNGS) - 1) * 150


def test_figures_stay_legible_at_150_classes(stores: dict[str, Any], ade_report: tuple[Path, list[Path], int]) -> None:
    out, written, _ = ade_report
    ade = stores["ade"]
    pngs = [p for p in written if p.suffix == ".png"]
    assert pngs and all(max(_size(p)) <= MAX_SIDE for p in pngs), {p.name: _size(p) for p in pngs}
    limit = class_figures.MAX_CLASS_COLUMNS
    ranked = [r[1] for r in _rows(out / "per_class_ranked.csv")[1:]]
    for stem, expected in (("per_class_heatmap", ranked[:limit]), ("per_class_heatmap_spread", None),
                           ("per_class_bars", None), ("ladder_class_delta", None)):
        drawn = [t for t in _svg_texts(out / "figures" / f"{stem}.svg") if t in ade.classes]
        assert 0 < len(drawn) <= limit, stem
        if expected is not None:  # the worst classes, worst first, named on the axis
            assert drawn == expected
    # the classes the second rung lifted lead the per-rung changes, significant ones first
    drawn = [t for t in _svg_texts(out / "figures" / "ladder_class_delta.svg") if t in ade.classes]
    assert set(drawn[:HELPED]) == set(ade.classes[:HELPED])
    html = (out / "index.html").read_text()
    assert "30 classes with the lowest mean IoU of 150" in html and "changed most on any rung" in html
    helped = re.search(r"<td>poly_lr</td><td>([^<]*) and (\d+) more \(CSV\)</td>", html)
    assert helped is not None and int(helped.group(2)) >= HELPED - 10
    assert {c.split(" (")[0] for c in helped.group(1).split(", ")} <= set(ade.classes[:HELPED])
    tested = _rows(out / "ladder_class_delta.csv")
    column = tested[0].index("significant")
    lifted = {r[4] for r in tested[1:] if r[3] == "poly_lr" and r[column] == "True"}
    assert lifted >= set(ade.classes[:HELPED])


def test_qualitative_key_uses_the_dataset_palette(stores: dict[str, Any]) -> None:
    ade = stores["ade"]
    space = LabelSpace(ade)
    colour = {n: ade.palette[ade.classes.index(n)] for n in ("wall", "sky", "car")}
    gt = np.zeros((4, 4, 3), dtype=np.uint8)
    gt[:, :3] = colour["sky"]
    gt[:, 3] = colour["car"]
    pred = np.zeros((4, 4, 3), dtype=np.uint8)
    pred[:] = colour["sky"]
    image = np.full((4, 4, 3), colour["wall"], dtype=np.uint8)  # the input image is no label map
    assert colour_key([[image, gt, pred]], space) == [("sky", colour["sky"]), ("car", colour["car"])]


def test_qualitative_figure_is_drawn(ade_report: tuple[Path, list[Path], int]) -> None:
    out, _, _ = ade_report
    texts = _svg_texts(out / "figures" / "qualitative.svg")
    assert {"wall", "sky", "floor", "car"} <= set(texts)


def test_distribution_of_any_class_count(stores: dict[str, Any], tmp_path: Path) -> None:
    ade = stores["ade"]
    counts = tuple(0 if i % 40 == 39 else int(1e6 / (i + 1)) for i in range(150))
    stats = ClassStats(classes=ade.classes, pixel_counts=counts, ignored_pixels=7, images=3)
    writer = Writer(tmp_path, ("png", "svg"))
    section = distribution_section(stats, ade, writer, "Train split of ade")
    png = tmp_path / "figures" / "class_distribution.png"
    assert max(_size(png)) <= MAX_SIDE and "150 classes" in section.paragraphs[0]
    named = [t for t in _svg_texts(png.with_suffix(".svg")) if t in ade.classes]
    assert len(named) == class_figures.MAX_CLASS_COLUMNS and named[0] == ade.classes[0]
    table = _rows(tmp_path / "class_distribution.csv")
    assert [r[0] for r in table[1:]] == list(ade.classes) and table[1][1] == "1000000"
    empty = distribution_section(None, ade, writer, "no dataset known")
    assert empty.notes == ["no dataset known"] and not empty.figures


def test_loveda_report_lists_loveda_classes(stores: dict[str, Any]) -> None:
    import typer
    from typer.testing import CliRunner

    from ablate.cli.report import report_command

    app = typer.Typer()
    app.command("report")(report_command)
    app.command("noop")(lambda: None)
    out = stores["tmp"] / "out-loveda"
    result = CliRunner().invoke(app, ["report", "-e", LOVEDA, "--out", str(out), "--tracking-uri", stores["uri"]])
    assert result.exit_code == 0, result.output
    table = _rows(out / "per_class_iou.csv")
    assert table[0] == ["model", *stores["loveda"].classes] and len(table) == 3
    assert (out / "figures" / "per_class_heatmap.png").is_file()


def test_runs_without_label_space_keep_cityscapes_or_their_metric_names(stores: dict[str, Any]) -> None:
    out = stores["tmp"] / "out-old"
    build_report([OLD], out=out, tracking_uri=stores["uri"])
    assert _rows(out / "per_class_iou.csv")[0] == ["model", *CITYSCAPES_META.classes]
    out = stores["tmp"] / "out-other"
    build_report([OTHER], out=out, tracking_uri=stores["uri"])
    assert _rows(out / "per_class_iou.csv")[0] == ["model", "lawn", "path_way", "pond"]
    # two label spaces in one report: the union, the logged space first, and a note saying so
    out = stores["tmp"] / "out-mixed"
    build_report([LOVEDA, OLD], out=out, tracking_uri=stores["uri"])
    header = _rows(out / "per_class_iou.csv")[0]
    assert header[1:8] == list(stores["loveda"].classes) and "traffic light" in header
    assert "2 label spaces" in (out / "index.html").read_text()
