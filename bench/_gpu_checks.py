"""What each step of bench/gpu_proof.sh has to show once its command has ended.

A check reads what the step's command left behind (the document `ablate run --json` printed, the
MLflow runs it names, the JSON a benchmark wrote), never its console log: a step passes on what a
user would find in MLflow and in the results, not on what was printed. Every problem found is
listed, not just the first, so that one run on a lent GPU shows all that is wrong at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from _common import parse_json_stdout

GPU_METRIC_PREFIX = "system/gpu_"  # MLflow's NVML monitor: system/gpu_0_utilization_percentage, ...
RATIO_TARGET = 0.98  # training images/s through `ablate run` over a bare Runner, same resolved config
BF16_TARGET = 1.5  # bf16 over fp32 training images/s through `ablate run`
LATENCY_PRECISIONS = ("fp32", "bf16")
THROUGHPUT_PRECISIONS = ("fp32", "bf16")


@dataclass
class Outcome:
    """What a step showed: its problems (none: it proved its point), one line, its key numbers."""

    problems: list[str] = field(default_factory=list)
    summary: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _cuda_index(device: str) -> Optional[int]:
    match = re.fullmatch(r"cuda:(\d+)", device.strip())
    return int(match.group(1)) if match else None


def _read_json(path: Path, what: str, out: Outcome) -> Optional[dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        out.problems.append(f"no {what} ({path.name}: {type(exc).__name__})")
        return None


# -- trials through `ablate run` --------------------------------------------------------------------
def trial_rows(work: Path, out: Outcome) -> list[dict[str, Any]]:
    """Each trial `ablate run --json` reported (work/run.json), with its MLflow run's tags and metrics."""
    from mlflow import MlflowClient

    from ablate.tracking import tags as T

    try:
        doc = parse_json_stdout((work / "run.json").read_text())
    except (OSError, ValueError) as exc:
        out.problems.append(f"`ablate run --json` printed no result ({type(exc).__name__}: {exc}); see the log")
        return []
    client = MlflowClient(doc["tracking_uri"])
    rows = []
    for trial in doc.get("trials", []):
        row = {k: trial.get(k) for k in ("name", "seed", "state", "mIoU", "duration_s", "error")}
        if trial.get("run_id"):
            run = client.get_run(trial["run_id"])
            tags, metrics = run.data.tags, run.data.metrics
            row.update(
                run_status=run.info.status, start_ms=run.info.start_time, end_ms=run.info.end_time,
                devices=tags.get(T.DEVICES, ""), gpu=tags.get(T.GPU, ""), precision=tags.get(T.PRECISION, ""),
                amp_fallback=tags.get(T.AMP_FALLBACK, ""), world_size=tags.get(T.WORLD_SIZE, ""),
                sync_bn_fallback=tags.get(T.SYNC_BN_FALLBACK, ""), trial_id=tags.get(T.TRIAL_ID, ""),
                gpu_metrics={k: round(v, 2) for k, v in sorted(metrics.items()) if k.startswith(GPU_METRIC_PREFIX)},
            )
        rows.append(row)
    return rows


def check_trials(work: Path, gpus: list[str], expect: Optional[int] = None, gpu_metrics: bool = False,
                 precision: Optional[str] = None) -> tuple[Outcome, list[dict[str, Any]]]:
    """Every trial FINISHED, in MLflow too, trained on `cuda:N` and tagged with GPU N's name."""
    out = Outcome()
    rows = trial_rows(work, out)
    if expect is not None and len(rows) != expect and not out.problems:
        out.problems.append(f"{len(rows)} trial(s) reported, {expect} expected")
    for row in rows:
        name = row["name"] if row.get("seed") is None else f"{row['name']} (seed {row['seed']})"
        if row["state"] != "FINISHED":
            out.problems.append(f"trial {name}: {row['state']}" + (f" ({row['error']})" if row.get("error") else ""))
            continue
        if row.get("run_status") != "FINISHED":
            out.problems.append(f"trial {name}: its MLflow run is {row.get('run_status')}")
        for device in filter(None, row.get("devices", "").split(",")):
            index = _cuda_index(device)
            if index is None or index >= len(gpus):
                out.problems.append(f"trial {name}: tag ablate.devices is {row.get('devices')!r}, not one of "
                                    f"cuda:0..cuda:{len(gpus) - 1}")
            elif row.get("world_size") in ("", "1") and row.get("gpu") != gpus[index]:
                out.problems.append(f"trial {name}: tag ablate.gpu is {row.get('gpu')!r}, the GPU at {device} is "
                                    f"{gpus[index]!r}")
        if not row.get("devices"):
            out.problems.append(f"trial {name}: no ablate.devices tag")
        if gpu_metrics and not row.get("gpu_metrics"):
            out.problems.append(f"trial {name}: no {GPU_METRIC_PREFIX}* system metrics")
        if precision and row.get("precision") != precision:
            out.problems.append(f"trial {name}: trained in {row.get('precision') or '?'}, {precision} asked "
                                f"({row.get('amp_fallback') or 'no fallback recorded'})")
    out.numbers["trials"] = [{k: v for k, v in row.items() if k not in ("start_ms", "end_ms", "error")}
                             for row in rows]
    return out, rows


def _finished(rows: list[dict[str, Any]]) -> str:
    done = sum(row["state"] == "FINISHED" for row in rows)
    return f"{done}/{len(rows)} FINISHED"


def _where(rows: list[dict[str, Any]]) -> str:
    pairs = sorted({(row.get("devices") or "?", row.get("gpu") or "?") for row in rows})
    return ", ".join(f"{device} ({gpu})" for device, gpu in pairs)


def _miou(rows: list[dict[str, Any]]) -> str:
    return " / ".join("-" if row.get("mIoU") is None else f"{row['mIoU']:.2f}" for row in rows)


def max_overlap(rows: list[dict[str, Any]]) -> int:
    """The most MLflow runs open at one moment: trials that really trained side by side."""
    events = []
    for row in rows:
        if row.get("start_ms") is not None and row.get("end_ms") is not None:
            events += [(row["start_ms"], 1), (row["end_ms"], -1)]
    best = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same ms
        current += step
        best = max(best, current)
    return best


def check_smoke(work: Path, gpus: list[str]) -> Outcome:
    out, rows = check_trials(work, gpus, expect=2, gpu_metrics=True)
    keys = sorted({k for row in rows for k in row.get("gpu_metrics", {})})
    out.numbers["gpu_metric_keys"] = keys
    out.summary = (f"{_finished(rows)} on {_where(rows)}; {len(keys)} {GPU_METRIC_PREFIX}* metrics; "
                   f"mIoU {_miou(rows)}")
    return out


def check_fractional(work: Path, gpus: list[str]) -> Outcome:
    out, rows = check_trials(work, gpus, expect=4, precision="bf16")
    overlap = max_overlap(rows)
    out.numbers["max_trials_at_once"] = overlap
    devices = {row.get("devices") for row in rows}
    if len(devices) > 1:
        out.problems.append(f"the trials trained on different GPUs ({', '.join(sorted(map(str, devices)))})")
    if rows and overlap < 2:
        out.problems.append(f"at most {overlap} trial trained at a time: the GPU was not shared")
    out.summary = f"{_finished(rows)} on {_where(rows)}, bf16; up to {overlap} training at once"
    return out


def check_ladder(work: Path, gpus: list[str]) -> Outcome:
    out, rows = check_trials(work, gpus)
    if len(rows) < 2 and not out.problems:
        out.problems.append(f"{len(rows)} trial(s): the demo ladder has a pretraining and 7 rungs")
    report = work / "report"
    files = sorted(p.name for p in report.rglob("*") if p.is_file()) if report.is_dir() else []
    if "index.html" not in files:
        out.problems.append("`ablate report` wrote no index.html")
    out.numbers["report_files"] = len(files)
    out.numbers["mIoU"] = {row["name"]: row.get("mIoU") for row in rows}
    last = rows[-1] if rows else {}
    out.summary = (f"{_finished(rows)} on {_where(rows)}; report: {len(files)} files; "
                   f"{last.get('name', '-')} mIoU {_miou([last]) if last else '-'}")
    return out


def check_ddp(work: Path, gpus: list[str]) -> Outcome:
    out, rows = check_trials(work, gpus, expect=1)
    for row in rows:
        devices = [d for d in row.get("devices", "").split(",") if d]
        if row.get("world_size") != "2" or len(set(devices)) != 2:
            out.problems.append(f"trial {row['name']}: world size {row.get('world_size')!r} on {devices}, "
                                "expected 2 workers on 2 GPUs")
        if row.get("sync_bn_fallback"):
            out.problems.append(f"trial {row['name']}: SyncBN replaced ({row['sync_bn_fallback']})")
    configs = list((work / "runs").rglob("config.py")) if (work / "runs").is_dir() else []
    if rows and not any("SyncBN" in p.read_text(errors="replace") for p in configs):
        out.problems.append("the trained config has no SyncBN")
    out.summary = f"{_finished(rows)} on {_where(rows)} (2 workers, nccl, SyncBN)"
    return out


# -- benchmarks -------------------------------------------------------------------------------------
def check_latency(work: Path, gpus: list[str]) -> Outcome:
    out = Outcome()
    doc = _read_json(work / "results" / "latency.json", "bench/latency.py result", out)
    if doc is None:
        return out
    if doc.get("device") not in gpus:
        out.problems.append(f"timed on {doc.get('device')!r}, not on the GPU")
    cells = []
    for model, row in doc.get("results", {}).items():
        ms = {p: row.get(p, {}).get("median_ms") for p in LATENCY_PRECISIONS}
        for precision in LATENCY_PRECISIONS:
            if ms[precision] is None:
                out.problems.append(f"{model} {precision}: {row.get(precision, {}).get('error', 'not measured')}")
        out.numbers[model] = {f"{p}_ms": ms[p] for p in LATENCY_PRECISIONS}
        cells.append(f"{model} " + " / ".join("-" if v is None else f"{v:.1f}" for v in ms.values()))
    if not cells:
        out.problems.append("no model was timed")
    out.numbers["result"] = doc
    out.summary = "median ms, fp32 / bf16: " + "; ".join(cells)
    return out


def _met(value: Optional[float], target: float) -> Optional[bool]:
    return None if value is None else value >= target


def check_throughput(work: Path, gpus: list[str]) -> Outcome:
    from gpu_throughput import mfu

    out = Outcome()
    doc = _read_json(work / "results" / "gpu_throughput.json", "bench/gpu_throughput.py result", out)
    if doc is None:
        return out
    if doc.get("skipped"):
        out.problems.append(f"skipped: {doc['skipped']}")
        return out
    peak = doc.get("peak_tflops") or {}
    ratios, speedups, cells = [], [], []
    for model, res in doc.get("results", {}).items():
        figures: dict[str, Any] = {}
        for precision in THROUGHPUT_PRECISIONS:
            r = res.get(precision, {})
            through_ablate, bare = r.get("ablate", {}), r.get("bare", {})
            if through_ablate.get("state") != "FINISHED" or through_ablate.get("images_per_s") is None:
                out.problems.append(f"{model} {precision} through ablate: {through_ablate.get('state')} "
                                    f"{through_ablate.get('error') or ''}".rstrip())
            if bare.get("rc") != 0 or bare.get("images_per_s") is None:
                out.problems.append(f"{model} {precision} bare Runner: exit {bare.get('rc')}")
            ratio = r.get("ablate_over_bare_images_per_s")
            ratios.append(ratio)
            figures[precision] = {"ablate_images_per_s": through_ablate.get("images_per_s"),
                                  "bare_images_per_s": bare.get("images_per_s"), "ablate_over_bare": ratio,
                                  "mfu": mfu(res.get("forward_gflops_at_crop"), through_ablate.get("images_per_s"),
                                             peak.get(precision))}
        fp32, bf16 = (figures[p]["ablate_images_per_s"] for p in THROUGHPUT_PRECISIONS)
        speedup = round(bf16 / fp32, 3) if fp32 and bf16 else None
        speedups.append(speedup)
        figures["bf16_over_fp32"] = speedup
        out.numbers[model] = figures
        cells.append(f"{model} ablate/bare {figures['fp32']['ablate_over_bare'] or '-'} (fp32), "
                     f"{figures['bf16']['ablate_over_bare'] or '-'} (bf16), bf16 x{speedup or '-'}")
    known_ratios = [r for r in ratios if r is not None]
    known_speedups = [s for s in speedups if s is not None]
    out.numbers["targets"] = {
        f"ablate_over_bare >= {RATIO_TARGET}": _met(min(known_ratios) if known_ratios else None, RATIO_TARGET),
        f"bf16_over_fp32 >= {BF16_TARGET}": _met(min(known_speedups) if known_speedups else None, BF16_TARGET),
    }
    out.numbers["lowest_ablate_over_bare"] = min(known_ratios) if known_ratios else None
    out.numbers["lowest_bf16_over_fp32"] = min(known_speedups) if known_speedups else None
    out.numbers["result"] = doc
    out.summary = "; ".join(cells) or "no model measured"
    return out


def check_env(work: Path, gpus: list[str]) -> Outcome:
    out = Outcome()
    probe = _read_json(work / "probe.json", "probe of the machine (the install did not get that far)", out)
    if probe is None:
        return out
    out.numbers = probe
    if probe.get("torch_error"):
        out.problems.append(f"torch does not import: {probe['torch_error']}")
    elif not probe.get("cuda_available"):
        out.problems.append(f"torch {probe.get('torch')} (CUDA build: {probe.get('cuda') or 'none'}) sees no GPU")
    if probe.get("ablate_error"):
        out.problems.append(f"ablate does not import: {probe['ablate_error']}")
    names = ", ".join(probe.get("gpus") or []) or "no GPU"
    out.summary = f"torch {probe.get('torch')} (CUDA {probe.get('cuda') or 'none'}) sees {names}"
    return out


CHECKS: dict[str, Callable[[Path, list[str]], Outcome]] = {
    "env": check_env, "smoke": check_smoke, "fractional": check_fractional, "latency": check_latency,
    "throughput": check_throughput, "ladder": check_ladder, "ddp": check_ddp,
}
