"""Bridges between the pinned OpenMMLab stack and what this machine actually has.

Both shims are inert where they are not needed: a full mmcv with compiled ops is used untouched,
and checkpoint loading keeps torch's weights-only unpickler.
"""

from ablate.compat.checkpoint import SAFE_CHECKPOINT_GLOBALS, install_checkpoint_loader
from ablate.compat.mmcv_ops import has_compiled_ops, install_mmcv_ops


def install() -> None:
    """Make mmseg importable and mmengine checkpoints loadable; safe to call repeatedly."""
    install_mmcv_ops()
    install_checkpoint_loader()


__all__ = [
    "SAFE_CHECKPOINT_GLOBALS",
    "has_compiled_ops",
    "install",
    "install_checkpoint_loader",
    "install_mmcv_ops",
]
