"""The `ablate plan` command: every trial a run would train, what it costs and how long it takes.

Nothing is written (no store, no data, no work dirs), except the probe cache when `--calibrate`
asks for probes of this machine. Estimates follow `ablate.study.estimate`: earlier runs in the
store, else a probe, else FLOPs (marked rough).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ablate.cli.console import err, out
from ablate.cli.login import credentials_option
from ablate.cli.slurm import ACCOUNT, PARTITION, QOS, TIME, sbatch_lines, slurm_block
from ablate.cli.trials import DispatcherKind
from ablate.errors import AblateError
from ablate.tracking import tags as T
from ablate.util.devices import visible_gpus
from ablate.util.text import duration


def flop_text(gflop: float) -> str:
    for unit, scale in (("PFLOP", 1e6), ("TFLOP", 1e3)):
        if gflop >= scale:
            return f"{gflop / scale:,.1f} {unit}"
    return f"{gflop:,.1f} GFLOP"


def _default_slots(device: str, here: str, resources: Any) -> int:
    """Trials at once: `max_concurrent`, else this machine's GPUs / GPUs per trial when the
    estimate is for this machine's GPU, else one (a CPU trains one trial at a time)."""
    if resources.max_concurrent:
        return int(resources.max_concurrent)
    from ablate.analysis.speed import device_matches
    from ablate.study.estimate import is_gpu

    if is_gpu(device) and device_matches(here, device) and resources.gpus_per_trial > 0:
        return max(1, int(visible_gpus() / resources.gpus_per_trial))
    return 1


def _calibrate(trials: list, estimator: Any) -> list[dict[str, Any]]:
    from ablate.study.estimate import calibrate

    done = []
    for found in calibrate(trials, estimator):
        if found.probe is None:
            err.print(
                f"calibrate {found.trial}: not measured ({found.error}); its estimate stays as it was",
                markup=False,
                highlight=False,
            )
            done.append({"speed_key": found.speed_key, "trial": found.trial, "error": found.error})
            continue
        p = found.probe
        err.print(
            f"calibrate {found.trial}: {p.s_per_iter:.4g} s per training step ({p.steps} timed), "
            f"{p.eval_s_per_image:.4g} s per evaluated image, {p.build_s:.2g} s to build, on {p.device}",
            markup=False,
            highlight=False,
        )
        done.append({"speed_key": found.speed_key, "trial": found.trial, **p.to_dict()})
    return done


def plan_command(
    study_file: Path = typer.Argument(..., help="Study YAML."),
    profile: str | None = typer.Option(None, "--profile"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri"),
    credentials: Path | None = credentials_option(),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable, with each trial's resolved overrides."),
    cost: bool = typer.Option(
        True,
        "--cost/--no-cost",
        help="Estimate each trial's cost (FLOPs x iters x batch); "
        "the first estimate of a large model builds it, seconds to minutes on a CPU.",
    ),
    calibrate: bool = typer.Option(
        False,
        "--calibrate",
        help="Time a few training steps of every model the store "
        "has no earlier run of, on this machine, and keep the result for later plans.",
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        help="Estimate for this kind of device, by any part of its name (e.g. H100); default: this machine's.",
    ),
    slots: int | None = typer.Option(
        None,
        "--slots",
        min=1,
        help="Trials at once for the study's wall time (default: "
        "resources.max_concurrent, else this machine's GPUs per trial, else 1).",
    ),
    dispatcher_kind: DispatcherKind = typer.Option(
        DispatcherKind.AUTO, "--dispatcher", help="slurm: also show each trial's sbatch options (its job's resources)."
    ),
    partition: str | None = PARTITION,
    account: str | None = ACCOUNT,
    qos: str | None = QOS,
    time_limit: str | None = TIME,
) -> None:
    """Print every trial (id, rung/model, seed, dependencies, cost, estimated time, cached/pending); write nothing."""
    from ablate import study as studies
    from ablate import tracking
    from ablate.analysis.speed import device_matches, this_device
    from ablate.study.estimate import Estimator, makespan
    from ablate.tracking.uri import checked_tracking_uri

    loaded = studies.load_study(study_file, profile)
    uri = checked_tracking_uri(tracking_uri, credentials)
    here = this_device()
    target = device or here
    if calibrate and not device_matches(here, target):
        raise AblateError(
            f"--calibrate times this machine ({here}), not '{device}'; drop --device, or plan with "
            f"--calibrate on a machine with that device"
        )
    slurm = slurm_block(loaded.spec, partition=partition, account=account, qos=qos, time=time_limit)
    datasets = studies.data_plans(loaded)
    trials = studies.plan_trials(loaded, runs_dir, generate_data=False, with_cost=cost)
    sbatch = sbatch_lines(trials, slurm, loaded.spec.resources) if dispatcher_kind is DispatcherKind.SLURM else {}
    known = [t for t in trials if studies.id_known(t.trial_id)]
    cached = studies.cached_results(loaded.name, known, uri) if tracking.store_exists(uri) else {}
    resources = loaded.spec.resources
    estimator = Estimator(uri, target, resources.gpus_per_trial)
    calibrated = _calibrate(trials, estimator) if calibrate else []
    estimates = [estimator.estimate(t) for t in trials]
    names = {t.trial_id: t.name for t in trials}
    rows = []
    for t, est in zip(trials, estimates):
        has_id = studies.id_known(t.trial_id)
        rows.append(
            {
                "trial_id": t.trial_id if has_id else None,
                "name": t.name,
                "seed": t.seed,
                "shape": t.tags.get(T.SHAPE),
                "rung": t.tags.get(T.RUNG),
                "model": t.tags.get(T.MODEL),
                "tricks": [x for x in t.tags.get(T.TRICKS, "").split(",") if x],
                "depends_on": [names.get(d, d) for d in t.depends_on],
                "cost_gflop": t.cost if cost else None,
                "est_time_s": est.seconds,
                "est_source": est.source or None,
                "est_basis": est.basis,
                "gpu_hours": est.gpu_hours,
                "status": "cached" if t.trial_id in cached else "pending",
                "work_dir": str(t.work_dir) if has_id else None,
                "resolved_overrides": t.resolved_overrides,
                **({"sbatch": sbatch[t.name]} if sbatch else {}),
            }
        )
    pending = [t for t in trials if t.trial_id not in cached]
    seconds = {e.trial_id: e.seconds for e in estimates if e.seconds is not None}
    parallel = slots or _default_slots(target, here, resources)
    once = {e.trial_id: e for e in estimates if e.trial_id not in cached}  # names sharing an id train once
    sources = {s: sum(1 for e in once.values() if e.source == s) for s in ("store", "calibrated", "rough")}
    total: dict[str, Any] = {
        "device": target,
        "slots": parallel,
        "pending_trials": len(once),
        "wall_s": makespan(pending, seconds, parallel),
        "trial_s": sum(e.seconds or 0.0 for e in once.values()),
        "gpu_hours": sum(e.gpu_hours or 0.0 for e in once.values()),
        "sources": sources,
        "unknown": sum(1 for e in once.values() if e.seconds is None),
        "rough": sources["rough"] > 0,
    }
    auto = loaded.spec.auto_seeds
    seeds: dict[str, Any] = {"planned": loaded.spec.seed_list, "auto": auto.model_dump() if auto is not None else None}
    if auto is not None:  # what one more round adds: one seed of every seeded design
        first = loaded.spec.seed_list[0]
        total["per_extra_seed_s"] = sum(
            e.seconds or 0.0 for t, e in zip(trials, estimates) if t.seed == first and not t.pretrain
        )
    if as_json:
        data = [
            {"root": str(d.root), "ready": d.ready, "generate": d.generate.model_dump() if d.generate else None}
            for d in datasets
        ]
        out.print_json(
            json.dumps(
                {
                    "study": loaded.name,
                    "profile": profile,
                    "data": data,
                    "seeds": seeds,
                    "estimate": total,
                    "calibrated": calibrated,
                    "trials": rows,
                },
                default=str,
            )
        )
        return
    for dataset in datasets:
        if not dataset.ready:
            out.print(
                dataset.describe() + "; `ablate run` generates it first, and trial ids follow from its content",
                markup=False,
                highlight=False,
            )
    out.print(_table(loaded.name, rows, cost))
    for name, options in sbatch.items():
        out.print(f"sbatch {name}: {options}", markup=False, highlight=False)
    out.print(_summary(total), markup=False, highlight=False)
    if auto is not None:
        out.print(
            f"seeds: auto - planned the first {auto.min} seeds ({', '.join(map(str, seeds['planned']))}); "
            f"rounds of one more seed may follow until every ladder delta's 95% interval is narrower than "
            f"{auto.ci_width:g} mIoU, up to {auto.max} seeds (about {duration(total['per_extra_seed_s'])} "
            f"of trial time per round)",
            markup=False,
            highlight=False,
        )


def _table(name: str, rows: list[dict[str, Any]], cost: bool) -> Table:
    from ablate.study import AFTER_DATA

    table = Table(title=f"{name}: {len(rows)} trials ({sum(r['status'] == 'pending' for r in rows)} pending)")
    for col in ("id", "trial", "seed", "rung/model", "depends on", "est. cost", "est. time", "GPU-h", "status"):
        table.add_column(col, justify="right" if col in ("est. time", "GPU-h") else "left")
    for r in rows:
        where = f"rung {r['rung']}" if r["rung"] is not None else (r["model"] or "")
        when = duration(r["est_time_s"]) + (" ~" if r["est_source"] == "rough" else "")
        gpu_h = "-" if r["gpu_hours"] is None else f"{r['gpu_hours']:.2f}"
        table.add_row(
            r["trial_id"] or AFTER_DATA,
            r["name"],
            str(r["seed"]),
            where,
            ", ".join(r["depends_on"]) or "-",
            flop_text(r["cost_gflop"]) if cost else "-",
            when,
            gpu_h,
            r["status"],
        )
    return table


def _summary(total: dict[str, Any]) -> str:
    used = ", ".join(f"{n} {s}" for s, n in total["sources"].items() if n)
    text = (
        f"estimate on {total['device']}: {total['pending_trials']} pending trial(s), "
        f"wall time {duration(total['wall_s'])} on {total['slots']} slot(s), "
        f"{duration(total['trial_s'])} of trial time, {total['gpu_hours']:.2f} GPU-hours"
        + (f" (from {used})" if used else "")
    )
    if total["rough"]:
        text += "; ~ rough: FLOPs at a nominal throughput (`--calibrate` measures this machine)"
    if total["unknown"]:
        text += f"; {total['unknown']} trial(s) without an estimate (no FLOPs cost: --no-cost)"
    return text
