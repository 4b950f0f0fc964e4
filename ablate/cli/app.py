"""`ablate` command line. Errors a user can fix are caught here, once, and printed on one line
(exit 2); `--debug` shows the traceback instead."""

from __future__ import annotations

import enum
import gc
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import click
import typer
from rich.table import Table

from ablate.cli.console import err, out
from ablate.cli.diff import diff_command
from ablate.cli.plan import plan_command
from ablate.cli.report import report_command
from ablate.cli.server import server_command
from ablate.errors import AblateError
from ablate.util.devices import visible_gpus
from ablate.util.logs import LOG_FILE, library_logs

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Declarative ablation studies for MMSegmentation.")
data_app = typer.Typer(no_args_is_help=True, help="Create, convert and inspect datasets.")
app.add_typer(data_app, name="data")


def _tracking_uri(value: str | None) -> str:
    """The resolved MLflow URI, refused here (exit 2, in seconds) when MLflow could not open it."""
    from ablate.tracking.uri import checked_tracking_uri

    return checked_tracking_uri(value)


def _library_logs_to(ctx: typer.Context, folder: Path, title: str, *imports: str) -> None:
    """For the rest of the command, other libraries' INFO records go to folder/ablate.log, and only
    their warnings and errors to the terminal as well."""
    ctx.with_resource(library_logs(folder / LOG_FILE, title, *imports))


def _check_ray_address(value: str | None) -> None:
    """`--address` (or $RAY_ADDRESS) must reach a Ray cluster; Ray alone would retry for minutes."""
    from ablate.dispatch.address import check_ray_address

    if value:
        check_ray_address(value)
    elif os.environ.get("RAY_ADDRESS"):
        check_ray_address(os.environ["RAY_ADDRESS"], option="RAY_ADDRESS")


class DispatcherKind(str, enum.Enum):
    """`--dispatcher`: who places and trains the trials (the order is the same for both)."""

    AUTO = "auto"
    RAY = "ray"
    LOCAL = "local"


_DISPATCHER_HELP = (
    "ray: Ray tasks of resources.gpus_per_trial GPUs (default 1) each, on an embedded local Ray or "
    "--address; local: one trial at a time in this process, no Ray; auto (default): local where "
    "only one trial could run at a time anyway (no GPU, one CPU slot, trials of one process, "
    "no --address), else ray."
)


def _one_slot_here(resources: Any, max_concurrent: int | None) -> bool:
    """True when an embedded Ray would run one trial at a time: it would only add its start-up."""
    if visible_gpus() > 0 or resources.placement()[0] > 1:  # DDP trials (several workers) need Ray
        return False
    cpus = os.cpu_count() or 1
    slots = 1 if resources.cpus_per_trial is None else int(cpus // resources.cpus_per_trial)
    return min(slots, max_concurrent or resources.max_concurrent or slots) <= 1


def _dispatcher(kind: DispatcherKind, address: str | None, resources: Any, max_concurrent: int | None) -> Any:
    """The Dispatcher `--dispatcher` names, built without starting anything."""
    from ablate.dispatch import InProcessDispatcher, RayDispatcher, refuse_workers

    if kind is DispatcherKind.AUTO:
        remote = address or os.environ.get("RAY_ADDRESS")
        local = not remote and _one_slot_here(resources, max_concurrent)
        kind = DispatcherKind.LOCAL if local else DispatcherKind.RAY
    if kind is DispatcherKind.LOCAL:
        if address:
            raise AblateError(
                "--address joins a Ray cluster and needs --dispatcher ray; drop --address to train in this process"
            )
        refuse_workers("each trial (resources)", resources.placement()[0])
        return InProcessDispatcher()
    _check_ray_address(address)
    return RayDispatcher(
        address=address,
        gpus_per_trial=resources.gpus_per_trial,
        cpus_per_trial=resources.cpus_per_trial,
        max_concurrent=max_concurrent or resources.max_concurrent,
    )


def _check_before_training(loaded: Any, uri: str, dispatcher: Any) -> None:
    """What would otherwise fail only once trials run, refused now (exit 2): a store on this
    machine's disk for a cluster of several machines, and checkpoints the study names by URL or
    runs:/ URI that cannot be fetched (URLs are downloaded here, their checksum verified)."""
    from ablate.study.checkpoints import fetch_sources
    from ablate.tracking.server import check_shared_store, is_shared_store

    if getattr(dispatcher, "address", None) and not is_shared_store(uri):
        check_shared_store(uri, dispatcher.nodes())
    fetch_sources(loaded, uri)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    """Declarative ablation studies for MMSegmentation."""


@data_app.command("synth")
def data_synth(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the dataset to."),
    train: int = typer.Option(150, min=1),
    test: int = typer.Option(50, min=1),
    height: int = typer.Option(375, min=32),
    width: int = typer.Option(1242, min=32),
    seed: int = typer.Option(0),
    domain: str = typer.Option("kitti", help="kitti, or city: a second appearance for pretraining."),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset at --out."),
) -> None:
    """Generate the deterministic synthetic KITTI-like dataset."""
    from ablate import data

    root = data.synthesize(
        out_dir, train=train, test=test, height=height, width=width, seed=seed, domain=domain, overwrite=overwrite
    )
    out.print(f"synthetic dataset: {root} ({train} train / {test} val, {height}x{width}, seed {seed})")


@data_app.command("kitti")
def data_kitti(
    raw_dir: Path = typer.Argument(..., help="KITTI semantics download (holds training/image_2, training/semantic)."),
    out_dir: Path = typer.Option(..., "--out"),
    train: int = typer.Option(150, min=1),
    test: int = typer.Option(50, min=1),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False),
) -> None:
    """Convert the official KITTI semantics download to the mmseg layout (label ids -> train ids)."""
    from ablate import data

    root = data.convert_kitti(raw_dir, out_dir, train=train, test=test, seed=seed, overwrite=overwrite)
    out.print(f"KITTI dataset: {root} ({train} train / {test} val, split seed {seed})")


@data_app.command("cityscapes")
def data_cityscapes(
    raw_dir: Path = typer.Argument(..., help="Cityscapes download (holds leftImg8bit/ and gtFine/)."),
    out_dir: Path = typer.Option(..., "--out"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Threads converting labels (default: CPUs + 4)."),
    overwrite: bool = typer.Option(False),
) -> None:
    """Convert the official Cityscapes train/val download to the mmseg layout (label ids -> train ids)."""
    from ablate import data

    root = data.convert_cityscapes(raw_dir, out_dir, overwrite=overwrite, workers=workers)
    counts = json.loads((root / "dataset.json").read_text())["counts"]
    out.print(f"Cityscapes dataset: {root} ({counts['train']} train / {counts['val']} val)")


@data_app.command("stats")
def data_stats(
    root: Path = typer.Argument(..., help="Dataset folder in the mmseg layout."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-class pixel counts and frequencies of the train split."""
    from ablate import data

    stats = data.class_stats(root)
    if as_json:
        out.print_json(json.dumps(stats.to_dict()))
        return
    table = Table(title=f"{root} - train split, {stats.images} images")
    for col in ("id", "class", "pixels", "share"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for i, (name, count, freq) in enumerate(zip(stats.classes, stats.pixel_counts, stats.frequencies)):
        table.add_row(str(i), name, f"{count:,}", f"{freq:.2%}")
    out.print(table)
    out.print(f"ignored (255) pixels: {stats.ignored_pixels:,}")


@app.command("flops")
def flops(
    config_file: Path = typer.Argument(..., help="mmseg config file."),
    shape: tuple[int, int] = typer.Option((375, 1242), "--shape", help="Input height and width."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """FLOPs (G) and parameters (M) of one inference forward pass at H x W."""
    from ablate import analysis, config

    cfg = config.load_base(config_file)
    info = analysis.count_config(cfg, *shape)
    if as_json:
        out.print_json(json.dumps({"config": str(config_file), **info.to_dict()}))
    else:
        out.print(
            f"{config_file}: {info.flops_g:.3f} GFLOPs, {info.params_m:.3f} M params at {info.height}x{info.width}"
        )


def _result_table(title: str, rows: list) -> Table:
    table = Table(title=title)
    for col in ("trial", "seed", "id", "state", "mIoU", "time"):
        table.add_column(col)
    for r in rows:
        miou = f"{r.miou:.2f}" if r.miou is not None else "-"
        detail = r.state.value + (f": {r.error}" if r.error else "")
        table.add_row(r.name, str(r.seed), r.trial_id, detail, miou, f"{r.duration_s:.0f}s")
    return table


@app.command("run")
def run(
    ctx: typer.Context,
    study_file: Path = typer.Argument(..., help="Study YAML."),
    profile: str | None = typer.Option(None, "--profile", help="Named profile of the study (e.g. demo)."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)."
    ),
    runs_dir: Path = typer.Option(
        Path("runs"),
        "--runs-dir",
        help=f"Where trial work dirs go, and {LOG_FILE}: what MLflow, Ray and other libraries log below a warning.",
    ),
    rerun: bool = typer.Option(False, "--rerun", help="Retrain trials that already finished."),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Join this Ray cluster (default: $RAY_ADDRESS, else an embedded local Ray on 127.0.0.1).",
    ),
    max_concurrent: int | None = typer.Option(None, "--max-concurrent", min=1, help="Cap on trials running at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON (no live table)."),
    dispatcher_kind: DispatcherKind = typer.Option(DispatcherKind.AUTO, "--dispatcher", help=_DISPATCHER_HELP),
) -> None:
    """Run every trial of a study, logging to MLflow: as Ray tasks with resources.gpus_per_trial GPUs each, or
    one at a time in this process where only one could run at once anyway (--dispatcher auto, the default)."""
    from ablate import study as studies
    from ablate.cli.board import ProgressBoard

    loaded = studies.load_study(study_file, profile)
    _library_logs_to(ctx, runs_dir, f"ablate run {study_file}")
    uri = _tracking_uri(tracking_uri)
    dispatcher = _dispatcher(dispatcher_kind, address, loaded.spec.resources, max_concurrent)
    _check_before_training(loaded, uri, dispatcher)
    err.print(f"study {loaded.name}: tracking to {uri}", markup=False, highlight=False)
    board = ProgressBoard(err, f"{loaded.name}" + (f" ({profile})" if profile else ""), live=False if as_json else None)
    with board:
        outcome = studies.run_study(
            loaded,
            uri,
            runs_dir=runs_dir,
            rerun=rerun,
            dispatcher=dispatcher,
            on_start=board.on_start,
            on_result=board.on_result,
            on_planned=board.add,
            on_round=board.on_round,
        )
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "study": loaded.name,
                    "experiment_id": outcome.experiment_id,
                    "parent_run_id": outcome.parent_run_id,
                    "tracking_uri": uri,
                    "trials": [
                        {
                            "trial_id": r.trial_id,
                            "name": r.name,
                            "seed": r.seed,
                            "state": r.state.value,
                            "mIoU": r.miou,
                            "run_id": r.run_id,
                            "error": r.error,
                            "duration_s": round(r.duration_s, 1),
                        }
                        for r in outcome.results
                    ],
                    "seed_rounds": [r.to_dict() for r in outcome.rounds],
                }
            )
        )
    else:
        out.print(_result_table(f"{loaded.name}: {len(outcome.results)} trials", outcome.results))
    if outcome.failed:
        err.print(f"{len(outcome.failed)} trial(s) failed; tracebacks are attached to their MLflow runs")
        raise typer.Exit(1)


@app.command("tune")
def tune(
    ctx: typer.Context,
    study_file: Path = typer.Argument(..., help="Study YAML with a `search:` block."),
    n_trials: int | None = typer.Option(
        None, "--n-trials", min=1, help="Trials to run now (default: search.n_trials)."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: sqlite optuna.db beside the MLflow store)."
    ),
    profile: str | None = typer.Option(None, "--profile"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri"),
    runs_dir: Path = typer.Option(
        Path("runs"),
        "--runs-dir",
        help=f"Where trial work dirs go, and {LOG_FILE}: what "
        "MLflow, optuna, Ray and other libraries log below a warning.",
    ),
    address: str | None = typer.Option(None, "--address", help="Join this Ray cluster."),
    max_concurrent: int | None = typer.Option(None, "--max-concurrent", min=1),
    dispatcher_kind: DispatcherKind = typer.Option(DispatcherKind.AUTO, "--dispatcher", help=_DISPATCHER_HELP),
) -> None:
    """Optuna search over the study's `search:` parameters, pruned, parallel, resumable."""
    from ablate import study as studies
    from ablate.cli.board import ProgressBoard
    from ablate.search import check_storage_url, tune_study

    loaded = studies.load_study(study_file, profile)
    if loaded.spec.search is None:
        raise AblateError(f"{study_file}: no `search:` block; add one (params, sampler, pruner, n_trials) to tune")
    _library_logs_to(ctx, runs_dir, f"ablate tune {study_file}", "optuna")
    uri = _tracking_uri(tracking_uri)
    if storage is not None:
        check_storage_url(storage)
    dispatcher = _dispatcher(dispatcher_kind, address, loaded.spec.resources, max_concurrent)
    _check_before_training(loaded, uri, dispatcher)
    board = ProgressBoard(err, f"{loaded.name} search")
    with board:
        outcome = tune_study(
            loaded,
            uri,
            dispatcher,
            storage=storage,
            n_trials=n_trials,
            runs_dir=runs_dir,
            on_start=board.on_start,
            on_result=board.on_result,
            on_planned=board.add,
        )
    out.print(_result_table(f"{loaded.name}: {len(outcome.results)} search trials", outcome.results))
    err.print(f"optuna study '{outcome.optuna_study}' in {outcome.storage}", markup=False, highlight=False)
    for note in outcome.notes:
        err.print(f"told FAIL: {note}", markup=False, highlight=False)
    if loaded.spec.search.multi_objective:
        if not outcome.pareto:
            err.print("no trial completed yet" + (" within the constraints" if loaded.spec.search.constraints else ""))
            raise typer.Exit(1)
        out.print(_pareto_table(outcome), markup=False)
        out.print(f"Pareto set, one snippet per trial to `include:`: {outcome.snippet}", markup=False, highlight=False)
        return
    if outcome.best_trial is None:
        err.print("no trial completed yet" + (" within the constraints" if loaded.spec.search.constraints else ""))
        raise typer.Exit(1)
    out.print(
        f"best: trial {outcome.best_trial}, {outcome.objectives[0]} {outcome.best_value:.4f}, "
        f"params {outcome.best_params}",
        markup=False,
        highlight=False,
    )
    out.print(f"snippet for a study's `include:`: {outcome.snippet}", markup=False, highlight=False)


def _pareto_table(outcome: Any) -> Table:
    table = Table(title=f"{outcome.study}: Pareto front ({len(outcome.pareto)} trials)")
    for col in ("trial", *outcome.objectives, "params"):
        table.add_column(col)
    for entry in outcome.pareto:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.params.items())
        table.add_row(str(entry.trial), *(f"{entry.values[n]:.4g}" for n in outcome.objectives), params)
    return table


app.command(
    "plan",
    help=(
        "Every trial a run would train: id, rung/model, seed, dependencies, cost, estimated time and GPU-hours, "
        "cached/pending; runs and writes nothing."
    ),
)(plan_command)
app.command("report", help="Rebuild Table 1, the ladder, the figures and index.html from MLflow.")(report_command)
app.command("diff", help="What differs between two trial runs: config, dataset, environment, metrics.")(diff_command)
app.command("server", help="An MLflow tracking server every machine of a cluster reaches; prints its URI.")(
    server_command
)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if not debug:  # the OpenMMLab stack warns about its own deprecations on every import
        for category in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
    try:
        # Not standalone, so errors reach the handlers below; typer then *returns* the exit
        # code of `typer.Exit` and of an interrupt (130) instead of exiting.
        code = app(args=args, prog_name="ablate", standalone_mode=False)
    except AblateError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        code = 130
    code = code if isinstance(code, int) else 0
    if code == 130:
        err.print("interrupted: finished trials are kept; run the same command again to resume the rest")
    gc.freeze()  # skip the interpreter's last full collection of torch/mmseg objects (~1 s)
    sys.exit(code)
