"""`--dispatcher slurm` on the command line: the options that override a study's `slurm:` block,
the checks made before anything is submitted, and what a stopped driver says about its jobs."""

from __future__ import annotations

from typing import Any

import typer

from ablate.cli.console import err
from ablate.errors import AblateError

PARTITION = typer.Option(None, "--partition", help="Slurm partition (--dispatcher slurm; default: slurm.partition).")
ACCOUNT = typer.Option(None, "--account", help="Slurm account to charge (--dispatcher slurm).")
QOS = typer.Option(None, "--qos", help="Slurm QOS (--dispatcher slurm).")
TIME = typer.Option(None, "--time", help="Each trial job's time limit, e.g. 4:00:00 (--dispatcher slurm).")
CANCEL_ON_EXIT = typer.Option(
    False,
    "--cancel-on-exit",
    help="--dispatcher slurm: cancel the study's jobs when the driver stops (default: they keep running, "
    "and the next `ablate run` re-attaches to them).",
)


def slurm_block(spec: Any, **options: Any) -> Any:
    """The study's `slurm:` block with the command line's options in place (a bad one: one line)."""
    from pydantic import ValidationError

    from ablate.study.slurm_schema import SlurmSpec

    block = spec.slurm or SlurmSpec()
    try:
        return block.with_options(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "slurm"
        raise AblateError(f"--{field}: {first['msg'].removeprefix('Value error, ')}") from None


def check_slurm(dispatcher: Any, uri: str) -> None:
    """Refuse an unknown partition or account before anything is submitted; warn about a store on
    a file (jobs on other machines write to it: it must be on a path all of them see)."""
    from ablate.tracking.server import is_shared_store

    dispatcher.check()
    if not is_shared_store(uri):
        err.print(
            f"warning: trials on the cluster's nodes write to '{uri}', a store on a file: it must be on a "
            "filesystem every node mounts, and sqlite over NFS/Lustre locks badly; `ablate server` on the "
            "login node and its http:// URI as --tracking-uri is the safe choice",
            markup=False,
            highlight=False,
        )


def say_left_running(dispatcher: Any) -> None:
    """After an interrupt: which jobs are still queued or running, and how to get back to them."""
    left = getattr(dispatcher, "left_running", None)
    if not left:
        return
    err.print(
        f"{len(left)} Slurm job(s) keep running ({', '.join(left)}): run the same `ablate run` again to "
        f"re-attach to them, or `scancel {' '.join(left)}` to stop them",
        markup=False,
        highlight=False,
    )


def sbatch_lines(trials: list, slurm: Any, resources: Any) -> dict[str, str]:
    """Each trial's sbatch options as a command line would give them (`ablate plan --dispatcher slurm`);
    on a partition without GPUs a one-process trial's job asks for none."""
    from ablate.dispatch import sbatch_options

    lines = {}
    for spec in trials:
        options = sbatch_options(spec, slurm, resources.gpus_per_trial, resources.cpus_per_trial)
        lines[spec.name] = " ".join(f"--{k}" if v is True else f"--{k}={v}" for k, v in options.items())
    return lines
