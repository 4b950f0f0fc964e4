"""Weights-only loading of mmengine checkpoints under torch >= 2.6.

torch now unpickles checkpoints with `weights_only=True`, and mmengine 0.10.7 checkpoints hold a
few non-tensor objects (the message hub's `HistoryBuffer`, numpy arrays and scalars). Rather than
turning the safe unpickler off, mmengine's local-file loader is wrapped so that, for the duration
of one checkpoint load only, exactly those globals are allowed. Everything else still refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_installed = False


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """`getattr` restricted to what a pickled HistoryBuffer needs: its statistics methods.

    HistoryBuffer pickles its registered statistics as `getattr(HistoryBuffer, 'mean')` etc.; a
    general `getattr` would be a needless gadget for a malicious file.
    """
    from mmengine.logging import HistoryBuffer

    # mmengine fills `_statistics_methods` lazily, on the first HistoryBuffer built, so in a
    # fresh process it may still be empty: the four built-in statistics are always allowed.
    allowed = {"min", "max", "mean", "current", *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise RuntimeError(f"checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed")


def _numpy_globals() -> list[tuple[Callable[..., Any], str]]:
    import numpy as np

    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]

    entries: list[tuple[Callable[..., Any], str]] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    # Checkpoints written under numpy 1.x name `numpy.core`, under 2.x `numpy._core`.
    for prefix in ("numpy.core.multiarray", "numpy._core.multiarray"):
        entries.append((multiarray._reconstruct, f"{prefix}._reconstruct"))
        entries.append((multiarray.scalar, f"{prefix}.scalar"))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in dir(dtypes):
            if name.endswith("DType"):
                entries.append((getattr(dtypes, name), f"numpy.dtypes.{name}"))
    return entries


def safe_checkpoint_globals() -> list[Any]:
    """The allow-list used while mmengine loads a checkpoint."""
    from mmengine.logging import HistoryBuffer

    return [
        (HistoryBuffer, "mmengine.logging.history_buffer.HistoryBuffer"),
        (_history_buffer_getattr, "builtins.getattr"),
        (_history_buffer_getattr, "__builtin__.getattr"),
        *_numpy_globals(),
    ]


# Names, for documentation and tests; the objects are resolved lazily (mmengine import is slow).
SAFE_CHECKPOINT_GLOBALS: tuple[str, ...] = (
    "mmengine.logging.history_buffer.HistoryBuffer",
    "builtins.getattr (HistoryBuffer statistics only)",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.dtypes.*DType",
    "numpy[._]core.multiarray._reconstruct",
    "numpy[._]core.multiarray.scalar",
)


def install_checkpoint_loader() -> bool:
    """Wrap mmengine's local checkpoint loader (used by load_from, resume and init_cfg).

    Returns True when the wrapper was installed by this call.
    """
    global _installed
    if _installed:
        return False
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader

    original = CheckpointLoader._schemes[""]
    if getattr(original, "__ablate_wrapped__", False):
        _installed = True
        return False

    def load_from_local(filename: str, map_location: Any = None) -> Any:
        with torch.serialization.safe_globals(safe_checkpoint_globals()):
            return original(filename, map_location)

    load_from_local.__ablate_wrapped__ = True  # type: ignore[attr-defined]
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)
    _installed = True
    return True
