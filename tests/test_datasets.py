"""Any mmseg dataset a config declares: mmseg's packaged LoveDA config, a `BaseSegDataset` with
split lists and its own suffixes and classes, and a lab's own class brought in by `custom_imports`.
Real mmseg datasets on files the tests write, tiny real trainings, and bad inputs refused before
anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from mmengine.config import Config
from PIL import Image

from ablate import config as configs
from ablate import data
from ablate.cli import main
from ablate.data import META_ARTIFACT
from ablate.errors import ConfigError, DataError
from ablate.metrics import metric_key
from ablate.study import load_study, plan_trials, run_study
from ablate.tracking import RunStore
from ablate.trial import TrialState

LOVEDA = ("background", "building", "road", "water", "barren", "forest", "agricultural")
SIDE = 32  # tiles are SIDE x SIDE pixels
BUDGET = {"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [SIDE, SIDE], "log_interval": 1, "workers": 0}
MODELS = ["mmseg::_base_/models/segformer_mit-b0.py", "mmseg::_base_/default_runtime.py",
          "mmseg::_base_/schedules/schedule_20k.py"]


def _tile(path: Path, seed: int, values: int, suffix_mode: str = "RGB") -> None:
    """A photo (RGB) or a label map (L) of blocks, so every class shows up somewhere."""
    rng = np.random.default_rng(seed)
    if suffix_mode == "RGB":
        array = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    else:
        blocks = rng.integers(0, values, (4, 4), dtype=np.uint8)
        array = np.kron(blocks, np.ones((SIDE // 4, SIDE // 4), dtype=np.uint8))
        array[:2, :] = np.arange(SIDE, dtype=np.uint8)[None, :] % values  # all labels on every tile
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _loveda(root: Path, train: int = 2, val: int = 2) -> Path:
    """LoveDA's layout: img_dir/{train,val}/*.png, ann_dir/... with 0 = no-data and 1..7 the classes."""
    for split, count in (("train", train), ("val", val)):
        for i in range(count):
            seed = i + (100 if split == "val" else 0)
            _tile(root / "img_dir" / split / f"{i}.png", seed, 0)
            _tile(root / "ann_dir" / split / f"{i}.png", seed, 8, "L")
    return root


def _write_config(path: Path, body: str, bases: list[str] = MODELS) -> Path:
    path.write_text(f"_base_ = {bases!r}\n{body}")
    return path


def _loveda_config(tmp: Path, num_classes: int = 7) -> Path:
    return _write_config(
        tmp / "segformer_loveda.py",
        f"data_preprocessor = dict(size=({SIDE}, {SIDE}))\n"
        f"model = dict(data_preprocessor=data_preprocessor, decode_head=dict(num_classes={num_classes}))\n",
        [MODELS[0], "mmseg::_base_/datasets/loveda.py", *MODELS[1:]],
    )


def _study(path: Path, base: Path, root: Path, **extra: object) -> Path:
    doc: dict = {
        "name": path.stem,
        "base": str(base),
        "data": {"root": str(root), "image_scale": [SIDE, SIDE]},
        "budget": BUDGET,
        "seeds": [0],
        "trials": [{"name": "base"}],
    }
    doc.update(extra)
    doc = {k: v for k, v in doc.items() if v is not None}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _cfg(config: Path, root: Path) -> Config:
    cfg = configs.load_base(config)
    configs.set_data_root(cfg, root)
    return cfg


def _refused(study: Path, tmp: Path, capsys: pytest.CaptureFixture) -> str:
    """`ablate run` of a study that must not train: exit 2, one line, no store, no work dirs."""
    with pytest.raises(SystemExit) as info:
        main(["run", str(study), "--tracking-uri", f"sqlite:///{tmp / 'refused.db'}", "--runs-dir", str(tmp / "runs")])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert not (tmp / "refused.db").exists() and not (tmp / "runs").exists()
    return errors[0]


# -- mmseg's packaged LoveDA config ---------------------------------------------------------------


@pytest.fixture(scope="module")
def loveda(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("loveda")
    root = _loveda(tmp / "loveDA")
    ladder = [{"class_balanced_loss": {}}, {"ohem": {"min_kept": 100}}, {"aux_head": {}}]
    study = load_study(_study(tmp / "loveda_ladder.yaml", _loveda_config(tmp), root, trials=None, ladder=ladder))
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp / "runs")
    return study, uri, outcome, tmp


def test_loveda_ladder_finishes_with_its_own_classes(loveda) -> None:
    study, uri, outcome, tmp = loveda
    assert [r.name for r in outcome.results] == ["r0-base", "r1-class_balanced_loss", "r2-ohem", "r3-aux_head"]
    assert [r.state for r in outcome.results] == [TrialState.FINISHED] * 4, [r.error for r in outcome.results]
    store = RunStore.open(uri)
    for result in outcome.results:
        for name in LOVEDA:
            assert metric_key("IoU", name) in result.metrics, (result.name, name)
        assert metric_key("IoU", "sidewalk") not in result.metrics  # no Cityscapes class left over
        meta = store.dataset_meta(str(result.run_id))
        assert meta is not None and meta.classes == LOVEDA and meta.reduce_zero_label and meta.ignore_index == 255
        assert len(meta.palette) == 7
    run = store.get_run(str(outcome.results[-1].run_id))
    assert run is not None and json.loads(run.inputs.dataset_inputs[0].dataset.profile) == {"train": 2, "val": 2}


def test_loveda_weights_have_one_entry_per_class_on_every_head(loveda) -> None:
    study, _, outcome, tmp = loveda
    specs = {s.name: s for s in plan_trials(study, tmp / "runs")}
    assert [specs[r.name].trial_id for r in outcome.results] == [r.trial_id for r in outcome.results]
    top = Config.fromstring(specs["r3-aux_head"].config_text, ".py")
    head, aux = top.model.decode_head, top.model.auxiliary_head
    assert len(head.loss_decode.class_weight) == 7 and aux.num_classes == 7
    assert aux.loss_decode.class_weight == head.loss_decode.class_weight
    assert top.val_evaluator.type == "PerClassIoUMetric" and top.val_evaluator.iou_metrics == ["mIoU"]
    # the weights count the labels as LoveDA reads them: 0 (no-data) is ignored, 1..7 become 0..6
    stats = data.split_stats(_cfg(Path(study.base), study.data_root))
    assert stats.classes == LOVEDA and stats.images == 2 and all(c > 0 for c in stats.pixel_counts)
    raw = sum(np.bincount(np.asarray(Image.open(p)).ravel(), minlength=8)
              for p in sorted((study.data_root / "ann_dir" / "train").glob("*.png")))
    assert list(stats.pixel_counts) == raw[1:].tolist() and stats.ignored_pixels == raw[0]


def test_loveda_predictions_use_the_dataset_palette(loveda) -> None:
    _, uri, outcome, tmp = loveda
    store = RunStore.open(uri)
    run_id = str(outcome.results[0].run_id)
    meta = store.dataset_meta(run_id)
    assert meta is not None
    folder = store.download_artifact(run_id, "predictions", tmp / "dl")
    truth = next(folder.glob("*_gt.png"))
    colours = {tuple(c) for c in np.asarray(Image.open(truth)).reshape(-1, 3)}
    assert colours <= set(meta.palette) | {(0, 0, 0)} and len(colours) > 3
    assert {a.path for a in store.list_artifacts(run_id)} >= {META_ARTIFACT, "per_image.csv"}


def test_stats_command_reads_a_study(loveda, capsys: pytest.CaptureFixture) -> None:
    study, _, _, _ = loveda
    with pytest.raises(SystemExit) as info:
        main(["data", "stats", str(study.source), "--json"])
    assert info.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["classes"] == list(LOVEDA) and doc == data.split_stats(_cfg(Path(study.base), study.data_root)).to_dict()


# -- a BaseSegDataset with split lists, suffixes and classes in the config --------------------------

SPLIT_CLASSES = ("sky", "tree", "path")


def _split_list_data(root: Path) -> Path:
    for i in range(5):
        _tile(root / "photos" / f"p{i}.jpg", i, 0)
        _tile(root / "masks" / f"p{i}_mask.png", i, 3, "L")
    (root / "splits").mkdir(parents=True, exist_ok=True)
    (root / "splits" / "train.txt").write_text("p0\np1\np2\n")
    (root / "splits" / "val.txt").write_text("p3\np4\n")
    return root


def _split_list_config(tmp: Path) -> Path:
    loader = (
        "dict(batch_size={bs}, num_workers=0, sampler=dict(type='{sampler}', shuffle={shuffle}), "
        "dataset=dict(type='BaseSegDataset', data_root='data/mine', ann_file='splits/{split}.txt', "
        "img_suffix='.jpg', seg_map_suffix='_mask.png', metainfo=dict(classes={classes!r}), "
        "data_prefix=dict(img_path='photos', seg_map_path='masks'), pipeline={pipeline}))"
    )
    body = f"""
data_preprocessor = dict(size=({SIDE}, {SIDE}))
model = dict(data_preprocessor=data_preprocessor, decode_head=dict(num_classes=3))
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='RandomResize', scale=({SIDE}, {SIDE}), ratio_range=(0.5, 2.0), keep_ratio=True),
                  dict(type='RandomCrop', crop_size=({SIDE}, {SIDE})), dict(type='PackSegInputs')]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=({SIDE}, {SIDE}), keep_ratio=True),
                 dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
train_dataloader = {loader.format(bs=2, sampler='InfiniteSampler', shuffle=True, split='train',
                                  classes=SPLIT_CLASSES, pipeline='train_pipeline')}
val_dataloader = {loader.format(bs=1, sampler='DefaultSampler', shuffle=False, split='val',
                                classes=SPLIT_CLASSES, pipeline='test_pipeline')}
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], nan_to_num=-1)
test_evaluator = val_evaluator
"""
    return _write_config(tmp / "segformer_split_lists.py", body)


def test_split_lists_suffixes_and_config_classes(tmp_path: Path) -> None:
    root = _split_list_data(tmp_path / "mine")
    (root / "photos" / "stray.jpg").write_bytes((root / "photos" / "p0.jpg").read_bytes())  # in no list
    config = _split_list_config(tmp_path)
    checked = data.check_data(_cfg(config, root))
    assert checked.splits == {"train": 3, "val": 2, "test": 2}
    assert checked.meta.classes == SPLIT_CLASSES and checked.meta.palette == data.default_palette(3)
    stats = data.split_stats(_cfg(config, root), "val")
    assert stats.classes == SPLIT_CLASSES and stats.images == 2 and stats.ignored_pixels == 0
    (root / "photos" / "stray.jpg").unlink()  # a file no list names changes no fingerprint
    assert data.check_data(_cfg(config, root)).fingerprint == checked.fingerprint

    study = load_study(_study(tmp_path / "split_lists.yaml", config, root))
    outcome = run_study(study, f"sqlite:///{tmp_path / 'm.db'}", runs_dir=tmp_path / "runs")
    (result,) = outcome.results
    assert result.state is TrialState.FINISHED, result.error
    assert {metric_key("IoU", c) for c in SPLIT_CLASSES} <= set(result.metrics)
    dumped = Config.fromfile(str(tmp_path / "runs" / study.name / result.trial_id / "config.py"))
    assert dumped.val_evaluator.type == "PerClassIoUMetric" and dumped.val_evaluator.nan_to_num == -1


# -- a lab's own dataset class, registered through custom_imports -----------------------------------


def test_custom_dataset_class_from_custom_imports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "tiles"
    for split, names in (("train", ("a", "b")), ("val", ("c",))):
        for i, name in enumerate(names):
            _tile(root / split / f"{name}.jpg", i, 0)
            _tile(root / split / f"{name}_gt.png", i, 4, "L")
    loader = (
        "dict(batch_size={bs}, num_workers=0, sampler=dict(type='{sampler}', shuffle=False), "
        "dataset=dict(type='LabTilesDataset', data_root='data/tiles', "
        "data_prefix=dict(img_path='{split}', seg_map_path='{split}'), pipeline={pipeline}))"
    )
    config = _write_config(tmp_path / "segformer_lab.py", f"""
custom_imports = dict(imports=['tests.lab_dataset'], allow_failed_imports=False)
data_preprocessor = dict(size=({SIDE}, {SIDE}))
model = dict(data_preprocessor=data_preprocessor, decode_head=dict(num_classes=4))
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
train_dataloader = {loader.format(bs=2, sampler='InfiniteSampler', split='train', pipeline='pipeline')}
val_dataloader = {loader.format(bs=1, sampler='DefaultSampler', split='val', pipeline='pipeline')}
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
""")
    meta = data.config_meta(_cfg(config, root))
    assert meta.classes == ("ground", "water", "roof", "car") and meta.palette[1] == (20, 60, 200)
    assert data.check_data(_cfg(config, root)).splits == {"train": 2, "val": 1, "test": 1}
    study = load_study(_study(tmp_path / "lab.yaml", config, root))
    outcome = run_study(study, f"sqlite:///{tmp_path / 'm.db'}", runs_dir=tmp_path / "runs")
    (result,) = outcome.results
    assert result.state is TrialState.FINISHED, result.error
    assert metric_key("IoU", "roof") in result.metrics

    with pytest.raises(SystemExit) as info:
        main(["data", "stats", str(config), "--data-root", str(root), "--split", "val"])
    assert info.value.code == 0
    shown = capsys.readouterr().out
    assert "roof" in shown and "val split, 1 images" in shown


# -- bad inputs: one line, exit 2, nothing trained ----------------------------------------------------


def test_head_classes_disagreeing_with_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _loveda(tmp_path / "loveDA", train=1, val=1)
    study = _study(tmp_path / "wrong_head.yaml", _loveda_config(tmp_path, num_classes=19), root,
                   trials=None, ladder=[{"class_balanced_loss": {}}])
    err = _refused(study, tmp_path, capsys)
    assert "model.decode_head.num_classes" in err and "19" in err and "7" in err
    cfg = _cfg(_loveda_config(tmp_path, num_classes=19), root)
    from ablate.tricks import TRICKS, TrickContext

    trick = TRICKS["class_balanced_loss"]
    with pytest.raises(ConfigError, match=r"class_balanced_loss: model.decode_head.num_classes is 19 .* 7 classes"):
        trick.apply(cfg, trick.Params(), TrickContext(iters=2, data_root=root))


def test_ann_file_naming_missing_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _split_list_data(tmp_path / "mine")
    (root / "splits" / "val.txt").write_text("p3\np4\ngone\n")
    study = _study(tmp_path / "missing_image.yaml", _split_list_config(tmp_path), root)
    err = _refused(study, tmp_path, capsys)
    assert "val_dataloader.dataset.ann_file" in err and "1 missing image" in err and "gone.jpg" in err
    (root / "splits" / "train.txt").unlink()
    with pytest.raises(DataError, match=r"^train_dataloader.dataset.ann_file: .*train.txt: file not found$"):
        data.check_data(_cfg(_split_list_config(tmp_path), root))


def test_data_root_without_the_config_prefixes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "elsewhere"
    _tile(root / "images" / "training" / "x.jpg", 0, 0)  # ADE20K's layout, not the config's
    study = _study(tmp_path / "wrong_root.yaml", _loveda_config(tmp_path), root)
    err = _refused(study, tmp_path, capsys)
    assert "train_dataloader.dataset.data_prefix.img_path" in err and str(root / "img_dir" / "train") in err


def test_tta_and_ohem_follow_the_dataset_config(tmp_path: Path) -> None:
    from ablate.tricks import TRICKS, TrickContext
    from ablate.tricks.ohem import crop_of

    root = _loveda(tmp_path / "loveDA", train=1, val=1)
    cfg = _cfg(_loveda_config(tmp_path), root)
    tta = TRICKS["multiscale_test"]
    tta.apply(cfg, tta.Params(scales=(0.5, 1.0)), TrickContext(iters=2, data_root=root))
    # the views read labels as LoveDA's own test pipeline does (reduce_zero_label)
    assert cfg.tta_pipeline[1]["transforms"][2] == [dict(type="LoadAnnotations", reduce_zero_label=True)]
    cfg.model.data_preprocessor.pop("size")  # no padding size: the crop is the train pipeline's
    assert crop_of(cfg) == (512, 512)


def test_unregistered_dataset_type_names_custom_imports(tmp_path: Path) -> None:
    root = _loveda(tmp_path / "loveDA", train=1, val=1)
    cfg = _cfg(_loveda_config(tmp_path), root)
    cfg.train_dataloader.dataset.type = "NoSuchDataset"
    with pytest.raises(ConfigError, match=r"^train_dataloader.dataset.type: 'NoSuchDataset' .*custom_imports$"):
        data.check_data(cfg)
