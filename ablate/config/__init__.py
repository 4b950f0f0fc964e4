"""mmseg configs as ablate sees them: loaded from the zoo, budgeted, overridden, hashed."""

from ablate.config.distributed import fit_to_world
from ablate.config.overrides import apply_overrides, check_override_key, iter_problems
from ablate.config.precision import Accelerator, Precision, fit_to_device, request_amp, runner_precision
from ablate.config.resolve import (
    apply_budget,
    config_digest,
    load_base,
    resolve,
    set_data_root,
    use_plain_bn,
)

__all__ = [
    "Accelerator",
    "Precision",
    "apply_budget",
    "apply_overrides",
    "check_override_key",
    "config_digest",
    "fit_to_device",
    "fit_to_world",
    "iter_problems",
    "load_base",
    "request_amp",
    "resolve",
    "runner_precision",
    "set_data_root",
    "use_plain_bn",
]
