"""Training throughput (images/s) of SegFormer-B0 and B2 on one GPU: through `ablate run`
versus the same resolved config under plain mmengine (`Runner.from_cfg(cfg).train()`, what
mmseg's tools/train.py does), in fp32 and with AMP (`optim_wrapper.type: AmpOptimWrapper`).

Full-size synthetic KITTI-like frames (375x1242, generated if missing), the configs' own crop
(375x750), batch 2. Steady-state throughput comes from mmengine's own per-iteration timer in each
run's vis_data/scalars.json (both paths write it), after a warm-up; the trial's wall time is
reported too.

Without CUDA the GPU figures are skipped; a tiny CPU run of the same plumbing (B0, fp32) is
recorded instead so the script itself stays tested.

    .venv/bin/python bench/gpu_throughput.py [--iters 300] [--keep DIR]
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
    ABLATE, B0_CONFIG, B2_CONFIG, PY, REPO, SYNTH_KITTI, Figure, bench_env, fmt, load, load_note, parse_json_stdout,
    ratio, scratch, sqlite_uri, timed_run, tiny_data, write_result, write_study,
)

PRECISIONS = {"fp32": {}, "amp": {"optim_wrapper.type": "AmpOptimWrapper"}}


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
    out: dict[str, Any] = {}
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300)
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
            write_result("gpu_throughput", {
                "device": torch.cuda.get_device_name(0),
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
def summary(d: dict[str, Any]) -> list[Figure]:
    if d.get("skipped"):
        return [Figure("GPU images/s, ablate vs bare Runner (B0/B2, fp32/AMP)", f"skipped: {d['skipped']}")]
    return [Figure(f"GPU {model} {precision}: ablate / bare images/s",
                   fmt(res.get(precision, {}).get("ablate_over_bare_images_per_s"), 3))
            for model, res in d["results"].items() for precision in PRECISIONS]


def render(d: dict[str, Any]) -> str:
    out = ["## GPU training throughput (`bench/gpu_throughput.py`)", ""]
    if d.get("skipped"):
        out.append(f"Skipped: {d['skipped']}. On a CUDA machine the script measures images/s of SegFormer-B0 and B2 "
                   "training through `ablate run` and through a bare mmengine Runner on the same resolved config, "
                   "fp32 and AMP.")
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
    out += [f"Device: {d['device']}; {setup}.", "", "| model | precision | ablate images/s | bare images/s | ratio |",
            "|---|---|---:|---:|---:|"]
    for model, res in d["results"].items():
        for precision in PRECISIONS:
            r = res.get(precision, {})
            out.append(f"| {model} | {precision} | {fmt(r.get('ablate', {}).get('images_per_s'))} | "
                       f"{fmt(r.get('bare', {}).get('images_per_s'))} | {fmt(r.get('ablate_over_bare_images_per_s'), 3)} |")
    out += ["", load_note(d)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
