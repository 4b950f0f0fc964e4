"""MLflow -> plain records, in one paged search per experiment.

A report over a thousand runs must not make a thousand round trips: everything a table or figure
needs (tags, params, each metric's latest value) comes back with `search_runs`. Only the few
trials shown in the qualitative figure have their artifacts read later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from ablate.errors import AblateError
from ablate.tracking import KIND_TAG, TRIAL_TAG

FINISHED = "FINISHED"
_PAGE = 1000


@dataclass(frozen=True)
class TrialRun:
    """One trial run as the report sees it: tags decoded, metrics at their final values."""

    run_id: str
    experiment: str
    name: str
    trial_id: str
    seed: Optional[int]
    status: str
    shape: str
    rung: Optional[int]
    trick: str
    tricks: tuple[str, ...]
    model: str
    enc_pretrained: bool
    dec_pretrained: bool
    pretrain: bool
    tta: bool
    duration_s: Optional[float]
    failure: str
    optuna_trial: Optional[int]
    optuna_state: str
    start_time: int
    metrics: Mapping[str, float] = field(repr=False)
    params: Mapping[str, str] = field(repr=False)

    def metric(self, key: str) -> float:
        """NaN when not logged, so group means skip it instead of failing."""
        value = self.metrics.get(key)
        return float("nan") if value is None else float(value)

    @property
    def miou(self) -> float:
        return self.metric("mIoU")

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def is_search(self) -> bool:
        """Optuna trials belong to the search section, not to the model table."""
        return self.optuna_trial is not None

    @property
    def dataset(self) -> str:
        return self.params.get("dataset", "").split("@", 1)[0]


@dataclass(frozen=True)
class TuneRun:
    """An `ablate tune` parent run: where its Optuna study lives."""

    run_id: str
    experiment: str
    storage: str
    study_name: str
    status: str
    start_time: int


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
        return [r for r in self.trials if r.finished and not r.pretrain and not r.is_search and not math.isnan(r.miou)]

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
                out.append(Excluded(run, run.failure or ("still running" if run.status == "RUNNING" else run.status.lower())))
            elif math.isnan(run.miou) and not run.pretrain:
                out.append(Excluded(run, "finished without an mIoU metric"))
        return out

    @property
    def profiles(self) -> list[str]:
        return sorted({r.params.get("profile", "") for r in self.table_runs})


def _int(text: Optional[str]) -> Optional[int]:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def _float(text: Optional[str]) -> Optional[float]:
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return None


def _trial(run: Any, experiment: str) -> TrialRun:
    tags: Mapping[str, str] = run.data.tags
    params: Mapping[str, str] = run.data.params
    seed = _int(tags.get("ablate.seed", params.get("seed")))
    return TrialRun(
        run_id=run.info.run_id,
        experiment=experiment,
        name=tags.get("ablate.trial_name") or params.get("trial_name") or run.info.run_name or run.info.run_id,
        trial_id=tags.get(TRIAL_TAG, run.info.run_id),
        seed=seed,
        status=run.info.status,
        shape=tags.get("ablate.shape", "trials"),
        rung=_int(tags.get("ablate.rung")),
        trick=tags.get("ablate.trick", ""),
        tricks=tuple(t for t in tags.get("ablate.tricks", "").split(",") if t),
        model=tags.get("ablate.model") or params.get("model", ""),
        enc_pretrained=tags.get("ablate.enc_pretrained") == "yes",
        dec_pretrained=tags.get("ablate.dec_pretrained") == "yes",
        pretrain="ablate.pretrain" in tags,
        tta=tags.get("ablate.final_eval") == "tta",
        duration_s=_float(tags.get("ablate.duration_s")),
        failure=tags.get("ablate.failure", ""),
        optuna_trial=_int(tags.get("ablate.optuna_trial")),
        optuna_state=tags.get("ablate.optuna_state", ""),
        start_time=int(run.info.start_time or 0),
        metrics=dict(run.data.metrics),
        params=dict(params),
    )


def _tune(run: Any, experiment: str) -> TuneRun:
    tags = run.data.tags
    return TuneRun(
        run_id=run.info.run_id,
        experiment=experiment,
        storage=tags.get("ablate.optuna_storage", ""),
        study_name=tags.get("ablate.optuna_study", ""),
        status=run.info.status,
        start_time=int(run.info.start_time or 0),
    )


def search_all(mlflow_client: Any, experiment_id: str) -> list[Any]:
    """Every active run of an experiment, a page of 1000 at a time."""
    runs: list[Any] = []
    token: Optional[str] = None
    while True:
        page = mlflow_client.search_runs([experiment_id], max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def deduplicate(trials: Iterable[TrialRun]) -> tuple[list[TrialRun], int]:
    """One run per (experiment, trial id): the newest finished one, else the newest attempt.

    `--rerun` and resumed trials leave several runs behind; averaging them would count one seed
    twice, and a failure that a later attempt fixed is not a failure.
    """
    best: dict[tuple[str, str], TrialRun] = {}
    total = 0
    for run in trials:
        total += 1
        key = (run.experiment, run.trial_id)
        held = best.get(key)
        if held is None or (run.finished, run.start_time) > (held.finished, held.start_time):
            best[key] = run
    kept = sorted(best.values(), key=lambda r: (r.experiment, r.start_time, r.run_id))
    return kept, total - len(kept)


def _check_store(uri: str) -> None:
    """A missing sqlite file would be created empty by MLflow; say what is wrong instead."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.exists():
            raise AblateError(f"{path}: no MLflow store there; run `ablate run STUDY.yaml` first or pass --tracking-uri")


def collect(uri: str, experiments: list[str], profile: Optional[str] = None, mlflow_client: Any = None) -> Collection:
    """Fetch every named experiment; raises AblateError when one is unknown or has nothing finished."""
    from ablate import tracking

    if not experiments:
        raise AblateError("no experiment to report on: give a study file or --experiment NAME")
    _check_store(uri)
    mlflow_client = mlflow_client or tracking.client(uri)
    trials: list[TrialRun] = []
    tunes: list[TuneRun] = []
    for name in experiments:
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            known = sorted(e.name for e in mlflow_client.search_experiments() if e.name != "Default")
            hint = f" (known: {', '.join(known)})" if known else ""
            raise AblateError(f"{name}: no such experiment in {uri}{hint}; run `ablate run STUDY.yaml` first")
        found = []
        for run in search_all(mlflow_client, experiment.experiment_id):
            kind = run.data.tags.get(KIND_TAG)
            if kind == "trial":
                trial = _trial(run, name)
                if profile is None or trial.params.get("profile") == profile:
                    found.append(trial)
            elif kind == "tune":
                tunes.append(_tune(run, name))
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
            "experiment": run.experiment, "trial": run.name, "trial_id": run.trial_id, "seed": run.seed,
            "status": run.status, "shape": run.shape, "rung": run.rung, "trick": run.trick,
            "model": run.model, "enc_pretrained": run.enc_pretrained, "dec_pretrained": run.dec_pretrained,
            "pretrain": run.pretrain, "tta": run.tta, "duration_s": run.duration_s, "failure": run.failure,
            "optuna_trial": run.optuna_trial, "optuna_state": run.optuna_state, "run_id": run.run_id,
        }
        row.update(run.metrics)
        row.update({f"param.{k}": v for k, v in run.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)
