"""What the commands that train trials (`ablate run`, `ablate tune`) share: the dispatcher
`--dispatcher` picks, the checks made before any trial trains, where other libraries' logs go and
the table of results."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ablate.cli.console import err
from ablate.errors import AblateError
from ablate.util.devices import visible_gpus
from ablate.util.logs import LOG_FILE, library_logs


def library_logs_to(ctx: typer.Context, folder: Path, title: str, *imports: str) -> None:
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
    SLURM = "slurm"


DISPATCHER_HELP = (
    "ray: Ray tasks of resources.gpus_per_trial GPUs (default 1) each, on an embedded local Ray or "
    "--address; local: one trial at a time in this process, no Ray; auto (default): local where "
    "only one trial could run at a time anyway (no GPU, one CPU slot, trials of one process, "
    "no --address), else ray; slurm: one Slurm job per trial (submitit) on the cluster this machine submits to "
    "(the study's `slurm:` block, --partition, --account, --qos, --time)."
)


def _one_slot_here(resources: Any, max_concurrent: int | None) -> bool:
    """True when an embedded Ray would run one trial at a time: it would only add its start-up."""
    if visible_gpus() > 0 or resources.placement()[0] > 1:  # DDP trials (several workers) need Ray
        return False
    cpus = os.cpu_count() or 1
    slots = 1 if resources.cpus_per_trial is None else int(cpus // resources.cpus_per_trial)
    return min(slots, max_concurrent or resources.max_concurrent or slots) <= 1


def make_dispatcher(
    kind: DispatcherKind,
    address: str | None,
    resources: Any,
    max_concurrent: int | None,
    slurm: Any = None,
    cancel_on_exit: bool = False,
) -> Any:
    """The Dispatcher `--dispatcher` names, built without starting anything (`slurm`: the study's
    `slurm:` block with the command line's overrides)."""
    from ablate.dispatch import InProcessDispatcher, RayDispatcher, SlurmDispatcher, refuse_workers

    if kind is DispatcherKind.SLURM:
        if address:
            raise AblateError("--address joins a Ray cluster; drop it with --dispatcher slurm")
        return SlurmDispatcher(
            options=slurm,
            gpus_per_trial=resources.gpus_per_trial,
            cpus_per_trial=resources.cpus_per_trial,
            max_concurrent=max_concurrent or resources.max_concurrent,
            cancel_on_exit=cancel_on_exit,
            say=lambda line: err.print(line, markup=False, highlight=False),
        )
    if cancel_on_exit:
        raise AblateError("--cancel-on-exit is for --dispatcher slurm (other dispatchers always stop their trials)")

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


def check_before_training(loaded: Any, uri: str, dispatcher: Any) -> None:
    """What would otherwise fail only once trials run, refused now (exit 2): a store on this
    machine's disk for a cluster of several machines, and checkpoints the study names by URL or
    runs:/ URI that cannot be fetched (URLs are downloaded here, their checksum verified)."""
    from ablate.dispatch import SlurmDispatcher
    from ablate.study.checkpoints import fetch_sources
    from ablate.tracking.server import check_shared_store, is_shared_store

    if isinstance(dispatcher, SlurmDispatcher):
        from ablate.cli.slurm import check_slurm

        check_slurm(dispatcher, uri)
    elif getattr(dispatcher, "address", None) and not is_shared_store(uri):
        check_shared_store(uri, dispatcher.nodes())
    fetch_sources(loaded, uri)


def result_table(title: str, rows: list) -> Table:
    table = Table(title=title)
    for col in ("trial", "seed", "id", "state", "mIoU", "time"):
        table.add_column(col)
    for r in rows:
        miou = f"{r.miou:.2f}" if r.miou is not None else "-"
        detail = r.state.value + (f": {r.error}" if r.error else "")
        table.add_row(r.name, str(r.seed), r.trial_id, detail, miou, f"{r.duration_s:.0f}s")
    return table
