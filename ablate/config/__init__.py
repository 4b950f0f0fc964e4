"""mmseg configs as ablate sees them: loaded from the zoo, budgeted, overridden, hashed."""

from ablate.config.distillation import plain_model_config, split_distillation
from ablate.config.distributed import fit_to_world
from ablate.config.overrides import apply_overrides, check_override_key, iter_problems
from ablate.config.precision import Accelerator, Precision, fit_to_device, request_amp, runner_precision
from ablate.config.resolve import (
    add_import,
    apply_budget,
    base_config,
    config_digest,
    load_base,
    set_data_root,
    use_plain_bn,
)

__all__ = [
    "Accelerator",
    "Precision",
    "add_import",
    "apply_budget",
    "apply_overrides",
    "base_config",
    "check_override_key",
    "config_digest",
    "fit_to_device",
    "fit_to_world",
    "iter_problems",
    "load_base",
    "plain_model_config",
    "request_amp",
    "runner_precision",
    "set_data_root",
    "split_distillation",
    "use_plain_bn",
]
