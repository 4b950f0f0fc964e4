"""Data subpackage: synthetic generator, KITTI conversion, layout checks, fingerprint and stats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ablate.data.stats as stats_module
import ablate.data.synth.dataset as synth_module
from ablate.data import (
    CLASSES,
    IGNORE_INDEX,
    PALETTE,
    ClassStats,
    check_layout,
    class_stats,
    convert_kitti,
    dataset_fingerprint,
    label_id_to_train_id,
    synthesize,
)
from ablate.errors import DataError

SMALL = {"train": 6, "test": 3, "height": 64, "width": 192}
VALID = set(range(len(CLASSES))) | {IGNORE_INDEX}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(root: Path, split: str = "train") -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted((root / "ann_dir" / split).glob("*.png"))]


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("small") / "ds", seed=0, **SMALL)


# ----------------------------------------------------------------------------- classes


def test_classes_come_from_cityscapes_table() -> None:
    assert len(CLASSES) == 19 and len(PALETTE) == 19
    assert CLASSES[0] == "road" and CLASSES[10] == "sky" and CLASSES[13] == "car" and CLASSES[18] == "bicycle"
    assert PALETTE[0] == (128, 64, 128) and PALETTE[13] == (0, 0, 142)
    assert IGNORE_INDEX == 255
    lut = label_id_to_train_id()
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    assert (lut[7], lut[8], lut[26], lut[33]) == (0, 1, 13, 18)
    assert (
        lut[0] == lut[9] == lut[14] == lut[34] == lut[255] == 255
    )  # unlabeled, parking, guard rail, unknown
    lut[7] = 99
    assert label_id_to_train_id()[7] == 0  # callers get a fresh copy


# ----------------------------------------------------------------------------- synth


def test_synth_is_deterministic(small: Path, tmp_path: Path) -> None:
    again = synthesize(tmp_path / "again", seed=0, **SMALL)
    assert _files(again) == _files(small)
    other = _files(synthesize(tmp_path / "other", seed=1, **SMALL))
    first = _files(small)
    assert other["img_dir/train/000000.png"] != first["img_dir/train/000000.png"]
    assert other["ann_dir/train/000000.png"] != first["ann_dir/train/000000.png"]


def test_synth_layout_and_labels(small: Path) -> None:
    check_layout(small)
    assert (small / ".complete").is_file()
    assert _siblings(small) == []  # no temp folder left behind
    meta = json.loads((small / "dataset.json").read_text())
    assert meta["source"] == "synth" and meta["classes"] == list(CLASSES)
    assert meta["counts"] == {"train": 6, "val": 3}
    assert meta["parameters"]["seed"] == 0 and meta["parameters"]["domain"] == "kitti"
    for split, n in (("train", 6), ("val", 3)):
        stems = sorted(p.stem for p in (small / "img_dir" / split).glob("*.png"))
        assert stems == [f"{i:06d}" for i in range(n)]
        assert stems == sorted(p.stem for p in (small / "ann_dir" / split).glob("*.png"))
        for stem in stems:
            img = Image.open(small / "img_dir" / split / f"{stem}.png")
            lab = Image.open(small / "ann_dir" / split / f"{stem}.png")
            assert img.mode == "RGB" and lab.mode == "L"
            assert img.size == lab.size == (192, 64)
            assert set(np.unique(np.asarray(lab)).tolist()) <= VALID

    labels = np.stack(_labels(small) + _labels(small, "val"))
    rows = np.arange(64)[None, :, None]
    sky_rows = np.broadcast_to(rows, labels.shape)[labels == CLASSES.index("sky")]
    road_rows = np.broadcast_to(rows, labels.shape)[labels == CLASSES.index("road")]
    assert (sky_rows < 32).mean() > 0.9
    assert (road_rows >= 32).mean() > 0.9
    assert (labels == IGNORE_INDEX).mean() < 0.05


def test_synth_images_are_textured(small: Path) -> None:
    img = np.asarray(Image.open(small / "img_dir" / "train" / "000000.png")).astype(np.float64)
    lab = _labels(small)[0]
    road = img[lab == CLASSES.index("road")]
    assert road.std(axis=0).min() > 2.0  # noise and texture, not flat fills


def test_synth_class_imbalance(tmp_path: Path) -> None:
    root = synthesize(tmp_path / "imb", train=20, test=1, height=96, width=320, seed=3)
    counts = np.array(class_stats(root).pixel_counts)
    present = counts[counts > 0]
    assert present.size >= 8
    assert counts.max() >= 20 * np.median(present)
    for big in ("road", "building", "vegetation", "sky", "car"):
        assert counts[CLASSES.index(big)] > counts[CLASSES.index("pole")]


def test_city_domain_looks_different(small: Path, tmp_path: Path) -> None:
    city = synthesize(tmp_path / "city", seed=0, domain="city", **SMALL)
    meta = json.loads((city / "dataset.json").read_text())
    assert meta["classes"] == list(CLASSES) and meta["parameters"]["domain"] == "city"

    def road_colour(root: Path) -> np.ndarray:
        pixels = []
        for p in sorted((root / "img_dir" / "train").glob("*.png")):
            lab = np.asarray(Image.open(root / "ann_dir" / "train" / p.name))
            pixels.append(np.asarray(Image.open(p))[lab == CLASSES.index("road")])
        return np.concatenate(pixels).astype(np.float64).mean(axis=0)

    assert np.linalg.norm(road_colour(city) - road_colour(small)) > 15.0
    city_labels = np.stack(_labels(city))
    assert set(np.unique(city_labels).tolist()) <= VALID
    for name in ("road", "sky", "car", "building"):
        assert (city_labels == CLASSES.index(name)).any()


def test_synth_is_idempotent_and_refuses_conflicts(tmp_path: Path) -> None:
    out = synthesize(tmp_path / "ds", seed=0, **SMALL)
    watched = [out / "dataset.json", out / "img_dir" / "train" / "000000.png", out]
    before = [p.stat().st_mtime_ns for p in watched]
    assert synthesize(tmp_path / "ds", seed=0, **SMALL) == out
    assert [p.stat().st_mtime_ns for p in watched] == before

    with pytest.raises(DataError) as err:
        synthesize(tmp_path / "ds", seed=1, **SMALL)
    assert str(out) in str(err.value) and "seed=0" in str(err.value) and "--out" in str(err.value)
    assert "\n" not in str(err.value)

    old_image = (out / "img_dir" / "train" / "000000.png").read_bytes()
    synthesize(tmp_path / "ds", seed=1, overwrite=True, **SMALL)
    assert json.loads((out / "dataset.json").read_text())["parameters"]["seed"] == 1
    assert (out / "img_dir" / "train" / "000000.png").read_bytes() != old_image
    assert _siblings(out) == []


def test_synth_refuses_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a completed ablate dataset"):
        synthesize(out, **SMALL)
    assert (out / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synthesize(empty, **SMALL) == empty and (empty / ".complete").is_file()


def test_synth_crash_leaves_no_partial_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth_module.render
    calls = []

    def flaky(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(synth_module, "render", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        synthesize(tmp_path / "ds", **SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"height": 8}, "synth.height"),
        ({"train": 0}, "synth.train"),
        ({"seed": -1}, "synth.seed"),
        ({"domain": "mars"}, "synth.domain"),
    ],
)
def test_synth_rejects_bad_parameters(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(DataError, match=field):
        synthesize(tmp_path / "ds", **{**SMALL, **kwargs})
    assert not (tmp_path / "ds").exists()


# ----------------------------------------------------------------------------- kitti

RAW_IDS = np.array([0, 7, 8, 9, 11, 21, 23, 26, 24], dtype=np.uint8)  # includes parking (9) -> ignore


def _make_raw(root: Path, n: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images, labels = root / "training" / "image_2", root / "training" / "semantic"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for i in range(n):
        stem = f"{i:06d}_10"
        Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(images / f"{stem}.png")
        Image.fromarray(RAW_IDS[rng.integers(0, RAW_IDS.size, (12, 20))]).save(labels / f"{stem}.png")
    return root


def test_kitti_conversion_maps_ids_and_splits(tmp_path: Path) -> None:
    raw = _make_raw(tmp_path / "raw")
    out = convert_kitti(raw, tmp_path / "kitti", train=5, test=3, seed=0)
    check_layout(out)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["source"] == "kitti" and meta["counts"] == {"train": 5, "val": 3}

    stems = sorted(p.stem for p in (raw / "training" / "image_2").glob("*.png"))
    order = np.random.default_rng(0).permutation(len(stems))
    expected = {"train": [stems[i] for i in order[:5]], "val": [stems[i] for i in order[5:8]]}
    assert meta["splits"] == expected
    for split, chosen in expected.items():
        assert sorted(p.stem for p in (out / "ann_dir" / split).glob("*.png")) == sorted(chosen)

    road, car, sky = CLASSES.index("road"), CLASSES.index("car"), CLASSES.index("sky")
    for split, chosen in expected.items():
        for stem in chosen:
            ids = np.asarray(Image.open(raw / "training" / "semantic" / f"{stem}.png"))
            train_ids = np.asarray(Image.open(out / "ann_dir" / split / f"{stem}.png"))
            assert (train_ids[ids == 7] == road).all()
            assert (train_ids[ids == 26] == car).all()
            assert (train_ids[ids == 23] == sky).all()
            assert (train_ids[(ids == 0) | (ids == 9)] == IGNORE_INDEX).all()
            assert set(np.unique(train_ids).tolist()) <= VALID
            src = (raw / "training" / "image_2" / f"{stem}.png").read_bytes()
            assert (out / "img_dir" / split / f"{stem}.png").read_bytes() == src


def test_kitti_split_is_reproducible(tmp_path: Path) -> None:
    raw = _make_raw(tmp_path / "raw")

    def split_of(name: str, seed: int) -> dict[str, list[str]]:
        return json.loads(
            (convert_kitti(raw, tmp_path / name, train=4, test=2, seed=seed) / "dataset.json").read_text()
        )["splits"]

    assert split_of("a", 0) == split_of("b", 0)
    assert split_of("c", 1) != split_of("a", 0)
    assert convert_kitti(raw, tmp_path / "a", train=4, test=2, seed=0) == tmp_path / "a"
    with pytest.raises(DataError, match="seed=0"):
        convert_kitti(raw, tmp_path / "a", train=4, test=2, seed=1)


def _rgba_image(raw: Path) -> str:
    path = raw / "training" / "image_2" / "000002_10.png"
    Image.new("RGBA", (20, 12)).save(path)
    return str(path)


def _gray_image(raw: Path) -> str:
    path = raw / "training" / "image_2" / "000003_10.png"
    Image.new("L", (20, 12)).save(path)
    return str(path)


def _rgb_label(raw: Path) -> str:
    path = raw / "training" / "semantic" / "000004_10.png"
    Image.new("RGB", (20, 12)).save(path)
    return str(path)


def _missing_label(raw: Path) -> str:
    (raw / "training" / "semantic" / "000005_10.png").unlink()
    return "000005_10"


def _missing_image(raw: Path) -> str:
    (raw / "training" / "image_2" / "000001_10.png").unlink()
    return "000001_10"


def _missing_folder(raw: Path) -> str:
    for p in (raw / "training" / "semantic").iterdir():
        p.unlink()
    (raw / "training" / "semantic").rmdir()
    return str(raw / "training" / "semantic")


def _wrong_size(raw: Path) -> str:
    path = raw / "training" / "semantic" / "000006_10.png"
    Image.new("L", (21, 12)).save(path)
    return str(path)


@pytest.mark.parametrize(
    ("damage", "also"),
    [
        (_rgba_image, "'RGBA'"),
        (_gray_image, "'L'"),
        (_rgb_label, "'RGB'"),
        (_missing_label, "no label"),
        (_missing_image, "no image"),
        (_missing_folder, "folder missing"),
        (_wrong_size, "differs from image size"),
    ],
)
def test_kitti_rejects_bad_input(tmp_path: Path, damage: object, also: str) -> None:
    raw = _make_raw(tmp_path / "raw")
    culprit = damage(raw)  # type: ignore[operator]
    with pytest.raises(DataError) as err:
        convert_kitti(raw, tmp_path / "out", train=4, test=2)
    message = str(err.value)
    assert culprit in message and also in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_kitti_rejects_missing_root_and_too_few_pairs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="KITTI folder not found") as err:
        convert_kitti(tmp_path / "nowhere", tmp_path / "out")
    assert str(tmp_path / "nowhere") in str(err.value)
    raw = _make_raw(tmp_path / "raw", n=5)
    with pytest.raises(DataError, match=r"5 image/label pairs .* --train 4 \+ --test 2"):
        convert_kitti(raw, tmp_path / "out", train=4, test=2)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- layout, fingerprint, stats


def _hand_dataset(root: Path) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(7)
    values = np.array([0, 0, 0, 2, 10, 13, 13, 5, 255], dtype=np.uint8)
    labels: dict[str, list[np.ndarray]] = {}
    for split, n in (("train", 3), ("val", 1)):
        (root / "img_dir" / split).mkdir(parents=True)
        (root / "ann_dir" / split).mkdir(parents=True)
        labels[split] = []
        for i in range(n):
            lab = values[rng.integers(0, values.size, (6, 9))]
            Image.fromarray(np.zeros((6, 9, 3), np.uint8)).save(root / "img_dir" / split / f"{i}.png")
            Image.fromarray(lab).save(root / "ann_dir" / split / f"{i}.png")
            labels[split].append(lab)
    return labels


def test_class_stats_counts_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _hand_dataset(tmp_path)
    expected = np.bincount(np.concatenate([lab.ravel() for lab in labels["train"]]), minlength=256)
    stats = class_stats(tmp_path)
    assert stats.classes == CLASSES and stats.images == 3
    assert list(stats.pixel_counts) == expected[:19].tolist()
    assert stats.ignored_pixels == expected[255]
    assert stats.total == expected[:19].sum()
    assert sum(stats.frequencies) == pytest.approx(1.0)
    assert stats.frequencies[0] == pytest.approx(expected[0] / expected[:19].sum())
    assert ClassStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    assert (tmp_path / "stats_train.json").is_file()

    def no_scan(_: Path) -> tuple[np.ndarray, int]:
        raise AssertionError("cache was not used")

    monkeypatch.setattr(stats_module, "_scan_labels", no_scan)
    assert class_stats(tmp_path) == stats
    with pytest.raises(AssertionError, match="cache was not used"):
        class_stats(tmp_path, "val")  # no cache for this split yet, so it must scan
    monkeypatch.undo()

    changed = labels["train"][0].copy()
    changed[:] = 18
    Image.fromarray(changed).save(tmp_path / "ann_dir" / "train" / "0.png")
    assert class_stats(tmp_path).pixel_counts[18] >= changed.size


def test_class_stats_rejects_bad_values(tmp_path: Path) -> None:
    _hand_dataset(tmp_path)
    bad = np.full((6, 9), 40, np.uint8)
    Image.fromarray(bad).save(tmp_path / "ann_dir" / "train" / "1.png")
    with pytest.raises(DataError, match=r"1\.png: label values \[40\]"):
        class_stats(tmp_path)
    with pytest.raises(DataError, match="split"):
        class_stats(tmp_path, "test")


def test_empty_split_has_zero_frequencies() -> None:
    stats = ClassStats(classes=CLASSES, pixel_counts=(0,) * 19, ignored_pixels=5, images=1)
    assert stats.total == 0 and set(stats.frequencies) == {0.0}
    with pytest.raises(DataError):
        ClassStats(classes=CLASSES, pixel_counts=(1, 2), ignored_pixels=0, images=1)


def test_fingerprint_tracks_label_content(tmp_path: Path) -> None:
    _hand_dataset(tmp_path)
    first = dataset_fingerprint(tmp_path)
    assert len(first) == 16 and int(first, 16) >= 0
    assert dataset_fingerprint(tmp_path) == first
    path = tmp_path / "ann_dir" / "val" / "0.png"
    lab = np.asarray(Image.open(path)).copy()
    lab[0, 0] = 1 if lab[0, 0] != 1 else 2
    Image.fromarray(lab).save(path)
    second = dataset_fingerprint(tmp_path)
    assert second != first
    (tmp_path / "stats_train.json").write_text("{}")  # caches beside the data do not count
    assert dataset_fingerprint(tmp_path) == second


def test_check_layout_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset folder not found.*ablate data synth --out"):
        check_layout(tmp_path / "missing")
    _hand_dataset(tmp_path)
    check_layout(tmp_path)
    for p in (tmp_path / "ann_dir" / "val").iterdir():
        p.unlink()
    with pytest.raises(DataError) as err:
        check_layout(tmp_path)
    assert str(tmp_path / "ann_dir" / "val") in str(err.value) and "ablate data kitti RAW" in str(err.value)
    (tmp_path / "ann_dir" / "val").rmdir()
    with pytest.raises(DataError, match="folder missing"):
        check_layout(tmp_path)
    (tmp_path / "ann_dir" / "val").mkdir()
    Image.fromarray(np.zeros((6, 9), np.uint8)).save(tmp_path / "ann_dir" / "val" / "other.png")
    with pytest.raises(DataError, match=r"without a partner.*0, other"):
        check_layout(tmp_path)
