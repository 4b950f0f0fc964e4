"""The `ablate tune` command: an Optuna search over a study's `search:` block, its trials placed
like those of `ablate run`, then the best trial (or the Pareto set) as a snippet to `include:`.

Errors a user can fix surface as AblateError, which the application's `main` prints on one line
(exit 2); a search without any completed trial is exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

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
from ablate.errors import AblateError
from ablate.util.logs import LOG_FILE


def tune_command(
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
    credentials: Path | None = credentials_option(),
    runs_dir: Path = typer.Option(
        Path("runs"),
        "--runs-dir",
        help=f"Where trial work dirs go, and {LOG_FILE}: what "
        "MLflow, optuna, Ray and other libraries log below a warning.",
    ),
    address: str | None = typer.Option(None, "--address", help="Join this Ray cluster."),
    max_concurrent: int | None = typer.Option(None, "--max-concurrent", min=1),
    dispatcher_kind: DispatcherKind = typer.Option(DispatcherKind.AUTO, "--dispatcher", help=DISPATCHER_HELP),
    partition: str | None = PARTITION,
    account: str | None = ACCOUNT,
    qos: str | None = QOS,
    time_limit: str | None = TIME,
    cancel_on_exit: bool = CANCEL_ON_EXIT,
) -> None:
    """Optuna search over the study's `search:` parameters, pruned, parallel, resumable."""
    from ablate import study as studies
    from ablate.cli.board import ProgressBoard
    from ablate.search import check_storage_url, tune_study
    from ablate.tracking.uri import checked_tracking_uri

    loaded = studies.load_study(study_file, profile)
    if loaded.spec.search is None:
        raise AblateError(f"{study_file}: no `search:` block; add one (params, sampler, pruner, n_trials) to tune")
    library_logs_to(ctx, runs_dir, f"ablate tune {study_file}", "optuna")
    uri = checked_tracking_uri(tracking_uri, credentials)
    if storage is not None:
        check_storage_url(storage)
    slurm = slurm_block(loaded.spec, partition=partition, account=account, qos=qos, time=time_limit)
    dispatcher = make_dispatcher(
        dispatcher_kind, address, loaded.spec.resources, max_concurrent, slurm=slurm, cancel_on_exit=cancel_on_exit
    )
    check_before_training(loaded, uri, dispatcher)
    board = ProgressBoard(err, f"{loaded.name} search")
    try:
        with board:
            outcome = tune_study(
                loaded,
                uri,
                dispatcher,
                storage=storage,
                n_trials=n_trials,
                runs_dir=runs_dir,
                **board.callbacks(),
            )
    except KeyboardInterrupt:
        say_left_running(dispatcher)
        raise
    out.print(result_table(f"{loaded.name}: {len(outcome.results)} search trials", outcome.results))
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
