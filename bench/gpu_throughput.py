"""Training throughput (images/s) of SegFormer-B0 and B2 on one GPU: through `ablate run`
versus the same resolved config under plain mmengine (`Runner.from_cfg(cfg).train()`, what
mmseg's tools/train.py does), in fp32 and in bf16 (`AmpOptimWrapper` with `dtype=bfloat16`).

MFU (model FLOPs utilisation) = 3 x forward FLOPs of one training crop x images/s / the GPU's
peak: a training step is about one forward and a backward of twice its cost. Forward FLOPs are
mmengine's counted multiply-adds at the crop, times 2; the peak is the GPU's dense datasheet
figure for the precision (bf16 tensor cores; plain FP32 for fp32), looked up by device name
(`--peak-tflops FP32,BF16` for a GPU not in the table).

Full-size synthetic KITTI-like frames (375x1242, generated if missing), the configs' own crop
(375x750), batch 2. Steady-state throughput comes from mmengine's own per-iteration timer in each
run's vis_data/scalars.json (both paths write it), after a warm-up; the trial's wall time is
reported too.

Without CUDA the GPU figures are skipped; a tiny CPU run of the same plumbing (B0, fp32) is
recorded instead so the script itself stays tested.

    .venv/bin/python bench/gpu_throughput.py [--iters 300] [--keep DIR] [--peak-tflops 67,989.4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ABLATE,
    B0_CONFIG,
    B2_CONFIG,
    PY,
    REPO,
    SYNTH_KITTI,
    Figure,
    bench_env,
    fmt,
    load,
    load_note,
    parse_json_stdout,
    ratio,
    scratch,
    sqlite_uri,
    timed_run,
    tiny_data,
    write_result,
    write_study,
)

PRECISIONS = {"fp32": {}, "bf16": {"optim_wrapper.type": "AmpOptimWrapper", "+optim_wrapper.dtype": "bfloat16"}}
# Dense (no sparsity) peak TFLOP/s by device name, most specific name first: plain FP32, BF16 tensor cores.
PEAK_TFLOPS = [
    ("H100 PCIe", {"fp32": 51.2, "bf16": 756.0}),
    ("H100 NVL", {"fp32": 60.0, "bf16": 835.0}),
    ("H100", {"fp32": 66.9, "bf16": 989.4}),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("H200", {"fp32": 66.9, "bf16": 989.4}),
    ("A100", {"fp32": 19.5, "bf16": 312.0}),
    ("L40S", {"fp32": 91.6, "bf16": 362.1}),
    ("L4", {"fp32": 30.3, "bf16": 121.0}),
    ("A10", {"fp32": 31.2, "bf16": 125.0}),
]
SHAPE_CROP = (375, 750)  # the configs' training crop


def peak_tflops(device: str) -> Optional[dict[str, float]]:
    return next((dict(peak) for name, peak in PEAK_TFLOPS if name in device), None)


def mfu(gflops: Optional[float], images_per_s: Optional[float], peak: Optional[float]) -> Optional[float]:
    """3 x forward FLOPs (2 per counted multiply-add) x images/s over the peak."""
    if not gflops or not images_per_s or not peak:
        return None
    return round(3 * 2 * gflops * 1e9 * images_per_s / (peak * 1e12), 4)


def study_doc(name: str, base: Path, data: dict[str, Any], budget: dict[str, Any], precisions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "base": str(base),
        "data": data,
        "budget": budget,
        "seeds": [0],
        "trials": [{"name": p, "overrides": PRECISIONS[p]} for p in precisions],
    }


def steady_throughput(work_dir: Path, batch: int, warmup: int) -> Optional[dict[str, Any]]:
    """images/s from the median logged iteration time past `warmup` iterations."""
    files = sorted(work_dir.glob("*/vis_data/scalars.json"))
    if not files:
        return None
    times = []
    for line in files[-1].read_text().splitlines():
        row = json.loads(line)
        if "time" in row and "loss" in row and row.get("step", 0) > warmup:
            times.append(float(row["time"]))
    if not times:
        return None
    median = statistics.median(times)
    return {"iter_s": round(median, 5), "images_per_s": round(batch / median, 3), "samples": len(times)}


def measure_model(tmp: Path, label: str, base: Path, data: dict[str, Any], budget: dict[str, Any],
                  precisions: list[str], warmup: int, env: dict[str, str]) -> dict[str, Any]:
    from ablate.study import load_study, plan_trials

    root = tmp / label
    root.mkdir(parents=True)
    study_path = write_study(root / "study.yaml", study_doc(f"bench_gpu_{label}", base, data, budget, precisions))
    specs = {s.name: s for s in plan_trials(load_study(study_path), root / "plan")}
    batch = budget["batch_size"]
    out: dict[str, Any] = {"forward_gflops_at_crop": crop_gflops(next(iter(specs.values())), budget)}
    # ablate: one command trains both precisions (one GPU: one after the other)
    run = timed_run([ABLATE, "run", study_path, "--tracking-uri", sqlite_uri(root / "mlruns.db"),
                     "--runs-dir", root / "runs", "--json"], env=env, log=root / "ablate.log")
    trials = {t["name"]: t for t in parse_json_stdout(run["stdout"])["trials"]} if run["rc"] == 0 else {}
    for precision in precisions:
        spec = specs[precision]
        trial = trials.get(precision, {})
        through_ablate = steady_throughput(root / "runs" / spec.study / spec.trial_id, batch, warmup)
        config = root / f"{precision}_config.py"
        config.write_text(spec.config_text)
        bare = timed_run([PY, REPO / "bench" / "_bare_train.py", config, root / f"bare-{precision}"], env=env,
                         log=root / f"bare-{precision}.log")
        bare_inner = json.loads(bare["stdout"].strip().splitlines()[-1]) if bare["rc"] == 0 else {}
        through_bare = steady_throughput(root / f"bare-{precision}", batch, warmup)
        out[precision] = {
            "ablate": {"state": trial.get("state"), "error": trial.get("error"), "trial_duration_s": trial.get("duration_s"),
                       **(through_ablate or {})},
            "bare": {"rc": bare["rc"], "train_s": bare_inner.get("train_s"), "wall_s": bare["wall_s"],
                     "device": bare_inner.get("device"), **(through_bare or {}),
                     **({"stderr_tail": bare["stderr_tail"][-800:]} if bare["rc"] else {})},
            "ablate_over_bare_images_per_s": ratio((through_ablate or {}).get("images_per_s"),
                                                   (through_bare or {}).get("images_per_s")),
            "load": load(),
        }
    out["ablate_command_wall_s"] = run["wall_s"]
    if run["rc"] != 0:
        out["ablate_stderr_tail"] = run["stderr_tail"][-1500:]
    return out


def crop_gflops(spec: Any, budget: dict[str, Any]) -> float:
    """Counted forward GFLOPs (multiply-adds) of one training crop of the trial's model."""
    from mmengine.config import Config

    from ablate.analysis import cached_flops

    crop = tuple(budget.get("crop") or SHAPE_CROP)
    return cached_flops(Config.fromstring(spec.config_text, file_format=".py"), crop[0], crop[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--peak-tflops", default="", help="FP32,BF16 dense peak TFLOP/s of the GPU")
    parser.add_argument("--warmup", type=int, default=50, help="iterations left out of the steady state")
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    with scratch("gpu", args.keep) as tmp:
        env = bench_env(ABLATE_CACHE_DIR=str(tmp / "cache"))
        os.environ["ABLATE_CACHE_DIR"] = env["ABLATE_CACHE_DIR"]
        if cuda:
            data = {"root": str(SYNTH_KITTI), "synth": {"train": 150, "test": 50, "height": 375, "width": 1242, "seed": 0}}
            budget = {"iters": args.iters, "val_interval": args.iters, "batch_size": 2, "log_interval": 10, "workers": 2}
            results = {label: measure_model(tmp, label, base, data, budget, list(PRECISIONS), args.warmup, env)
                       for label, base in (("segformer_b0", B0_CONFIG), ("segformer_b2", B2_CONFIG))}
            device = torch.cuda.get_device_name(0)
            given = [float(v) for v in args.peak_tflops.split(",")] if args.peak_tflops else None
            write_result("gpu_throughput", {
                "device": device,
                "peak_tflops": dict(zip(("fp32", "bf16"), given)) if given else peak_tflops(device),
                "setup": {"data": "synthetic 375x1242, config crop 375x750", "batch_size": 2, "iters": args.iters,
                          "warmup_iters": args.warmup, "measure": "median of mmengine's logged iteration time"},
                "results": results,
            })
            return 0
        data = {"root": str(tiny_data(tmp / "tiny")), "image_scale": [192, 64]}
        budget = {"iters": 6, "val_interval": 6, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}
        smoke = measure_model(tmp, "segformer_b0_cpu", B0_CONFIG, data, budget, ["fp32"], 2, env)
    write_result("gpu_throughput", {
        "skipped": "no CUDA device",
        "cpu_plumbing_check": {"note": "B0 fp32, tiny data, 6 iterations on CPU: checks the script, not a figure",
                               **smoke},
    })
    return 0


# -- RESULTS.md section ---------------------------------------------------------------------------
def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def summary(d: dict[str, Any]) -> list[Figure]:
    if d.get("skipped"):
        return [Figure("GPU images/s and MFU, ablate vs bare Runner (B0/B2, fp32/bf16)", f"skipped: {d['skipped']}")]
    figures = [Figure(f"GPU {model} {precision}: ablate / bare images/s",
                      fmt(res.get(precision, {}).get("ablate_over_bare_images_per_s"), 3))
               for model, res in d["results"].items() for precision in PRECISIONS]
    peak = d.get("peak_tflops") or {}
    figures += [Figure(f"GPU {model} bf16 training MFU (ablate)",
                       _percent(mfu(res.get("forward_gflops_at_crop"), res.get("bf16", {}).get("ablate", {}).get("images_per_s"),
                                    peak.get("bf16"))))
                for model, res in d["results"].items()]
    return figures


def render(d: dict[str, Any]) -> str:
    out = ["## GPU training throughput (`bench/gpu_throughput.py`)", ""]
    if d.get("skipped"):
        out.append(f"Skipped: {d['skipped']}. On a CUDA machine the script measures images/s of SegFormer-B0 and B2 "
                   "training through `ablate run` and through a bare mmengine Runner on the same resolved config, "
                   "fp32 and bf16 (AMP), and the MFU of each: 3 x forward FLOPs x images/s over the GPU's peak.")
        smoke = d.get("cpu_plumbing_check")
        if smoke:
            fp = smoke.get("fp32", {})
            out += ["", f"Plumbing check on the CPU ({smoke['note']}): ablate "
                    f"{fmt(fp.get('ablate', {}).get('images_per_s'))} images/s, bare "
                    f"{fmt(fp.get('bare', {}).get('images_per_s'))} images/s (ratio "
                    f"{fmt(fp.get('ablate_over_bare_images_per_s'), 3)}; trial state {fp.get('ablate', {}).get('state')})."]
        out += ["", load_note(d)]
        return "\n".join(out)
    setup = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in d["setup"].items())
    peak = d.get("peak_tflops") or {}
    where = (f"peak {peak.get('fp32')} (fp32) / {peak.get('bf16')} (bf16) dense TFLOP/s" if peak
             else "peak unknown for this GPU (pass --peak-tflops): no MFU")
    out += [f"Device: {d['device']}; {setup}. MFU = 3 x 2 x counted forward GFLOPs (multiply-adds) of one crop x "
            f"images/s / peak; {where}.", "",
            "| model | precision | ablate images/s | bare images/s | ratio | forward GFLOPs/crop | ablate MFU | bare MFU |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for model, res in d["results"].items():
        gflops = res.get("forward_gflops_at_crop")
        for precision in PRECISIONS:
            r = res.get(precision, {})
            ablate_ips, bare_ips = r.get("ablate", {}).get("images_per_s"), r.get("bare", {}).get("images_per_s")
            out.append(f"| {model} | {precision} | {fmt(ablate_ips)} | {fmt(bare_ips)} | "
                       f"{fmt(r.get('ablate_over_bare_images_per_s'), 3)} | {fmt(gflops, 1)} | "
                       f"{_percent(mfu(gflops, ablate_ips, peak.get(precision)))} | "
                       f"{_percent(mfu(gflops, bare_ips, peak.get(precision)))} |")
    out += ["", load_note(d)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
