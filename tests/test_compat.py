"""The mmcv-lite bridge: mmseg imports and builds, the two ops are right, full mmcv is untouched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import ablate  # noqa: F401  (installs the bridge)


def test_mmseg_imports_and_guarded_ops_are_absent() -> None:
    import mmseg.models  # noqa: F401
    from mmseg.models.decode_heads import cc_head, psa_head

    # mmseg guards these with `except ModuleNotFoundError`: they must come back as None.
    assert cc_head.CrissCrossAttention is None
    assert psa_head.PSAMask is None


def test_other_ops_raise_module_not_found_naming_the_feature() -> None:
    with pytest.raises(ModuleNotFoundError, match="CCNet.*full mmcv"):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    with pytest.raises(ModuleNotFoundError, match="full mmcv"):
        from mmcv.ops import some_future_op  # noqa: F401
    with pytest.raises(ImportError):
        import mmcv.ops.multi_scale_deform_attn  # noqa: F401


def test_point_sample_reads_pixel_centres_exactly() -> None:
    from mmcv.ops import point_sample

    feats = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    ys, xs = torch.tensor([0, 3, 1]), torch.tensor([0, 4, 2])
    points = torch.stack([(xs + 0.5) / 5, (ys + 0.5) / 4], dim=-1).unsqueeze(0).repeat(2, 1, 1)
    sampled = point_sample(feats, points, align_corners=False)
    assert sampled.shape == (2, 3, 3)
    assert torch.allclose(sampled, feats[:, :, ys, xs])
    grid = points.unsqueeze(1)  # (N, 1, P, 2) keeps the grid shape
    assert point_sample(feats, grid).shape == (2, 3, 1, 3)


def test_sigmoid_focal_loss_matches_mmseg_python_reference() -> None:
    from mmcv.ops import sigmoid_focal_loss
    from mmseg.models.losses.focal_loss import py_sigmoid_focal_loss

    torch.manual_seed(0)
    logits = torch.randn(7, 5)
    target = torch.tensor([0, 1, 4, 2, 2, 3, 1])
    one_hot = torch.nn.functional.one_hot(target, 5).float()
    for gamma, alpha in [(2.0, 0.25), (1.0, 0.5)]:
        ours = sigmoid_focal_loss(logits, target, gamma, alpha, None, "none")
        ref = py_sigmoid_focal_loss(logits, one_hot, gamma=gamma, alpha=alpha, reduction="none")
        assert torch.allclose(ours, ref, atol=1e-6)
    weight = torch.rand(7)
    mean = sigmoid_focal_loss(logits, target, 2.0, 0.25, weight, "mean")
    assert torch.isclose(mean, (sigmoid_focal_loss(logits, target, 2.0, 0.25, None, "none") * weight[:, None]).mean())


def test_bridge_is_inert_when_compiled_ops_exist(tmp_path: Path) -> None:
    """A full mmcv (its folder holds the compiled `_ext`): the bridge stays out of the way."""
    fake = tmp_path / "mmcv"
    (fake / "ops").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "_ext.py").write_text("")
    (fake / "ops" / "__init__.py").write_text("COMPILED = True\n")
    script = textwrap.dedent(
        """
        import sys
        from ablate.compat.mmcv_ops import has_compiled_ops, install_mmcv_ops
        assert has_compiled_ops()
        assert install_mmcv_ops() is False
        import ablate  # package import must not install it either
        import mmcv.ops
        assert mmcv.ops.COMPILED and not hasattr(mmcv.ops, "__ablate_lite_ops__")
        print("inert")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "inert" in proc.stdout


def test_import_ablate_is_cheap_and_sets_nothing_process_wide() -> None:
    """`import ablate` imports neither torch nor mmcv, and leaves Ray's loopback switch alone."""
    script = (
        "import os, sys; os.environ.pop('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', None); import ablate, ablate.cli, "
        "ablate.dispatch, ablate.study, ablate.tracking; "
        "assert 'torch' not in sys.modules and 'mmcv' not in sys.modules and 'matplotlib' not in sys.modules, "
        "[m for m in ('torch', 'mmcv', 'matplotlib') if m in sys.modules]; "
        "assert 'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER' not in os.environ; print('cheap')"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cheap" in proc.stdout


def test_install_is_idempotent() -> None:
    from ablate.compat.mmcv_ops import install_mmcv_ops

    before = sys.modules["mmcv.ops"]
    assert install_mmcv_ops() is True  # already ours: reported, not replaced
    assert sys.modules["mmcv.ops"] is before
