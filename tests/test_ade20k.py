"""Synthetic data in ADE20K's and Pascal VOC's layouts loads through mmseg's own dataset classes,
and a study on mmseg's packaged ADE20K config trains and reports on it with ADE20K's class names."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from PIL import Image

from ablate import compat
from ablate.cli import main
from tests.conftest import REPO, write_study

ADE20K_CONFIG = REPO / "configs" / "segformer" / "segformer_mit-b0_ade20k.py"
SMALL = ["--train", "3", "--test", "2", "--height", "64", "--width", "128"]


def _synth(out: Path, fmt: str) -> Path:
    with pytest.raises(SystemExit) as info:
        main(["data", "synth", "--out", str(out), "--format", fmt, *SMALL])
    assert info.value.code == 0
    return out


@pytest.fixture(scope="module")
def ade20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synth(tmp_path_factory.mktemp("ade") / "ade20k", "ade20k")


def _packaged(name: str) -> object:
    """One of mmseg's own dataset configs, as it ships."""
    import mmseg
    from mmengine.config import Config

    return Config.fromfile(str(Path(mmseg.__file__).parent / ".mim" / "configs" / "_base_" / "datasets" / name))


def _labels_through_mmseg(cfg: object, root: Path) -> tuple[object, dict[str, list[np.ndarray]]]:
    """Each split's label maps as the config's own dataset class and `LoadAnnotations` read them."""
    compat.install()  # before mmseg.datasets
    import mmseg.datasets  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    init_default_scope("mmseg")
    load = next(t for t in cfg.test_pipeline if t["type"] == "LoadAnnotations")  # type: ignore[attr-defined]
    labels: dict[str, list[np.ndarray]] = {}
    dataset = None
    for split, loader in (("train", cfg.train_dataloader), ("val", cfg.val_dataloader)):  # type: ignore[attr-defined]
        node = dict(loader["dataset"], data_root=str(root), pipeline=[load])
        dataset = DATASETS.build(node)
        labels[split] = [dataset[i]["gt_seg_map"] for i in range(len(dataset))]
    return dataset, labels


def test_ade20k_synth_loads_with_mmseg_ade20k_dataset(ade20k: Path) -> None:
    assert sorted(p.name for p in (ade20k / "images" / "training").iterdir()) == [
        "ADE_train_00000001.jpg", "ADE_train_00000002.jpg", "ADE_train_00000003.jpg"]
    assert len(list((ade20k / "annotations" / "validation").glob("*.png"))) == 2
    assert not (ade20k / "img_dir").exists() and not (ade20k / "ann_dir").exists()
    raw = np.unique(np.concatenate([np.asarray(Image.open(p)).ravel() for p in ade20k.glob("annotations/*/*.png")]))
    assert raw.min() >= 0 and raw.max() <= 150  # 0 = other, 1..150 the classes

    dataset, labels = _labels_through_mmseg(_packaged("ade20k.py"), ade20k)
    classes = dataset.metainfo["classes"]  # type: ignore[attr-defined]
    assert len(classes) == 150 and [len(v) for v in labels.values()] == [3, 2]
    seen = np.unique(np.concatenate([m.ravel() for maps in labels.values() for m in maps]))
    assert set(seen) <= set(range(150)) | {255}  # reduce_zero_label: other -> 255
    names = {classes[v] for v in seen if v != 255}
    assert {"road", "sky"} <= names
    assert names <= {"road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "signboard", "tree",
                     "grass", "sky", "person", "car", "truck", "bus", "minibike", "bicycle"}


def test_voc_synth_loads_with_mmseg_pascal_voc_dataset(tmp_path: Path) -> None:
    voc = _synth(tmp_path / "voc", "voc")
    lists = voc / "ImageSets" / "Segmentation"
    assert (lists / "train.txt").read_text().split() == ["train_000000", "train_000001", "train_000002"]
    assert (lists / "val.txt").read_text().split() == ["val_000000", "val_000001"]
    label = Image.open(voc / "SegmentationClass" / "train_000000.png")
    assert label.mode == "P"  # palette PNGs, as VOC ships them

    dataset, labels = _labels_through_mmseg(_packaged("pascal_voc12.py"), voc)
    classes = dataset.metainfo["classes"]  # type: ignore[attr-defined]
    assert len(classes) == 21 and [len(v) for v in labels.values()] == [3, 2]
    seen = set(np.unique(np.concatenate([m.ravel() for maps in labels.values() for m in maps])))
    assert 0 in seen and seen <= {classes.index(n) for n in
                                  ("background", "bicycle", "bus", "car", "motorbike", "person", "train")} | {255}


def test_formats_draw_the_same_scenes_and_refuse_unknown_ones(tmp_path: Path, ade20k: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    kitti = tmp_path / "kitti"
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(kitti), *SMALL])
    cityscapes = np.asarray(Image.open(kitti / "ann_dir" / "train" / "000000.png"))
    ade = np.asarray(Image.open(ade20k / "annotations" / "training" / "ADE_train_00000001.png"))
    from ablate.data.classes import CLASSES

    assert np.array_equal(cityscapes == CLASSES.index("sky"), ade == 3)  # ADE20K's sky is class 2, value 3
    assert np.array_equal(cityscapes == CLASSES.index("road"), ade == 7)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["data", "synth", "--out", str(tmp_path / "x"), "--format", "cityscapes", *SMALL])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--format" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_study_on_mmseg_ade20k_config_trains_and_reports_ade20k_classes(tmp_path: Path, ade20k: Path) -> None:
    """End to end: `ablate run` on mmseg's packaged ADE20K dataset config over synthetic
    ADE20K-format data, then `ablate report` on it, readable at 150 classes."""
    compat.install()
    from mmseg.datasets import ADE20KDataset

    ade_classes = ADE20KDataset.METAINFO["classes"]
    study = write_study(tmp_path / "ade.yaml", ade20k, name="ade_tiny", base=str(ADE20K_CONFIG), trials=[],
                        ladder=[{"class_balanced_loss": {"beta": "auto"}}],
                        data={"root": str(ade20k), "image_scale": [128, 64]},
                        budget={"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1,
                                "workers": 0})
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with pytest.raises(SystemExit) as info:
        main(["run", str(study), "--tracking-uri", uri, "--runs-dir", str(tmp_path / "runs")])
    assert info.value.code == 0

    client = MlflowClient(uri)
    runs = [r for r in client.search_runs([client.get_experiment_by_name("ade_tiny").experiment_id])
            if "ablate.trial_name" in r.data.tags]
    assert sorted(r.data.tags["ablate.trial_name"] for r in runs) == ["r0-base", "r1-class_balanced_loss"]
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        per_class = {k[len("IoU."):] for k in run.data.metrics if k.startswith("IoU.")}
        logged_names = {c.replace(" ", "_") for c in ade_classes} | {c.strip().replace(" ", "_") for c in ade_classes}
        assert per_class and per_class <= logged_names, sorted(per_class)
        assert {"road", "sky"} <= per_class

    out = tmp_path / "report"
    with pytest.raises(SystemExit) as info:
        main(["report", str(study), "--tracking-uri", uri, "--out", str(out), "--format", "png,svg"])
    assert info.value.code == 0
    table = next(out.rglob("per_class_iou.csv"))
    with table.open() as f:
        header = next(csv.reader(f))
    assert len(header[1:]) == 150 and {"road", "sky", "traffic light"} <= {h.replace("_", " ") for h in header}

    figures = [p for p in out.rglob("per_class*.png")]
    assert figures, sorted(p.name for p in out.rglob("*.png"))
    names = {c.strip() for c in ade_classes} | {c.strip().replace(" ", "_") for c in ade_classes}
    for png in figures:
        width, height = Image.open(png).size
        assert max(width, height) <= 8000 and min(width, height) >= 200, (png.name, width, height)
        svg = png.with_suffix(".svg")
        if svg.exists():  # matplotlib keeps every text as a comment beside its glyphs
            labels = [t for t in re.findall(r"<!-- (.*?) -->", svg.read_text()) if t.strip() in names]
            assert 0 < len(labels) <= 60 or max(width, height) >= 12 * len(labels), (png.name, len(labels))


def test_shipped_ade20k_study_demo_generates_synthetic_ade20k_data(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate.config import load_base
    from ablate.study import load_study
    from ablate.study.datasets import data_plan

    monkeypatch.chdir(tmp_path)  # data/synth_ade20k is not there yet: the plan says what `run` would write
    (tmp_path / "configs").symlink_to(REPO / "configs")
    study = load_study(REPO / "studies" / "ade20k_ladder.yaml", "demo")
    assert data_plan(study).describe().endswith("seed 0, ade20k format)")
    assert [d.name for d in study.designs] == ["r0-base", "r1-poly_lr", "r2-class_balanced_loss", "r3-ohem",
                                               "r4-multiscale_test", "r5-aux_head"]
    cfg = load_base(study.base)
    assert cfg.model.decode_head.num_classes == 150 and cfg.train_dataloader.dataset.type == "ADE20KDataset"
    assert yaml.safe_load((REPO / "studies" / "ade20k_ladder.yaml").read_text())["base"] == (
        "configs/segformer/segformer_mit-b0_ade20k.py")
