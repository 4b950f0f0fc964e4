"""Runs -> the rows of Table 1 (ladders and their tests live in `ablate.statistics.ladder`).

Sort order of Table 1 (kept simple and stable, so tables of different studies line up):
  1. zoo rows, by family as the paper lists them (baseline/FCN, UNet, DeepLabV3+, Swin, SegFormer,
     PSPNet, then anything else), then by FLOPs, then by name;
  2. ladder rungs, by rung;
  3. leave-one-out rows (full recipe first, then each "minus trick"), by rung;
  4. every other trial, by FLOPs, then by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ablate.report.collect import Collection, TrialRun
from ablate.statistics import SHAPE_ORDER, Summary, mean_of, metric_key, summarize

FAMILIES = ("baseline", "UNet", "DeepLabV3+", "Swin", "SegFormer", "PSPNet")
# Checked in this order (most specific first: UNet uses an FCN head, Swin here a SegFormer head).
_FAMILY_PATTERNS = (
    ("Swin", r"swin"),
    ("UNet", r"unet"),
    ("DeepLabV3+", r"deeplab|aspp"),
    ("PSPNet", r"psp"),
    ("SegFormer", r"segformer|mit-?b\d|mixvision"),
    ("baseline", r"baseline|fcn"),
)


def family(*texts: str) -> str:
    """The model family named anywhere in a run's model name, config stem or module types."""
    text = " ".join(texts).lower()
    for name, pattern in _FAMILY_PATTERNS:
        if re.search(pattern, text):
            return name
    return "other"


@dataclass(frozen=True)
class ModelRow:
    """One Table 1 row: a model variant (zoo) or a named trial, over its seeds."""

    label: str
    experiment: str
    shape: str
    model: str
    family: str
    enc_pretrained: bool
    dec_pretrained: bool
    rung: int | None
    runs: tuple[TrialRun, ...]
    miou: Summary
    flops_g: float
    params_m: float
    duration_s: float
    reference: float | None
    tta: bool

    @property
    def trial_name(self) -> str:
        return self.runs[0].name

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]

    @property
    def best_run(self) -> TrialRun:
        return max(self.runs, key=lambda r: (r.miou, -r.start_time))

    @property
    def pretraining(self) -> str:
        """Legend group of Figure 1: what the variant starts from."""
        if self.dec_pretrained:
            return "encoder + decoder pretrained"
        if self.enc_pretrained:
            return "encoder pretrained"
        return "from scratch"

    @property
    def latency_ms(self) -> float:
        """Mean over seeds of the measured median latency (NaN: none measured)."""
        return mean_of([r.latency_ms for r in self.runs])

    @property
    def fps(self) -> float:
        return mean_of([r.fps for r in self.runs])

    @property
    def precision(self) -> str:
        """What the seeds trained in (`fp32`, `bf16`, `fp32/bf16` when they differ; blank if unrecorded)."""
        return "/".join(dict.fromkeys(r.precision for r in self.runs if r.precision))

    @property
    def amp_fallback(self) -> bool:
        """A seed asked for mixed precision and trained in fp32 instead."""
        return any(r.amp_fallback for r in self.runs)

    @property
    def gpus(self) -> str:
        """GPUs a run trained on (`CPU`, or `CPU (2)` for two CPU workers), `/`-joined when seeds differ."""
        return "/".join(dict.fromkeys(_gpus(r) for r in self.runs if r.devices))

    @property
    def total_batch(self) -> str:
        """Images per optimizer step over all of a run's GPUs (workers), `/`-joined when seeds differ."""
        return "/".join(dict.fromkeys(str(r.total_batch) for r in self.runs if r.total_batch))

    @property
    def latency_devices(self) -> list[str]:
        return list(dict.fromkeys(r.latency_device for r in self.runs if r.latency_device))

    def class_iou(self, classes: Sequence[str]) -> list[float]:
        """Mean IoU per class over seeds; NaN where no seed saw the class."""
        out = []
        for name in classes:
            out.append(mean_of([r.metric(metric_key("IoU", name)) for r in self.runs]))
        return out


def _gpus(run: TrialRun) -> str:
    cuda = sum(device.strip().startswith("cuda") for device in run.devices.split(","))
    if cuda:
        return str(cuda)
    return "CPU" if run.world_size == 1 else f"CPU ({run.world_size})"


def _group_key(run: TrialRun) -> tuple[str, ...]:
    if run.shape == "zoo":
        return (run.experiment, "zoo", run.model, str(run.enc_pretrained), str(run.dec_pretrained))
    return (run.experiment, run.shape, run.name)


def _sort_key(row: ModelRow) -> tuple:
    flops = row.flops_g if not math.isnan(row.flops_g) else math.inf
    if row.shape == "zoo":
        rank = FAMILIES.index(row.family) if row.family in FAMILIES else len(FAMILIES)
        return (0, rank, flops, row.label)
    if row.shape in SHAPE_ORDER and row.rung is not None:
        return (SHAPE_ORDER[row.shape], row.rung, 0.0, row.label)
    return (3, 0, flops, row.label)


def _marks(row: ModelRow) -> str:
    return f"enc {'yes' if row.enc_pretrained else 'no'}, dec {'yes' if row.dec_pretrained else 'no'}"


def _unique_labels(rows: list[ModelRow]) -> list[ModelRow]:
    """Labels key figures and per-class tables, so a name shared by two variants gets told apart."""
    from dataclasses import replace

    multi_experiment = len({r.experiment for r in rows}) > 1
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    out = []
    for row in rows:
        label = row.label
        if counts[label] > 1:  # (experiment, shape, name) / (experiment, model, marks) are unique
            label = f"{row.experiment}/{label}" if multi_experiment else label
            label = f"{label} ({_marks(row) if row.shape == 'zoo' else row.shape})"
        out.append(replace(row, label=label))
    return out


def model_rows(collection: Collection, reference: Mapping[str, float] | None = None) -> list[ModelRow]:
    """Table 1: finished runs grouped by model variant (zoo) or trial name, in the documented order."""
    reference = reference or {}
    groups: dict[tuple[str, ...], list[TrialRun]] = {}
    for run in collection.table_runs:
        groups.setdefault(_group_key(run), []).append(run)
    rows = []
    for runs in groups.values():
        runs.sort(key=lambda r: (r.seed if r.seed is not None else -1, r.start_time))
        first = runs[0]
        label = first.model if first.shape == "zoo" else first.name
        if first.teacher:  # a distilled student names its teacher (a study row or a checkpoint file)
            label += f" (teacher: {first.teacher.rsplit('/', 1)[-1]})"
        ref = reference.get(first.name)
        rows.append(
            ModelRow(
                label=label,
                experiment=first.experiment,
                shape=first.shape,
                model=first.model,
                family=family(
                    first.model, first.name, first.params.get("backbone", ""), first.params.get("decode_head", "")
                ),
                enc_pretrained=first.enc_pretrained,
                dec_pretrained=first.dec_pretrained,
                rung=first.rung,
                runs=tuple(runs),
                miou=summarize([r.miou for r in runs]),
                flops_g=mean_of([r.metric("flops_g") for r in runs]),
                params_m=mean_of([r.metric("params_m") for r in runs]),
                duration_s=mean_of([r.duration_s for r in runs]),
                reference=float(ref) if ref is not None else None,
                tta=all(r.tta for r in runs),
            )
        )
    rows.sort(key=_sort_key)
    return _unique_labels(rows)
