"""Everything ablate adds to the OpenMMLab registries, imported in one place.

A trial's dumped `config.py` names this module in `custom_imports`, so the same hooks, losses,
metrics and models are there when mmseg's own tools (or a plain `Runner.from_cfg`) train it.
Importing it registers them, as importing any OpenMMLab module registers its classes.
"""

from __future__ import annotations

import importlib

_MODULES = (
    "ablate.losses",
    "ablate.metrics",
    "ablate.models",
    "ablate.hooks",
    "ablate.tracking.hook",
    "ablate.tracking.system",
    "ablate.trial.progress",
    "ablate.search.pruning",
)


def register_all() -> None:
    """Make mmseg importable here and register ablate's losses, metrics, models and hooks."""
    from ablate import compat

    compat.install()
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    for name in _MODULES:
        importlib.import_module(name)


register_all()
