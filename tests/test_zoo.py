"""Every shipped config builds, runs and counts; the Baseline's encoder serves auxiliary heads.

The models are built once per config (the same steps as `ablate.analysis.count_config`) and
shared by the forward and FLOPs checks, keeping the whole file fast on a small CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.conftest import REPO

CONFIG_DIR = REPO / "configs"
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.py") if "_base_" not in p.relative_to(CONFIG_DIR).parts)
BASELINE = CONFIG_DIR / "baseline" / "baseline_fcn_kitti.py"
# Divisible by 16 (UNet) and by 32 (five-stage encoders) while staying tiny.
SMALL = (64, 128)
_BUILT: dict[Path, nn.Module] = {}


def _ids(path: Path) -> str:
    return str(path.relative_to(CONFIG_DIR))


def _load(path: Path) -> Any:
    from ablate import config

    return config.load_base(path)


def _build(path: Path) -> nn.Module:
    """Build like `count_config` does (plain BN, no `pretrained`), once per config."""
    if path not in _BUILT:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules

        from ablate.config import use_plain_bn

        cfg = _load(path)
        if cfg.get("custom_imports"):  # the Baseline's modules, as Config.fromfile would import them
            from mmengine.utils import import_modules_from_strings

            import_modules_from_strings(**cfg.custom_imports)
        register_all_modules(init_default_scope=True)
        use_plain_bn(cfg)
        model_cfg = cfg.model.copy()
        model_cfg.pop("pretrained", None)
        torch.manual_seed(0)
        _BUILT[path] = MODELS.build(model_cfg).eval()
    return _BUILT[path]


def _gflops(name: str) -> float:
    from ablate import analysis

    return analysis.count_model(_build(CONFIG_DIR / name), *SMALL).flops_g


def test_every_table1_row_has_a_config() -> None:
    names = {_ids(p) for p in CONFIGS}
    for want in (
        "baseline/baseline_fcn_kitti.py",
        "unet/unet_s5-d16_fcn_kitti.py",
        "deeplabv3plus/deeplabv3plus_r18-d8_kitti.py",
        "deeplabv3plus/deeplabv3plus_r50-d8_kitti.py",
        "deeplabv3plus/deeplabv3plus_r101-d8_kitti.py",
        "swin/swin-t_segformer-head_kitti.py",
        "segformer/segformer_mit-b0_kitti.py",
        "segformer/segformer_mit-b2_kitti.py",
        "segformer/segformer_mit-b5_kitti.py",
        "pspnet/pspnet_r18-d8_kitti.py",
        "pspnet/pspnet_r101-d8_kitti.py",
    ):
        assert want in names


@pytest.mark.parametrize("path", CONFIGS, ids=_ids)
def test_config_is_offline_and_heads_match_its_dataset(path: Path) -> None:
    """Nothing to download, and every head (decode and auxiliary) predicts its dataset's classes
    (the 19 of the KITTI layout, 150 for the ADE20K config)."""
    from ablate.data import config_meta

    cfg = _load(path)
    classes = config_meta(cfg).num_classes
    assert classes == (150 if "ade20k" in path.name else 19)
    text = cfg.pretty_text
    assert "open-mmlab://" not in text and "https://" not in text and "http://" not in text
    assert cfg.model.get("pretrained") is None
    heads = cfg.model.get("auxiliary_head") or []
    heads = [cfg.model.decode_head, *(heads if isinstance(heads, list) else [heads])]
    assert all(h.num_classes == classes for h in heads)
    assert cfg.default_hooks.checkpoint.save_best == "mIoU"
    assert cfg.model.data_preprocessor.size is not None


@pytest.mark.parametrize("path", CONFIGS, ids=_ids)
def test_config_builds_and_gives_one_logit_per_class(path: Path) -> None:
    model = _build(path)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, *SMALL), mode="tensor")
    assert logits.shape[:2] == (1, 150 if "ade20k" in path.name else 19)
    assert torch.isfinite(logits).all()


def test_flops_are_positive_and_ordered() -> None:
    flops = {_ids(p): _gflops(_ids(p)) for p in CONFIGS}
    assert all(value > 0 for value in flops.values())
    seg = [flops[f"segformer/segformer_mit-{b}_kitti.py"] for b in ("b0", "b2", "b5")]
    assert seg == sorted(seg) and len(set(seg)) == 3
    dl = [flops[f"deeplabv3plus/deeplabv3plus_r{d}-d8_kitti.py"] for d in ("18", "50", "101")]
    assert dl == sorted(dl) and len(set(dl)) == 3
    assert flops["pspnet/pspnet_r18-d8_kitti.py"] < flops["pspnet/pspnet_r101-d8_kitti.py"]


def test_baseline_handles_odd_sizes() -> None:
    """KITTI's 375 rows are odd: every up-sampling stage must line up with its skip."""
    model = _build(BASELINE)
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 75, 98))
        logits = model.decode_head(feats)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 2048]
    assert [tuple(f.shape[2:]) for f in feats] == [(38, 49), (19, 25), (10, 13), (5, 7), (3, 4)]
    assert logits.shape == (1, 19, 38, 49)


def test_baseline_trains_with_an_auxiliary_fcn_head_on_stage_two() -> None:
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    cfg = _load(BASELINE)
    from ablate.config import use_plain_bn

    use_plain_bn(cfg)
    model_cfg = cfg.model.copy()
    model_cfg.pop("pretrained", None)
    model_cfg.pop("data_preprocessor", None)
    model_cfg.auxiliary_head = dict(
        type="FCNHead", in_channels=128, in_index=1, channels=64, num_convs=1, concat_input=False,
        dropout_ratio=0.1, num_classes=19, norm_cfg=dict(type="BN", requires_grad=True),
        align_corners=False, loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4),
    )
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).train()
    h, w = 45, 70
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, h, w)))
        samples.append(sample)
    losses = model.loss(torch.randn(2, 3, h, w), samples)
    assert {"decode.loss_ce", "aux.loss_ce"} <= set(losses)
    total = losses["decode.loss_ce"] + losses["aux.loss_ce"]
    total.backward()
    assert model.backbone.stages[1][0].conv.weight.grad is not None
    assert torch.isfinite(total)
