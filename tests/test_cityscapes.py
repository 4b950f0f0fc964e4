"""`ablate data cityscapes`: the official leftImg8bit/ + gtFine/ tree (generated here, tiny) becomes
the mmseg layout the studies read, label ids mapped to train ids through cityscapesscripts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from ablate.cli import main
from ablate.data import check_layout, convert_cityscapes
from ablate.errors import DataError
from ablate.study import load_study, plan_trials
from tests.conftest import write_study

CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"]}
# a few label ids: trained classes (road, sidewalk, car, bicycle) and ignored ones (unlabeled, parking)
IDS = np.array([0, 7, 8, 9, 26, 33], dtype=np.uint8)


def _make_raw(root: Path, per_city: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for split, cities in {**CITIES, "test": ["berlin"]}.items():
        for city in cities:
            for frame in range(per_city):
                stem = f"{city}_{frame:06d}_000019"
                images = root / "leftImg8bit" / split / city
                labels = root / "gtFine" / split / city
                images.mkdir(parents=True, exist_ok=True)
                labels.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(images / f"{stem}_leftImg8bit.png")
                ids = IDS[rng.integers(0, len(IDS), (32, 64))]
                Image.fromarray(ids).save(labels / f"{stem}_gtFine_labelIds.png")
                # what else the download holds, which the converter leaves alone
                Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(labels / f"{stem}_gtFine_color.png")
                (labels / f"{stem}_gtFine_polygons.json").write_text("{}")
    return root


def _train_id(label_id: int) -> int:
    train_id = id2label[label_id].trainId
    return train_id if 0 <= train_id < 255 else 255


def test_conversion_keeps_the_official_splits_and_maps_label_ids(tmp_path: Path) -> None:
    raw = _make_raw(tmp_path / "raw")
    out = convert_cityscapes(raw, tmp_path / "cityscapes", workers=2)
    check_layout(out)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["source"] == "cityscapes" and meta["counts"] == {"train": 4, "val": 2}
    assert meta["cities"] == {"train": ["aachen", "bochum"], "val": ["frankfurt"]}  # test has no labels: left out
    lut = np.vectorize(_train_id)
    for split, cities in CITIES.items():
        stems = sorted(p.stem for p in (out / "img_dir" / split).glob("*.png"))
        assert stems == sorted(f"{c}_{f:06d}_000019" for c in cities for f in range(2))
        for stem in stems:
            city = stem.split("_")[0]
            image = raw / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
            assert (out / "img_dir" / split / f"{stem}.png").read_bytes() == image.read_bytes()
            ids = np.asarray(Image.open(raw / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"))
            train_ids = np.asarray(Image.open(out / "ann_dir" / split / f"{stem}.png"))
            assert np.array_equal(train_ids, lut(ids))
    assert set(np.unique(train_ids)) <= {_train_id(int(i)) for i in IDS} and 255 in set(np.unique(train_ids))
    assert convert_cityscapes(raw, tmp_path / "cityscapes") == out  # the same dataset again: left as it is


def test_the_converted_set_is_one_pretrain_entry(tmp_path: Path, tiny_data: Path) -> None:
    out = convert_cityscapes(_make_raw(tmp_path / "raw"), tmp_path / "cityscapes")
    study = write_study(tmp_path / "s.yaml", tiny_data, trials=[],
                        pretrain=[{"name": "cityscapes", "data": {"root": str(out), "image_scale": [64, 32]}}],
                        ladder=[{"transfer": {"from": "cityscapes"}}])
    pretrain, _base, transfer = plan_trials(load_study(study), tmp_path / "runs", with_cost=False)
    assert pretrain.name == "pretrain-cityscapes" and pretrain.data_root == out
    assert transfer.depends_on == (pretrain.trial_id,)


def test_cli_converts_and_refuses_a_partial_download(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main(["data", "cityscapes", *args])
        return int(info.value.code)

    raw = _make_raw(tmp_path / "raw")
    assert run(str(raw), "--out", str(tmp_path / "ok")) == 0
    assert "4 train / 2 val" in capsys.readouterr().out

    (raw / "gtFine" / "val" / "frankfurt" / "frankfurt_000001_000019_gtFine_labelIds.png").unlink()
    assert run(str(raw), "--out", str(tmp_path / "partial")) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "frankfurt_000001_000019" in err and "Traceback" not in err
    assert not (tmp_path / "partial").exists()  # nothing half-written

    shutil.rmtree(raw / "gtFine")
    with pytest.raises(DataError, match=r"gtFine/train: folder missing; unzip gtFine_trainvaltest.zip"):
        convert_cityscapes(raw, tmp_path / "x")
