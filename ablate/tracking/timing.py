"""Earlier runs that trained like a planned trial, wherever they are in the store.

A model, crop and batch trained in one study says how long it takes in the next one, so the
search spans every experiment; `ablate.study.estimate` turns what they measured into estimates.
"""

from __future__ import annotations

from typing import Any

from ablate.tracking import tags as T
from ablate.tracking.records import FINISHED, TrialRun


def speed_runs(mlflow_client: Any, speed_key: str, limit: int = 50) -> list[TrialRun]:
    """Finished trial runs with this speed key (`ablate.speed_key`), newest first, at most `limit`."""
    experiments = {e.experiment_id: e.name for e in mlflow_client.search_experiments()}
    if not experiments:
        return []
    runs = mlflow_client.search_runs(
        list(experiments),
        filter_string=f"tags.`{T.SPEED_KEY}` = '{speed_key}' and attributes.status = '{FINISHED}'",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    return [TrialRun.from_mlflow(run, experiments.get(run.info.experiment_id, "")) for run in runs]
