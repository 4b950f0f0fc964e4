"""The `ablate run` command: every trial of a study, placed by the dispatcher `--dispatcher` picks,
shown on a progress board, then a table (or JSON) of the results.

Errors a user can fix surface as AblateError, which the application's `main` prints on one line
(exit 2); a failed trial is exit 1, its traceback attached to its MLflow run.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ablate.cli.console import err, out
from ablate.cli.login import credentials_option
from ablate.cli.slurm import ACCOUNT, CANCEL_ON_EXIT, PARTITION, QOS, TIME, say_left_running, slurm_block
from ablate.cli.trials import (
    DISPATCHER_HELP,
    DispatcherKind,
    check_before_training,
    library_logs_to,
    make_dispatcher,
    result_table,
)
from ablate.util.logs import LOG_FILE


def run_command(
    ctx: typer.Context,
    study_file: Path = typer.Argument(..., help="Study YAML."),
    profile: str | None = typer.Option(None, "--profile", help="Named profile of the study (e.g. demo)."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)."
    ),
    credentials: Path | None = credentials_option(),
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
    dispatcher_kind: DispatcherKind = typer.Option(DispatcherKind.AUTO, "--dispatcher", help=DISPATCHER_HELP),
    partition: str | None = PARTITION,
    account: str | None = ACCOUNT,
    qos: str | None = QOS,
    time_limit: str | None = TIME,
    cancel_on_exit: bool = CANCEL_ON_EXIT,
) -> None:
    """Run every trial of a study, logging to MLflow: as Ray tasks with resources.gpus_per_trial GPUs each, or
    one at a time in this process where only one could run at once anyway (--dispatcher auto, the default)."""
    from ablate import study as studies
    from ablate.cli.board import ProgressBoard
    from ablate.tracking.uri import checked_tracking_uri

    loaded = studies.load_study(study_file, profile)
    library_logs_to(ctx, runs_dir, f"ablate run {study_file}")
    uri = checked_tracking_uri(tracking_uri, credentials)
    slurm = slurm_block(loaded.spec, partition=partition, account=account, qos=qos, time=time_limit)
    dispatcher = make_dispatcher(
        dispatcher_kind, address, loaded.spec.resources, max_concurrent, slurm=slurm, cancel_on_exit=cancel_on_exit
    )
    check_before_training(loaded, uri, dispatcher)
    err.print(f"study {loaded.name}: tracking to {uri}", markup=False, highlight=False)
    board = ProgressBoard(err, f"{loaded.name}" + (f" ({profile})" if profile else ""), live=False if as_json else None)
    try:
        with board:
            outcome = studies.run_study(
                loaded,
                uri,
                runs_dir=runs_dir,
                rerun=rerun,
                dispatcher=dispatcher,
                on_round=board.on_round,
                **board.callbacks(),
            )
    except KeyboardInterrupt:
        say_left_running(dispatcher)
        raise
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
        out.print(result_table(f"{loaded.name}: {len(outcome.results)} trials", outcome.results))
    if outcome.failed:
        err.print(f"{len(outcome.failed)} trial(s) failed; tracebacks are attached to their MLflow runs")
        raise typer.Exit(1)
