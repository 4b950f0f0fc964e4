"""mmseg configs as ablate sees them: loaded from the zoo, budgeted, overridden, hashed."""

from ablate.config.overrides import apply_overrides, check_override_key, iter_problems
from ablate.config.resolve import (
    apply_budget,
    config_digest,
    load_base,
    resolve,
    set_data_root,
    use_plain_bn,
)

__all__ = [
    "apply_budget",
    "apply_overrides",
    "check_override_key",
    "config_digest",
    "iter_problems",
    "load_base",
    "resolve",
    "set_data_root",
    "use_plain_bn",
]
