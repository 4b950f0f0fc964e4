"""The `slurm:` block of a study file (and of its profiles): where `--dispatcher slurm` queues each
trial's job and what the job asks the cluster for beyond the study's `resources`.

Every field is optional: a study without the block runs on the cluster's default partition with
its `resources`. Whether the partition and account exist is asked of the cluster itself, before
anything is submitted (`ablate.dispatch.slurm_cluster.check_names`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Slurm's time limit formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_MEMORY = re.compile(r"^\d+(?:[KMGT])?$")
_NAME = re.compile(r"^[A-Za-z0-9_.,-]+$")
# sbatch options ablate sets itself: `extra` may not change what a trial's job is
_OWNED = {"job-name", "output", "error", "ntasks", "ntasks-per-node", "nodes", "signal", "array", "open-mode"}


def time_minutes(text: str) -> int:
    """A Slurm time limit as whole minutes (rounded up): `90`, `1:30:00`, `2-00:00:00`."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not a Slurm time limit; write minutes (90), HH:MM:SS (1:30:00) or D-HH:MM:SS")
    days, first, second, third = match.groups()
    if days is None and third is None and second is None:
        return int(first)  # minutes
    if days is None and third is None:  # MM:SS
        return int(first) + (1 if int(second) else 0)
    hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    return int(days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0)


class SlurmSpec(BaseModel):
    """sbatch options of every trial's job (`ablate run --dispatcher slurm`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str | None = Field(default=None, description="default: the cluster's default partition")
    account: str | None = None
    qos: str | None = None
    time: str | None = Field(default=None, description="each job's time limit, e.g. 4:00:00 (default: the partition's)")
    constraint: str | None = Field(default=None, description="node features, e.g. a100|h100")
    mem_per_gpu: str | None = Field(default=None, description="e.g. 32G")
    mem: str | None = Field(default=None, description="per node, e.g. 64G (instead of mem_per_gpu)")
    setup: list[str] = Field(default_factory=list, description="shell lines run before the trial (module load ...)")
    extra: dict[str, str | int | bool] = Field(default_factory=dict, description="further sbatch options")
    signal_s: int = Field(default=120, ge=10, description="seconds before the time limit the job saves a checkpoint")
    requeue: bool = Field(default=True, description="preempted or timed-out jobs are requeued and resume")

    @field_validator("time")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is not None:
            time_minutes(str(v))
        return None if v is None else str(v)

    @field_validator("mem", "mem_per_gpu")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not _MEMORY.match(str(v)):
            raise ValueError(f"'{v}' is not a Slurm memory size; write e.g. 32G or 16000M")
        return v

    @field_validator("partition", "account", "qos")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.match(v):
            raise ValueError(f"'{v}' is not a Slurm name (letters, digits, _ . , -)")
        return v

    @field_validator("extra")
    @classmethod
    def _extra(cls, v: dict[str, Any]) -> dict[str, Any]:
        owned = sorted(k for k in v if k.replace("_", "-").lstrip("-") in _OWNED)
        if owned:
            raise ValueError(f"ablate sets {', '.join(owned)} itself; remove it from slurm.extra")
        return v

    def with_options(self, **options: Any) -> SlurmSpec:
        """This block with the command line's non-None options (`--partition`, ...) in place."""
        given = {k: v for k, v in options.items() if v is not None}
        if not given:
            return self
        return SlurmSpec.model_validate({**self.model_dump(exclude_unset=True), **given})

    @property
    def minutes(self) -> int | None:
        return None if self.time is None else time_minutes(self.time)
