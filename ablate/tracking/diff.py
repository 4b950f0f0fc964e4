"""What differs between two trial runs: resolved config, dataset, environment, and their metrics.

Finding the runs (`resolve_run`) and reading their config artifacts touch the store; `diff_runs`
is a pure function of what was read, so the comparison itself is testable without MLflow.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.errors import AblateError
from ablate.tracking import tags as T
from ablate.tracking.failures import TrackingUnavailable
from ablate.tracking.records import TrialRun
from ablate.tracking.store import RunStore

CONFIG_FILE = "config.py"
# Keys of a trial's config.py that only say where and into which run it was written.
RUNTIME_KEYS = frozenset({"work_dir", "resume"})
RUNTIME_LEAVES = frozenset({"run_id", "tracking_uri"})
HEADLINE = ("mIoU", "mAcc", "aAcc", "best_mIoU", "ss_mIoU", "flops_g", "params_m")
SYSTEM_PREFIX = "system/"  # MLflow's load samples: not results, left out of the metrics table
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_SHOWN = 5


class RunLookupError(AblateError):
    """A run reference that names no trial run, or more than one."""


@dataclass(frozen=True)
class Row:
    key: str
    a: Any
    b: Any

    @property
    def same(self) -> bool:
        return _same(self.a, self.b)

    @property
    def delta(self) -> float | None:
        """b - a for two numbers, else None."""
        if isinstance(self.a, (int, float)) and isinstance(self.b, (int, float)):
            return float(self.b) - float(self.a)
        return None

    def to_dict(self, with_delta: bool = False) -> dict[str, Any]:
        out = {"key": self.key, "a": _plain(self.a), "b": _plain(self.b)}
        if with_delta:
            out["delta"] = _plain(self.delta)
        return out


@dataclass(frozen=True)
class Section:
    """All compared keys of one part; `differing` is what the report shows."""

    rows: tuple[Row, ...] = ()
    note: str = ""

    @property
    def differing(self) -> list[Row]:
        return [r for r in self.rows if not r.same]

    @property
    def identical(self) -> int:
        return sum(r.same for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "differing": [r.to_dict() for r in self.differing],
            "identical": self.identical,
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class RunDiff:
    a: TrialRun
    b: TrialRun
    config: Section
    dataset: Section
    environment: Section
    metrics: tuple[Row, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": identity(self.a),
            "b": identity(self.b),
            "config": self.config.to_dict(),
            "dataset": self.dataset.to_dict(),
            "environment": self.environment.to_dict(),
            "metrics": [r.to_dict(with_delta=True) for r in self.metrics],
        }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _plain(value: Any) -> Any:
    """JSON-safe: NaN becomes None (JSON has no NaN)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def identity(run: TrialRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "experiment": run.experiment,
        "trial_id": run.trial_id,
        "name": run.name,
        "seed": run.seed,
        "status": run.status,
    }


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys (`model.decode_head.channels`, `custom_hooks[2].interval`); a list of plain
    values (a crop size, a scale) stays one value."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out if out or not prefix else {prefix: {}}
    if isinstance(node, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in node):
        out = {}
        for index, value in enumerate(node):
            out.update(flatten(value, f"{prefix}[{index}]"))
        return out
    return {prefix: list(node) if isinstance(node, tuple) else node}


def _runtime_only(key: str) -> bool:
    leaf = re.split(r"[.\[]", key)[-1]
    return key in RUNTIME_KEYS or leaf in RUNTIME_LEAVES


def _rows(a: dict[str, Any], b: dict[str, Any]) -> tuple[Row, ...]:
    return tuple(Row(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)))


def config_section(a: dict[str, Any] | None, b: dict[str, Any] | None) -> Section:
    if a is None or b is None:
        missing = " and ".join(side for side, cfg in (("A", a), ("B", b)) if cfg is None)
        return Section(note=f"no {CONFIG_FILE} logged for run {missing}; configs not compared")
    flat_a = {k: v for k, v in flatten(a).items() if not _runtime_only(k)}
    flat_b = {k: v for k, v in flatten(b).items() if not _runtime_only(k)}
    return Section(_rows(flat_a, flat_b))


def dataset_section(a: TrialRun, b: TrialRun) -> Section:
    if not a.datasets and not b.datasets:
        return Section(note="no dataset input logged for either run")
    flat_a = a.datasets[0].flat() if a.datasets else {}
    flat_b = b.datasets[0].flat() if b.datasets else {}
    return Section(_rows(flat_a, flat_b))


def _metric_order(key: str) -> tuple[int, str]:
    """Headline numbers, then the rest, then per-class IoU, then per-class accuracy."""
    if key in HEADLINE:
        return (0, f"{HEADLINE.index(key):03d}")
    return (2 if key.startswith("IoU.") else 3 if key.startswith("Acc.") else 1, key)


def metric_rows(a: TrialRun, b: TrialRun) -> tuple[Row, ...]:
    """Final values of every result metric, and the trial's wall time."""
    keys = sorted((k for k in set(a.metrics) | set(b.metrics) if not k.startswith(SYSTEM_PREFIX)), key=_metric_order)
    rows = [Row(k, a.metrics.get(k), b.metrics.get(k)) for k in keys]
    if a.duration_s is not None or b.duration_s is not None:
        rows.append(Row("duration_s", a.duration_s, b.duration_s))
    return tuple(rows)


def diff_runs(
    a_run: Any,
    b_run: Any,
    config_a: dict[str, Any] | None,
    config_b: dict[str, Any] | None,
    experiments: dict[str, str] | None = None,
) -> RunDiff:
    """The comparison of two MLflow runs and their loaded configs (None: not logged)."""
    names = experiments or {}
    a = TrialRun.from_mlflow(a_run, names.get(a_run.info.experiment_id, ""))
    b = TrialRun.from_mlflow(b_run, names.get(b_run.info.experiment_id, ""))
    return RunDiff(
        a=a,
        b=b,
        config=config_section(config_a, config_b),
        dataset=dataset_section(a, b),
        environment=Section(_rows(a.environment, b.environment)),
        metrics=metric_rows(a, b),
    )


def load_config(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """A run's logged config.py as a plain dict (its custom imports are not imported)."""
    from mmengine.config import Config

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = store.download_artifact(run_id, CONFIG_FILE, Path(tmp))
        except TrackingUnavailable:
            raise
        except Exception:  # MLflow raises several types for a missing artifact
            return None
        try:
            return Config.fromfile(local, import_custom_modules=False).to_dict()
        except Exception as exc:  # mmengine raises many types for a broken config
            raise RunLookupError(f"run {run_id}: its {CONFIG_FILE} cannot be read ({exc})") from None


def _trial_filter(key: str, value: str) -> str:
    return f"{key} = '{value}' and tags.`{T.KIND}` = '{T.Kind.TRIAL.value}'"


def _newest_useful(runs: list[Any]) -> Any:
    """Of several runs of one trial id (reruns, retries), the newest finished one, else the newest."""
    ordered = sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True)
    return next((r for r in ordered if r.info.status == "FINISHED"), ordered[0])


def resolve_run(store: RunStore, ref: str, experiment_ids: list[str], scope: str) -> Any:
    """A trial run named by run id, trial id, trial name or run name (`<name>-s<seed>`).

    A name shared by several trials (seeds, studies) is refused with the candidates listed, so
    a comparison is never made against a run the user did not mean.
    """
    if _RUN_ID.fullmatch(ref):
        run = store.get_run(ref)
        if run is not None:
            return run  # else not a run id after all: try the other readings
    if "'" not in ref and experiment_ids:
        for key, what in (
            (f"tags.`{T.TRIAL_ID}`", "trial id"),
            (f"tags.`{T.TRIAL_NAME}`", "trial name"),
            ("attributes.run_name", "run name"),
        ):
            runs = store.search_runs(experiment_ids, _trial_filter(key, ref), max_results=1000)
            if not runs:
                continue
            by_trial: dict[tuple[str, str], list[Any]] = {}
            for run in runs:
                by_trial.setdefault((run.info.experiment_id, run.data.tags.get(T.TRIAL_ID, "")), []).append(run)
            if len(by_trial) == 1:
                return _newest_useful(next(iter(by_trial.values())))
            shown = ", ".join(
                f"{run.info.run_name} (trial {tid}, run {run.info.run_id})"
                for (_, tid), group in list(by_trial.items())[:_SHOWN]
                for run in [_newest_useful(group)]
            )
            more = f" and {len(by_trial) - _SHOWN} more" if len(by_trial) > _SHOWN else ""
            raise RunLookupError(
                f"'{ref}' is the {what} of {len(by_trial)} trials in {scope}: {shown}{more}; "
                "pass a trial id or run id, or --experiment to narrow it"
            )
    raise RunLookupError(
        f"'{ref}': no trial run with this run id, trial id, trial name or run name in {scope}; "
        "check `ablate plan` or the MLflow UI for ids, and --tracking-uri / --experiment"
    )


def compare(store: RunStore, ref_a: str, ref_b: str, experiment: str | None = None) -> RunDiff:
    """Resolve two references (in one experiment, or across all) and compare the runs."""
    experiments = store.experiments()
    if experiment is not None:
        ids = [i for i, name in experiments.items() if name == experiment]
        if not ids:
            raise RunLookupError(
                f"--experiment '{experiment}': no such experiment in this store; "
                "check the name (a study's `name:`) and --tracking-uri"
            )
        scope = f"experiment '{experiment}'"
    else:
        ids, scope = list(experiments), "any experiment"
    a_run = resolve_run(store, ref_a, ids, scope)
    b_run = resolve_run(store, ref_b, ids, scope)
    for ref, run in ((ref_a, a_run), (ref_b, b_run)):
        if run.data.tags.get(T.KIND) != T.Kind.TRIAL.value:
            raise RunLookupError(
                f"'{ref}': run {run.info.run_id} is not a trial run "
                f"(kind '{run.data.tags.get(T.KIND, 'none')}'); pass a trial's run"
            )
    return diff_runs(
        a_run, b_run, load_config(store, a_run.info.run_id), load_config(store, b_run.info.run_id), experiments
    )
