"""Every MLflow tag and run kind ablate writes, named once.

The trial writer, the study/tune drivers and the report all import these, so a renamed tag
changes both sides at once instead of silently emptying a table.
"""

from __future__ import annotations

import enum

PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag

# identity
KIND = "ablate.kind"
STUDY = "ablate.study"
TRIAL_ID = "ablate.trial_id"
TRIAL_NAME = "ablate.trial_name"
ALIASES = "ablate.aliases"  # other names of the same trial id in one study
SEED = "ablate.seed"
PROFILE = "ablate.profile"
STUDY_FILE = "ablate.study_file"

# what the trial is
SHAPE = "ablate.shape"
RUNG = "ablate.rung"
TRICK = "ablate.trick"
TRICKS = "ablate.tricks"
MODEL = "ablate.model"
ENC_PRETRAINED = "ablate.enc_pretrained"
DEC_PRETRAINED = "ablate.dec_pretrained"
PRETRAIN = "ablate.pretrain"
TEACHER = "ablate.teacher"
# checkpoints other trials load (ablate.tracking.checkpoints): they travel through the artifact store
PROVIDES = "ablate.provides"  # "checkpoint": later trials of the study load this trial's best.pth
CHECKPOINT = "ablate.checkpoint"  # the artifact path of the stored checkpoint, e.g. checkpoints/best.pth
CHECKPOINT_SHA256 = "ablate.checkpoint_sha256"

# how it ran
DEVICES = "ablate.devices"
GPU_IDS = "ablate.gpu_ids"
NODE = "ablate.node"  # the IP address of the (Ray) node the trial trained on
WORLD_SIZE = "ablate.world_size"  # processes that trained it together (DDP workers); 1 for one process
TOTAL_BATCH = "ablate.total_batch"  # images per optimizer step over all of them (batch_size x world size)
SYNC_BN_FALLBACK = "ablate.sync_bn_fallback"  # why SyncBN was replaced (CPU workers), if it was
ATTEMPT = "ablate.attempt"
SLURM_JOB_ID = "ablate.slurm_job_id"  # the Slurm job that trains it (--dispatcher slurm), its latest
SLURM_RESTARTS = "ablate.slurm_restarts"  # times Slurm requeued that job (preemption, time limit, scontrol requeue)
DURATION_S = "ablate.duration_s"
FINAL_EVAL = "ablate.final_eval"
FAILURE = "ablate.failure"
PRUNED = "ablate.pruned"
# precision and speed (ablate.config.precision, ablate.hooks.latency)
AMP = "ablate.amp"  # the precision the study asked for: bf16 | fp16 | off
PRECISION = "ablate.precision"  # the one the trial trained (and was timed) in: bf16 | fp16 | fp32
AMP_FALLBACK = "ablate.amp_fallback"  # why the request was not honoured, e.g. no accelerator
LATENCY_DEVICE = "ablate.latency_device"  # what latency_ms was measured on, e.g. the GPU's name
LATENCY_ERROR = "ablate.latency_error"  # why a trained trial has no latency
# time: what a trial was expected to take (written when its run is opened) and what it ran on
SPEED_KEY = "ablate.speed_key"  # model config, crop, batch and precision request: trials that train alike
DEVICE_KIND = "ablate.device_kind"  # the training device: the GPU's name, or cpu:<model> (<n> threads)
EST_TIME_S = "ablate.est_time_s"  # the estimated wall time of the trial, seconds
EST_SOURCE = "ablate.est_source"  # where that estimate came from: store | calibrated | rough
# `seeds: auto` (on the study's parent run)
SEED_ROUNDS = "ablate.seed_rounds"  # how many rounds ran
SEEDS_RUN = "ablate.seeds"  # the seeds the study ended with, e.g. "0,1,2"
SEED_STOP = "ablate.seed_stop"  # why no further round: narrow | max | failed

# reproducibility: where the study came from and what it ran on (`ablate diff` compares these)
GIT_COMMIT = "ablate.git_commit"
GIT_DIRTY = "ablate.git_dirty"  # "true" when tracked files differ from the commit
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own, shown in its UI
DETERMINISTIC = "ablate.deterministic"  # the config's randomness.deterministic
DETERMINISTIC_ALGORITHMS = "ablate.deterministic_algorithms"  # torch.are_deterministic_algorithms_enabled()
CUDNN_BENCHMARK = "ablate.cudnn_benchmark"
CUDNN_DETERMINISTIC = "ablate.cudnn_deterministic"
GPU = "ablate.gpu"  # the model of the GPU the trial trained on, or "none"
VERSION_PREFIX = "ablate.version."  # + python, torch, cuda, cudnn, mmseg, mmengine, mmcv, ablate, mlflow
ENVIRONMENT = (
    GIT_COMMIT,
    GIT_DIRTY,
    DETERMINISTIC,
    DETERMINISTIC_ALGORITHMS,
    CUDNN_BENCHMARK,
    CUDNN_DETERMINISTIC,
    GPU,
    DEVICES,
)
DATASET_CONTEXT = "mlflow.data.context"  # MLflow's input tag: what a dataset input was used for

# search
OPTUNA_STUDY = "ablate.optuna_study"
OPTUNA_TRIAL = "ablate.optuna_trial"
OPTUNA_STATE = "ablate.optuna_state"
OPTUNA_STORAGE = "ablate.optuna_storage"
OPTUNA_NOTE = "ablate.optuna_note"  # why a trained trial was told FAIL, e.g. an objective it did not log


class Kind(str, enum.Enum):
    """The three kinds of run in a study's experiment."""

    STUDY = "study"  # one per `ablate run`: the parent of its trials
    TUNE = "tune"  # one per `ablate tune`: the parent of its search trials
    TRIAL = "trial"


# Values of SHAPE
SHAPE_TRIALS, SHAPE_LADDER, SHAPE_LOO, SHAPE_ZOO, SHAPE_PRETRAIN, SHAPE_SEARCH = (
    "trials",
    "ladder",
    "leave_one_out",
    "zoo",
    "pretrain",
    "search",
)
