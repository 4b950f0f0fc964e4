"""Losses registered in mmseg's MODELS registry for the tricks that need them."""

from ablate.losses.balanced_ce import BalancedCrossEntropyLoss

__all__ = ["BalancedCrossEntropyLoss"]
