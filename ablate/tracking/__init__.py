"""All MLflow I/O: the store, tag names, typed run records, the writer and the training hooks."""

from ablate.tracking import tags
from ablate.tracking.checkpoints import (
    CheckpointError,
    fetch_artifact,
    fetch_runs_uri,
    fetch_url,
    localize_checkpoints,
    log_checkpoint,
    trial_checkpoint,
)
from ablate.tracking.credentials import Credentials, check_access, use_credentials
from ablate.tracking.diff import RunDiff, RunLookupError, compare, diff_runs
from ablate.tracking.environment import GitState, git_state, version_tags
from ablate.tracking.failures import TrackingUnavailable
from ablate.tracking.inputs import DatasetRecord, dataset_input, datasets_of
from ablate.tracking.node import host_address, node_address
from ablate.tracking.records import TrialRun, TuneRun
from ablate.tracking.runs import PlannedTrial
from ablate.tracking.server import ServerSpec, TrackingServer, check_shared_store, is_shared_store, server_spec
from ablate.tracking.store import ArtifactEntry, RunStore, artifact_root, param_items, store_exists
from ablate.tracking.uri import check_tracking_uri, checked_tracking_uri, resolve_tracking_uri, sqlite_path

__all__ = [
    "ArtifactEntry",
    "CheckpointError",
    "Credentials",
    "DatasetRecord",
    "GitState",
    "PlannedTrial",
    "RunDiff",
    "RunLookupError",
    "RunStore",
    "ServerSpec",
    "TrackingServer",
    "TrackingUnavailable",
    "TrialRun",
    "TuneRun",
    "artifact_root",
    "check_access",
    "check_shared_store",
    "check_tracking_uri",
    "checked_tracking_uri",
    "compare",
    "dataset_input",
    "datasets_of",
    "diff_runs",
    "fetch_artifact",
    "fetch_runs_uri",
    "fetch_url",
    "git_state",
    "host_address",
    "is_shared_store",
    "localize_checkpoints",
    "log_checkpoint",
    "node_address",
    "param_items",
    "resolve_tracking_uri",
    "server_spec",
    "sqlite_path",
    "store_exists",
    "tags",
    "trial_checkpoint",
    "use_credentials",
    "version_tags",
]
