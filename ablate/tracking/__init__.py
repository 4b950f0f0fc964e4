"""The MLflow writer: store resolution, experiment/run bookkeeping and the training hook."""

from ablate.tracking.store import (
    KIND_TAG,
    PARENT_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    artifact_root,
    client,
    ensure_experiment,
    find_trial_runs,
    log_metrics,
    param_items,
    prepare_store,
    resolve_tracking_uri,
)

__all__ = [
    "KIND_TAG",
    "PARENT_TAG",
    "STUDY_TAG",
    "TRIAL_TAG",
    "artifact_root",
    "client",
    "ensure_experiment",
    "find_trial_runs",
    "log_metrics",
    "param_items",
    "prepare_store",
    "resolve_tracking_uri",
]
