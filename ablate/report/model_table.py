"""Table 1, the models: Markdown and LaTeX (every column, and a paper's one-column version) and CSV.

The reference, study and speed columns appear only when they have content; the CSV marks the rows
on both Pareto fronts so they can be checked without the figures.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from ablate.report.groups import ModelRow
from ablate.report.tables import CHECK, CROSS, Table, fmt, fmt_duration, fmt_mean_std, raw_number


def _mark(flag: bool) -> str:
    return CHECK if flag else CROSS


def _precision_cell(row: ModelRow) -> str:
    return row.precision + ("‡" if row.amp_fallback else "")


def _measured_on(rows: Sequence[ModelRow]) -> str:
    """The device(s) latency was measured on, named for the caption."""
    by_device: dict[str, list[str]] = {}
    for row in rows:
        for device in row.latency_devices:
            by_device.setdefault(device, []).append(row.label)
    if len(by_device) <= 1:
        return next(iter(by_device), "an unrecorded device")
    return "; ".join(f"{device} ({', '.join(labels)})" for device, labels in by_device.items())


def _speed_caption(rows: Sequence[ModelRow]) -> str:
    text = " Precision: what the runs trained in."
    if any(not math.isnan(r.latency_ms) for r in rows):
        text += (
            " Latency: median of timed batch-1 inference passes at the image size (single scale, after warm-up) in "
            f"the row's precision on {_measured_on(rows)}, mean over seeds; FPS: images/s at that median."
        )
    return text


def table1(rows: Sequence[ModelRow], datasets: Sequence[str] = ()) -> Table:
    """Paper-style Table 1; the reference, study and speed columns appear only when they have content."""
    with_ref = any(r.reference is not None for r in rows)
    multi = len({r.experiment for r in rows}) > 1
    any_tta = any(r.tta for r in rows)
    with_speed = any(r.precision or not math.isnan(r.latency_ms) for r in rows)
    speed = ["Precision", "Latency (ms)", "FPS"] if with_speed else []
    header = (["Study"] if multi else []) + [
        "Model",
        "Enc.",
        "Dec.",
        "mIoU (%)",
        "n",
        "FLOPs (G)",
        "Params (M)",
        *speed,
        "Train time",
        "GPUs",
        "Batch",
    ]
    align = ("l" if multi else "") + "lccrrrr" + ("crr" if with_speed else "") + "rcr"
    if with_ref:
        header.append("Paper mIoU (%)")
        align += "r"
    body = []
    for row in rows:
        cells = ([row.experiment] if multi else []) + [
            row.label,
            _mark(row.enc_pretrained),
            _mark(row.dec_pretrained),
            fmt_mean_std(row.miou.mean, row.miou.std) + ("†" if row.tta else ""),
            str(row.miou.n),
            fmt(row.flops_g, 1),
            fmt(row.params_m, 2),
            *([_precision_cell(row), fmt(row.latency_ms, 1), fmt(row.fps, 1)] if with_speed else []),
            fmt_duration(row.duration_s),
            row.gpus,
            row.total_batch,
        ]
        if with_ref:
            cells.append(fmt(row.reference))
        body.append(cells)
    on = f" on {', '.join(datasets)}" if datasets else ""
    caption = (
        f"mIoU (%){on} (validation split), mean ± std over n seeds (std with ddof=1, blank for n=1); "
        "FLOPs and parameters of one inference pass at the dataset's image size; mean training time per run. "
        "Enc./Dec.: encoder/decoder pretrained. GPUs: what each run trained on (several: one DDP job; CPU (n): n CPU "
        "workers); Batch: images per optimizer step over all of them." + (_speed_caption(rows) if with_speed else "")
    )
    notes = []
    if any_tta:
        notes.append("† multi-scale (+flip) test-time augmentation.")
    fallbacks = sorted({r.amp_fallback for row in rows for r in row.runs if r.amp_fallback})
    if fallbacks:
        asked = "/".join(sorted({r.amp for row in rows for r in row.runs if r.amp_fallback}))
        notes.append(f"‡ {asked} mixed precision requested, not available ({'; '.join(fallbacks)}).")
    notes.append(
        "Order: zoo families (baseline, UNet, DeepLabV3+, Swin, SegFormer, PSPNet) by FLOPs, then ladder rungs, "
        "leave-one-out rows, other trials by FLOPs."
    )
    return Table("Table 1", caption, header, body, align, "table1", notes)


def paper_table1(table: Table, rows: Sequence[ModelRow], full: str) -> Table:
    """Table 1 as a paper prints it, one column wide: model, pretrained encoder and decoder, mIoU and
    FLOPs, and parameters where the models differ; every other column is in the `full` file."""
    params = len({round(r.params_m, 2) for r in rows if not math.isnan(r.params_m)}) > 1
    columns = ["Study", "Model", "Enc.", "Dec.", "mIoU (%)", "FLOPs (G)"] + (["Params (M)"] if params else [])
    caption = (
        "Enc./Dec.: encoder/decoder pretrained. mIoU: mean ± std over the seeds of each row (validation split); "
        f"FLOPs{' and parameters' if params else ''} of one inference pass at the dataset's image size. "
        f"Seeds, precision, latency, time and GPUs: {full}."
    )
    marks = [n for n in table.notes if n.startswith("†")]
    return table.select(columns, "Models: mIoU (%) and inference cost.", caption, marks).abbreviated("Model")


def table1_csv(rows: Sequence[ModelRow], front: Sequence[str] = (), latency_front: Sequence[str] = ()) -> str:
    """`pareto` marks the rows on Figure 1's front (mIoU vs FLOPs), `pareto_latency` those on the
    mIoU vs latency front, so both sets can be checked without the figures."""
    on_front, on_latency_front = set(front), set(latency_front)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "experiment",
            "model",
            "trial",
            "shape",
            "family",
            "enc_pretrained",
            "dec_pretrained",
            "miou_mean",
            "miou_std",
            "n",
            "seeds",
            "flops_g",
            "params_m",
            "train_time_s",
            "tta",
            "reference_miou",
            "pareto",
            "precision",
            "amp_fallback",
            "latency_ms",
            "fps",
            "latency_device",
            "pareto_latency",
            "gpus",
            "total_batch",
        ]
    )
    for r in rows:
        writer.writerow(
            [
                r.experiment,
                r.label,
                r.trial_name,
                r.shape,
                r.family,
                r.enc_pretrained,
                r.dec_pretrained,
                raw_number(r.miou.mean),
                raw_number(r.miou.std),
                r.miou.n,
                " ".join(str(s) for s in r.seeds),
                raw_number(r.flops_g),
                raw_number(r.params_m),
                raw_number(r.duration_s),
                r.tta,
                raw_number(r.reference),
                r.label in on_front,
                r.precision,
                r.amp_fallback,
                raw_number(r.latency_ms),
                raw_number(r.fps),
                " / ".join(r.latency_devices),
                r.label in on_latency_front,
                r.gpus,
                r.total_batch,
            ]
        )
    return buf.getvalue()
