"""Everything ablate adds to the OpenMMLab registries, imported in one place.

Configs name these through `custom_imports` as well, so they also work under mmseg's own tools.
"""

from __future__ import annotations

import importlib

_MODULES = ("ablate.losses", "ablate.metrics", "ablate.models", "ablate.tracking.hook", "ablate.trial.progress",
            "ablate.search.pruning")


def register_all() -> None:
    """Make mmseg importable here and register ablate's losses, metrics, models and hooks."""
    from ablate import compat

    compat.install()
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    for name in _MODULES:
        importlib.import_module(name)
