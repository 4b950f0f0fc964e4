"""The tricks of the paper's ladder, registered by name; defaults are the paper's values."""

from ablate.tricks import aux_head, class_balanced, distill, multiscale_test, ohem, poly_lr, transfer  # noqa: F401  (register)
from ablate.tricks.base import TRICKS, StudyEntries, Trick, TrickContext, TrickParams, register_trick
from ablate.tricks.class_balanced import effective_number_weights
from ablate.tricks.distill import DistillParams
from ablate.tricks.ohem import scaled_min_kept

__all__ = [
    "TRICKS",
    "DistillParams",
    "StudyEntries",
    "Trick",
    "TrickContext",
    "TrickParams",
    "effective_number_weights",
    "register_trick",
    "scaled_min_kept",
]
