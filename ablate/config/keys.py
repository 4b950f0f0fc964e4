"""Every key ablate adds to an mmseg config, named once.

mmseg and mmengine ignore top-level keys they do not know, so ablate carries its own requests in
the trial's config (and so in its dumped `config.py` and its id) under these names; the code
that writes a key and the code that reads it both import it from here.
"""

from __future__ import annotations

# top level
AMP = "ablate_amp"  # `budget.amp` as asked (bf16 | fp16; absent: off), turned into AmpOptimWrapper on a worker
FINAL_EVAL = "ablate_final_eval"  # "tta": the test-time-augmented evaluation after training is the final one
FINAL_EVAL_TTA = "tta"
SYNC_BN_FALLBACK = "ablate_sync_bn_fallback"  # why a DDP worker's config replaced SyncBN (CPU workers)

# `custom_imports`: what a dumped config imports so that a plain `Runner.from_cfg` builds it too
REGISTRY_MODULE = "ablate.registry"  # every hook, metric, loss and model ablate registers
MODELS_MODULE = "ablate.models"  # the models alone (a distillation student)
LOSSES_MODULE = "ablate.losses"  # the losses alone (the class-balanced CE)
METRICS_MODULE = "ablate.metrics"  # the per-class IoU metric alone

# `model` of a distillation student (`distill` trick, `ablate.models.distiller`)
DISTILLER = "DistillEncoderDecoder"
DISTILL_KEYS = ("teacher", "distill_loss", "distill_features", "feature_loss")
