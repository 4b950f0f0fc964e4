"""Each trick twice: the config it builds, and the behaviour that config produces."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from ablate import compat, config
from ablate.tricks import TRICKS, TrickContext, effective_number_weights, scaled_min_kept
from tests.conftest import B0_CONFIG

BUDGET = dict(iters=6, val_interval=6, batch_size=2, log_interval=1, workers=0, crop=(32, 32), image_scale=(192, 64))


def _cfg(tiny_data: Path, **budget: object):
    return config.base_config(B0_CONFIG, data_root=tiny_data, budget={**BUDGET, **budget})


def _apply(cfg, name: str, tiny_data: Path, checkpoint_of=None, **params: object):
    trick = TRICKS[name]
    ctx = TrickContext(iters=cfg.train_cfg.max_iters, data_root=tiny_data, crop=(32, 32),
                       checkpoint_of=checkpoint_of or (lambda n: Path(f"/ckpt/{n}.pth")))
    trick.apply(cfg, trick.Params.model_validate(params), ctx)
    return cfg


def _model(cfg):
    from mmseg.registry import MODELS

    from ablate.registry import register_all

    register_all()
    return MODELS.build(copy.deepcopy(cfg.model))


def _runner(cfg, work_dir: Path):
    from mmengine.runner import Runner

    compat.install()
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    return Runner.from_cfg(cfg)


# --- transfer --------------------------------------------------------------------------------

def test_transfer_config(tiny_data: Path) -> None:
    cfg = _apply(_cfg(tiny_data), "transfer", tiny_data, **{"from": "city"})
    assert cfg.load_from == "/ckpt/city.pth"
    cfg = _apply(_cfg(tiny_data), "transfer", tiny_data, checkpoint="/x/y.pth")
    assert cfg.load_from == "/x/y.pth"
    with pytest.raises(ValueError, match="exactly one"):
        TRICKS["transfer"].Params.model_validate({})


def test_transfer_changes_the_initial_weights(tiny_data: Path, tmp_path: Path) -> None:
    source = _model(_cfg(tiny_data))
    with torch.no_grad():
        for p in source.parameters():
            p.fill_(0.125)
    path = tmp_path / "source.pth"
    torch.save({"state_dict": source.state_dict(), "meta": {}}, path)
    plain = _runner(_cfg(tiny_data), tmp_path / "plain")
    moved = _runner(_apply(_cfg(tiny_data), "transfer", tiny_data, checkpoint=str(path)), tmp_path / "moved")
    plain.load_or_resume()
    moved.load_or_resume()
    name, weight = next(iter(moved.model.named_parameters()))
    assert torch.all(weight == 0.125)
    assert not torch.all(dict(plain.model.named_parameters())[name] == 0.125)


# --- poly_lr ---------------------------------------------------------------------------------

def test_poly_lr_config(tiny_data: Path) -> None:
    cfg = _apply(_cfg(tiny_data), "poly_lr", tiny_data)
    assert cfg.optim_wrapper.optimizer == dict(type="AdamW", lr=1e-5, betas=(0.9, 0.999), weight_decay=0.01)
    (poly,) = cfg.param_scheduler
    assert (poly.type, poly.power, poly.end, poly.by_epoch, poly.eta_min) == ("PolyLR", 1.0, 7, False, 0.0)
    warm = _apply(_cfg(tiny_data), "poly_lr", tiny_data, warmup_iters=2)
    assert [s.type for s in warm.param_scheduler] == ["LinearLR", "PolyLR"]


def test_poly_lr_follows_the_formula_in_a_real_run(tiny_data: Path, tmp_path: Path) -> None:
    lr0, power, total = 1e-3, 2.0, 6
    cfg = _apply(_cfg(tiny_data), "poly_lr", tiny_data, lr=lr0, power=power)
    runner = _runner(cfg, tmp_path)
    runner.train()
    seen = runner.message_hub.get_scalar("train/lr").data[0]
    expected = [lr0 * (1 - i / total) ** power for i in range(total)]
    assert np.allclose(seen, expected, rtol=1e-6)


# --- class_balanced_loss ---------------------------------------------------------------------

def test_effective_number_weights_equal_the_formula() -> None:
    counts = [1000, 10, 0, 100]
    beta = 0.99
    raw = np.array([(1 - beta) / (1 - beta**n) for n in (1000, 10, 100)])
    expected = raw * 4 / raw.sum()
    got = effective_number_weights(counts, beta)
    assert got[2] == 0.0  # absent from the train split: no effect, excluded from normalisation
    assert np.allclose([got[0], got[1], got[3]], expected)
    assert sum(got) == pytest.approx(4)
    auto = effective_number_weights([10**6, 10**4, 10**2], "auto")  # beta = 1 - 1/median = 1 - 1e-4
    q = 1e-4
    raw = np.array([q / (1 - (1 - q) ** n) for n in (10**6, 10**4, 10**2)])
    assert np.allclose(auto, raw * 3 / raw.sum())
    assert auto[2] > auto[1] > auto[0]


def test_class_balanced_config_uses_train_pixel_counts(tiny_data: Path) -> None:
    from ablate.data import class_stats

    cfg = _apply(_cfg(tiny_data), "class_balanced_loss", tiny_data, beta=0.999)
    expected = effective_number_weights(class_stats(tiny_data).pixel_counts, 0.999)
    assert cfg.model.decode_head.loss_decode.class_weight == pytest.approx(expected)


def test_class_weights_reach_the_loss(tiny_data: Path) -> None:
    cfg = _apply(_cfg(tiny_data), "class_balanced_loss", tiny_data, beta=0.999)
    head_loss = _model(cfg).decode_head.loss_decode
    torch.manual_seed(0)
    logits, target = torch.randn(2, 19, 8, 8), torch.randint(0, 19, (2, 8, 8))
    target[0, :2] = 255  # ignored pixels, as in every real label map
    weights = torch.tensor(cfg.model.decode_head.loss_decode.class_weight, dtype=torch.float32)
    expected = torch.nn.functional.cross_entropy(logits, target, weight=weights, ignore_index=255)
    assert torch.isclose(head_loss(logits, target, ignore_index=255), expected, rtol=1e-5)


# --- ohem ------------------------------------------------------------------------------------

def test_ohem_config_scales_min_kept_with_the_crop(tiny_data: Path) -> None:
    cfg = _apply(_cfg(tiny_data), "ohem", tiny_data)
    expected = round(10000 * 32 * 32 / (375 * 750))
    assert cfg.model.decode_head.sampler == dict(type="OHEMPixelSampler", thresh=0.5, min_kept=expected)
    params = TRICKS["ohem"].Params()
    assert scaled_min_kept(params, (375, 750)) == 10000 and scaled_min_kept(params, (512, 1024)) == 10000
    assert scaled_min_kept(params.model_copy(update={"scale_min_kept": False}), (32, 32)) == 10000


@pytest.mark.parametrize("unsure", [200, 10])
def test_ohem_keeps_low_confidence_pixels_and_at_least_min_kept(tiny_data: Path, unsure: int) -> None:
    cfg = _apply(_cfg(tiny_data), "ohem", tiny_data, min_kept=36, scale_min_kept=False)
    head = _model(cfg).decode_head
    torch.manual_seed(0)
    label = torch.randint(0, 19, (1, 1, 20, 20))
    logits = torch.zeros(1, 19, 20, 20)
    confident = torch.ones(400, dtype=torch.bool)
    confident[torch.randperm(400)[:unsure]] = False
    flat_label = label.view(-1)
    strength = torch.where(confident, 6 + 4 * torch.rand(400), torch.rand(400))  # p(true) > 0.97 vs < 0.2
    logits.view(19, -1)[flat_label, torch.arange(400)] = strength
    weight = head.sampler.sample(logits, label).view(-1)
    prob = logits.softmax(1).view(19, -1)[flat_label, torch.arange(400)]
    kept = weight > 0
    assert kept.sum() >= 36
    assert kept[~confident].all()  # every unsure pixel trains
    if unsure >= 36:
        assert (prob[kept] < 0.5).all()  # and only those
    else:
        assert prob[kept].max() <= prob[~kept].min()  # topped up with the least confident others


# --- multiscale_test -------------------------------------------------------------------------

def test_multiscale_config(tiny_data: Path) -> None:
    cfg = _apply(_cfg(tiny_data), "multiscale_test", tiny_data, scales=[0.5, 1.0, 1.5])
    assert cfg.tta_model == dict(type="SegTTAModel") and cfg.ablate_final_eval == "tta"
    resizes, flips = cfg.tta_pipeline[1].transforms[:2]
    assert [r.scale for r in resizes] == [(96, 32), (192, 64), (288, 96)]
    assert [f.prob for f in flips] == [0.0, 1.0]


def test_tta_runs_every_scale_and_flip_and_averages(tiny_data: Path) -> None:
    from mmengine.dataset import Compose, pseudo_collate
    from mmseg.registry import MODELS

    scales = [0.5, 1.0, 1.5]
    cfg = _apply(_cfg(tiny_data), "multiscale_test", tiny_data, scales=scales)
    model = _model(cfg).eval()
    tta = MODELS.build(dict(type="SegTTAModel", module=model))
    image = sorted((tiny_data / "img_dir" / "val").glob("*.png"))[0]
    seg = tiny_data / "ann_dir" / "val" / image.name
    views = Compose(cfg.tta_pipeline)(dict(img_path=str(image), seg_map_path=str(seg), reduce_zero_label=False, seg_fields=[]))
    shapes, outputs = [], []
    original = model.predict

    def recording(inputs, data_samples=None):  # noqa: ANN001, ANN202
        shapes.append(tuple(inputs.shape[-2:]))
        result = original(inputs, data_samples)
        outputs.append(result[0].seg_logits.data.clone())
        return result

    model.predict = recording
    with torch.no_grad():
        (merged,) = tta.test_step(pseudo_collate([views]))
    assert len(shapes) == 2 * len(scales) and len(set(shapes)) == len(scales)
    mean = torch.stack([o.softmax(0) for o in outputs]).mean(0)  # mmseg averages probabilities
    assert torch.equal(merged.pred_sem_seg.data[0], mean.argmax(0))


# --- aux_head --------------------------------------------------------------------------------

def test_aux_head_config_reads_stage_channels(tiny_data: Path) -> None:
    cfg = _apply(_cfg(tiny_data), "aux_head", tiny_data)
    aux = cfg.model.auxiliary_head
    assert (aux.type, aux.in_index, aux.in_channels, aux.loss_decode.loss_weight) == ("FCNHead", 1, 64, 0.4)
    assert cfg.model.decode_head.loss_decode.loss_weight == 1.0


@pytest.mark.parametrize(
    ("backbone", "channels"),
    [(dict(type="ResNetV1c", depth=50), 512), (dict(type="ResNetV1c", depth=18), 128),
     (dict(type="SwinTransformer", embed_dims=96, depths=[2, 2, 6, 2]), 192)],
)
def test_aux_head_channels_for_resnet_and_swin(tiny_data: Path, backbone: dict, channels: int) -> None:
    from ablate.tricks.aux_head import stage_channels

    cfg = _cfg(tiny_data)
    cfg.model.backbone = backbone
    assert stage_channels(cfg)[1] == channels


def test_aux_loss_appears_with_its_weight(tiny_data: Path) -> None:
    from mmengine.dataset import Compose, pseudo_collate

    cfg = _cfg(tiny_data)
    losses = {}
    for weight in (0.4, 1.0):
        model = _apply(copy.deepcopy(cfg), "aux_head", tiny_data, loss_weight=weight)
        torch.manual_seed(0)
        built = _model(model).eval()
        pipeline = Compose(cfg.train_dataloader.dataset.pipeline)
        image = sorted((tiny_data / "img_dir" / "train").glob("*.png"))[0]
        torch.manual_seed(1)
        np.random.seed(1)
        sample = pipeline(dict(img_path=str(image), seg_map_path=str(tiny_data / "ann_dir" / "train" / image.name),
                               reduce_zero_label=False, seg_fields=[]))
        batch = built.data_preprocessor(pseudo_collate([sample]), training=True)
        losses[weight] = built.loss(batch["inputs"], batch["data_samples"])
    assert "aux.loss_ce" in losses[0.4]
    assert torch.isclose(losses[0.4]["aux.loss_ce"], 0.4 * losses[1.0]["aux.loss_ce"], rtol=1e-5)
    assert torch.isclose(losses[0.4]["decode.loss_ce"], losses[1.0]["decode.loss_ce"], rtol=1e-5)


def test_aux_head_beyond_the_backbones_stages_is_a_config_error(tiny_data: Path) -> None:
    from ablate.errors import ConfigError

    cfg = _cfg(tiny_data)
    trick = TRICKS["aux_head"]
    assert trick.problems(cfg, trick.Params(in_index=3)) == []
    assert trick.problems(cfg, trick.Params(in_index=4)) == [
        ("in_index", "4 is beyond the 4 stages of backbone 'MixVisionTransformer' in segformer_mit-b0_kitti.py; use 0..3")]
    with pytest.raises(ConfigError, match=r"^aux_head.in_index: 4 is beyond the 4 stages"):
        _apply(cfg, "aux_head", tiny_data, in_index=4)
    assert "auxiliary_head" not in cfg.model  # nothing half-applied


def test_aux_head_on_a_backbone_without_known_stages_needs_in_channels(tiny_data: Path) -> None:
    cfg = _cfg(tiny_data)
    cfg.model.backbone = dict(type="SomeBackbone")
    cfg.model.decode_head.in_channels = 64
    trick = TRICKS["aux_head"]
    ((field, message),) = trick.problems(cfg, trick.Params())
    assert field == "in_channels" and "cannot tell the stage channels of backbone 'SomeBackbone'" in message
    assert trick.problems(cfg, trick.Params(in_channels=48)) == []
    assert _apply(cfg, "aux_head", tiny_data, in_channels=48).model.auxiliary_head.in_channels == 48


@pytest.mark.parametrize(
    ("name", "params"),
    [("class_balanced_loss", {"beta": 1.0}), ("class_balanced_loss", {"beta": 0}), ("class_balanced_loss", {"beta": True}),
     ("class_balanced_loss", {"split": "test"}), ("ohem", {"thresh": 1.01}), ("ohem", {"thresh": 0.0}),
     ("multiscale_test", {"scales": [0.0]}), ("aux_head", {"in_index": -1})],
)
def test_trick_parameters_out_of_range_are_refused(name: str, params: dict) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        TRICKS[name].Params.model_validate(params)
    assert {e["loc"][0] for e in info.value.errors()} == set(params)


def test_class_weights_wait_for_the_data_when_planning_without_it(tiny_data: Path) -> None:
    """`plan` before the data exists: the loss is switched, the weights are left to `run`."""
    cfg = _cfg(tiny_data)
    trick = TRICKS["class_balanced_loss"]
    ctx = TrickContext(iters=6, data_root=tiny_data / "not-yet", crop=(32, 32), data_ready=False)
    trick.apply(cfg, trick.Params(beta=0.99), ctx)
    loss = cfg.model.decode_head.loss_decode
    assert loss.type == "BalancedCrossEntropyLoss" and loss.class_weight is None
