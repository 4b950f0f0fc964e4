"""Losses registered in mmseg's MODELS registry for the tricks that need them."""

from ablate.losses.balanced_ce import BalancedCrossEntropyLoss
from ablate.losses.cwd import ChannelWiseDivergence

__all__ = ["BalancedCrossEntropyLoss", "ChannelWiseDivergence"]
