"""All MLflow I/O: the store, tag names, typed run records, the writer and the training hooks."""

from ablate.tracking import tags
from ablate.tracking.checkpoints import (
    CheckpointError,
    fetch_artifact,
    fetch_runs_uri,
    fetch_url,
    localize_checkpoints,
    log_checkpoint,
    provides_checkpoint,
    trial_checkpoint,
)
from ablate.tracking.diff import RunDiff, RunLookupError, compare, diff_runs
from ablate.tracking.environment import GitState, git_state, version_tags
from ablate.tracking.inputs import DatasetRecord, dataset_input, datasets_of, log_dataset
from ablate.tracking.node import host_address, node_address
from ablate.tracking.per_image import PER_IMAGE_FILE, ImageScore, PerImageTable, read_table, write_table
from ablate.tracking.records import TrialRun, TuneRun
from ablate.tracking.runs import (
    complete_run,
    end_run,
    find_trial_runs,
    mark_interrupted,
    open_trial_run,
    read_experiment,
    search_all,
    start_parent_run,
)
from ablate.tracking.store import (
    RetryingClient,
    artifact_root,
    client,
    ensure_experiment,
    find_experiment,
    log_files,
    log_metrics,
    log_params,
    log_tags,
    param_items,
    prepare_store,
    store_exists,
)
from ablate.tracking.timing import speed_runs
from ablate.tracking.server import ServerSpec, TrackingServer, check_shared_store, is_shared_store, server_spec
from ablate.tracking.uri import check_tracking_uri, checked_tracking_uri, resolve_tracking_uri, sqlite_path

__all__ = [
    "CheckpointError",
    "DatasetRecord",
    "GitState",
    "ImageScore",
    "PER_IMAGE_FILE",
    "PerImageTable",
    "RetryingClient",
    "RunDiff",
    "RunLookupError",
    "ServerSpec",
    "TrackingServer",
    "TrialRun",
    "TuneRun",
    "artifact_root",
    "check_shared_store",
    "check_tracking_uri",
    "checked_tracking_uri",
    "client",
    "compare",
    "complete_run",
    "dataset_input",
    "datasets_of",
    "diff_runs",
    "end_run",
    "ensure_experiment",
    "fetch_artifact",
    "fetch_runs_uri",
    "fetch_url",
    "find_experiment",
    "find_trial_runs",
    "git_state",
    "host_address",
    "is_shared_store",
    "localize_checkpoints",
    "log_checkpoint",
    "log_dataset",
    "log_files",
    "log_metrics",
    "log_params",
    "log_tags",
    "mark_interrupted",
    "node_address",
    "open_trial_run",
    "param_items",
    "prepare_store",
    "provides_checkpoint",
    "read_experiment",
    "read_table",
    "resolve_tracking_uri",
    "search_all",
    "server_spec",
    "speed_runs",
    "sqlite_path",
    "start_parent_run",
    "store_exists",
    "tags",
    "trial_checkpoint",
    "version_tags",
    "write_table",
]
