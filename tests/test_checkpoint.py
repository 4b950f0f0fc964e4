"""Checkpoints under torch's weights-only loading: our own (resume, load_from) and official ones."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ablate import compat, config
from tests.conftest import B0_CONFIG

TINY_BUDGET = dict(iters=2, val_interval=2, batch_size=2, log_interval=1, workers=0, crop=(32, 32), image_scale=(192, 64))


def _runner(tiny_data: Path, work_dir: Path, iters: int, **cfg_updates: object):
    from mmengine.runner import Runner

    import ablate.registry  # noqa: F401  (the config's PerClassIoUMetric, also when this file runs alone)

    compat.install()
    cfg = config.base_config(B0_CONFIG, data_root=tiny_data, budget={**TINY_BUDGET, "iters": iters, "val_interval": iters})
    cfg.randomness = dict(seed=0, deterministic=False)
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.checkpoint.update(save_best=None, max_keep_ckpts=-1)
    for key, value in cfg_updates.items():
        cfg[key] = value
    return Runner.from_cfg(cfg)


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work_dir = tmp_path_factory.mktemp("ckpt")
    _runner(tiny_data, work_dir, iters=2).train()
    return work_dir


def test_plain_weights_only_load_refuses_mmengine_checkpoints(trained: Path) -> None:
    """The problem the bridge exists for: torch's default refuses what mmengine writes."""
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trained / "iter_2.pth", weights_only=True)


def test_resume_continues_the_iteration_counter(trained: Path, tiny_data: Path) -> None:
    from mmengine.hooks import Hook

    class RecordStart(Hook):
        start = None

        def before_train(self, runner) -> None:  # noqa: ANN001
            self.start = runner.iter

    runner = _runner(tiny_data, trained, iters=4, resume=True)
    record = RecordStart()
    runner.register_hook(record)
    runner.train()
    assert record.start == 2
    assert runner.iter == 4
    assert (trained / "iter_4.pth").exists()


def test_load_from_own_checkpoint_restores_weights(trained: Path, tiny_data: Path, tmp_path: Path) -> None:
    saved = torch.load(trained / "iter_2.pth", weights_only=False)["state_dict"]
    runner = _runner(tiny_data, tmp_path, iters=1)
    runner.load_checkpoint(str(trained / "iter_2.pth"))
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, saved[name]), name


@pytest.mark.parametrize("style", ["mmseg0x", "mmseg1x"])
def test_load_from_official_mmseg_checkpoint(style: str, tiny_data: Path, tmp_path: Path) -> None:
    """Released mmseg checkpoints: state_dict + meta (class names, palette, config text, numpy)."""
    runner = _runner(tiny_data, tmp_path / "w", iters=1)
    state = {k: torch.full_like(v, 0.125) if v.is_floating_point() else v for k, v in runner.model.state_dict().items()}
    from ablate.data import CLASSES as classes

    if style == "mmseg0x":
        meta = {"env_info": "sys.platform: linux", "config": "model = dict(type='EncoderDecoder')", "seed": 0,
                "exp_name": "segformer.py", "mmseg_version": "0.30.0", "CLASSES": classes,
                "PALETTE": [[128, 64, 128]] * 19, "iter": 160000, "epoch": 1}
    else:
        meta = {"dataset_meta": {"classes": classes, "palette": [[128, 64, 128]] * 19},
                "mmengine_version": "0.7.0", "seed": np.int64(1234), "experiment_name": "x", "iter": 160000,
                "hook_msgs": {"best_score": np.float64(77.1)}, "scale": np.array([1.0, 2.0])}
    path = tmp_path / f"{style}.pth"
    torch.save({"meta": meta, "state_dict": state}, path)
    runner.load_checkpoint(str(path))
    weights = runner.model.state_dict()
    assert all(torch.all(weights[k] == 0.125) for k in state if state[k].is_floating_point())


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("pwned",))


def test_weights_only_stays_on_for_other_globals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from mmengine.runner.checkpoint import _load_checkpoint

    compat.install()
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "meta": {"x": _Evil()}}, path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path))
    assert "pwned" not in capsys.readouterr().out


def test_allow_list_is_scoped_to_the_load(trained: Path) -> None:
    from mmengine.runner.checkpoint import _load_checkpoint

    compat.install()
    _load_checkpoint(str(trained / "iter_2.pth"))
    names = {getattr(g, "__name__", str(g)) for g in torch.serialization.get_safe_globals()}
    assert "HistoryBuffer" not in names
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trained / "iter_2.pth", weights_only=True)


def test_resume_loads_in_a_fresh_process(trained: Path) -> None:
    """A new worker has built no HistoryBuffer yet; the allow-list must not depend on that."""
    import subprocess
    import sys

    code = (
        "import ablate.compat as c; c.install()\n"
        "from mmengine.runner.checkpoint import _load_checkpoint\n"
        f"ck = _load_checkpoint({str(trained / 'iter_2.pth')!r})\n"
        "print(sorted(ck['message_hub']['log_scalars'])[:1])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
