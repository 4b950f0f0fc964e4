"""mmengine hooks for what a trial does around training: complexity, final evaluation,
predictions, `best.pth` and the non-finite-loss guard. Importing registers them in `HOOKS`."""

from ablate.hooks.checkpoint import BEST_CHECKPOINT, BestCheckpointHook, link_or_copy
from ablate.hooks.complexity import ComplexityHook
from ablate.hooks.evaluation import PREDICTIONS_DIR, FinalEvalHook, PredictionHook, colorize
from ablate.hooks.guard import NonFiniteLossError, NonFiniteLossHook

__all__ = [
    "BEST_CHECKPOINT",
    "PREDICTIONS_DIR",
    "BestCheckpointHook",
    "ComplexityHook",
    "FinalEvalHook",
    "NonFiniteLossError",
    "NonFiniteLossHook",
    "PredictionHook",
    "colorize",
    "link_or_copy",
]
