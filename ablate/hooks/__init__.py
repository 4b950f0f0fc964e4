"""mmengine hooks for what a trial does around training: complexity, final evaluation,
predictions and the per-image table, training pressure, `best.pth`, the non-finite-loss
guard, the precision trained in, the measured latency and the training speed. Importing registers them in `HOOKS`."""

from ablate.hooks.checkpoint import BestCheckpointHook
from ablate.hooks.complexity import ComplexityHook
from ablate.hooks.distributed import SyncNormStatsHook
from ablate.hooks.evaluation import PREDICTIONS_DIR, WORST_DIR, FinalEvalHook, PredictionHook, colorize
from ablate.hooks.guard import NonFiniteLossError, NonFiniteLossHook
from ablate.hooks.latency import LatencyHook
from ablate.hooks.precision import PrecisionHook
from ablate.hooks.pressure import TrainingPressureHook
from ablate.hooks.speed import SpeedHook
from ablate.hooks.stored_checkpoint import StoredCheckpointHook

__all__ = [
    "PREDICTIONS_DIR",
    "WORST_DIR",
    "BestCheckpointHook",
    "ComplexityHook",
    "FinalEvalHook",
    "LatencyHook",
    "NonFiniteLossError",
    "NonFiniteLossHook",
    "PredictionHook",
    "PrecisionHook",
    "SpeedHook",
    "StoredCheckpointHook",
    "SyncNormStatsHook",
    "TrainingPressureHook",
    "colorize",
]
