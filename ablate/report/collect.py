"""MLflow -> plain records, in one paged search per experiment.

A report over a thousand runs must not make a thousand round trips: everything a table or figure
needs (tags, params, each metric's latest value) comes back with `search_runs`. Only the few
trials shown in the qualitative figure have their artifacts read later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ablate import tracking
from ablate.errors import AblateError
from ablate.tracking.records import TrialRun, TuneRun, deduplicate

__all__ = ["Collection", "Excluded", "TrialRun", "TuneRun", "collect", "deduplicate", "runs_frame"]


@dataclass(frozen=True)
class Excluded:
    """A run kept out of the tables, with the reason a reader needs to follow it up."""

    run: TrialRun
    reason: str


@dataclass
class Collection:
    """Everything fetched for one report: trial runs (deduplicated per trial id) and tune parents."""

    uri: str
    experiments: list[str]
    trials: list[TrialRun]
    tunes: list[TuneRun]
    superseded: int = 0  # older runs of a trial id that a newer or finished one replaces

    @property
    def table_runs(self) -> list[TrialRun]:
        """Finished, non-pretraining, non-search trials that logged an mIoU."""
        return [r for r in self.trials if r.reportable]

    @property
    def search_runs(self) -> list[TrialRun]:
        return [r for r in self.trials if r.is_search]

    @property
    def excluded(self) -> list[Excluded]:
        """Failed, running or metric-less trials: listed in the report, never averaged."""
        out = []
        for run in self.trials:
            if run.is_search:
                continue
            if not run.finished:
                out.append(
                    Excluded(run, run.failure or ("still running" if run.status == "RUNNING" else run.status.lower()))
                )
            elif math.isnan(run.miou) and not run.pretrain:
                out.append(Excluded(run, "finished without an mIoU metric"))
        return out

    @property
    def profiles(self) -> list[str]:
        return sorted({r.params.get("profile", "") for r in self.table_runs})


def _check_store(uri: str) -> None:
    """A missing sqlite file would be created empty by MLflow; say what is wrong instead."""
    if not tracking.store_exists(uri):
        raise AblateError(
            f"{tracking.sqlite_path(uri)}: no MLflow store there; "
            "run `ablate run STUDY.yaml` first or pass --tracking-uri"
        )


def collect(uri: str, experiments: list[str], profile: str | None = None) -> Collection:
    """Fetch every named experiment; raises AblateError when one is unknown or has nothing finished."""
    if not experiments:
        raise AblateError("no experiment to report on: give a study file or --experiment NAME")
    _check_store(uri)
    store = tracking.RunStore.open(uri)
    trials: list[TrialRun] = []
    tunes: list[TuneRun] = []
    for name in experiments:
        experiment_id = store.find_experiment(name)
        if experiment_id is None:
            known = sorted(e for e in store.experiments().values() if e != "Default")
            hint = f" (known: {', '.join(known)})" if known else ""
            raise AblateError(f"{name}: no such experiment in {uri}{hint}; run `ablate run STUDY.yaml` first")
        runs, tune_runs = store.read_experiment(experiment_id, name)
        found = [r for r in runs if profile is None or r.params.get("profile") == profile]
        tunes.extend(tune_runs)
        if not any(r.finished for r in found):
            where = f" for profile {profile}" if profile else ""
            raise AblateError(f"{name}: no finished trials{where} in {uri}; run `ablate run STUDY.yaml` first")
        trials.extend(found)
    kept, superseded = deduplicate(trials)
    return Collection(uri, list(experiments), kept, tunes, superseded)


def runs_frame(collection: Collection) -> Any:
    """Every trial run as one flat pandas table (tags as columns, final metrics, params), for runs.csv."""
    import pandas as pd

    rows = []
    for run in collection.trials:
        row: dict[str, Any] = {
            "experiment": run.experiment,
            "trial": run.name,
            "trial_id": run.trial_id,
            "seed": run.seed,
            "status": run.status,
            "shape": run.shape,
            "rung": run.rung,
            "trick": run.trick,
            "model": run.model,
            "enc_pretrained": run.enc_pretrained,
            "dec_pretrained": run.dec_pretrained,
            "pretrain": run.pretrain,
            "tta": run.tta,
            "duration_s": run.duration_s,
            "failure": run.failure,
            "optuna_trial": run.optuna_trial,
            "optuna_state": run.optuna_state,
            "run_id": run.run_id,
        }
        row.update(run.metrics)
        row.update({f"param.{k}": v for k, v in run.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)
