"""Run every benchmark, then regenerate bench/RESULTS.md from bench/results/*.json.

Each benchmark is its own process (one failing or timing out does not stop the others) and
writes bench/results/<name>.json; this script only runs them, records how each went in
bench/results/run_all.json, and renders the markdown from whatever JSON is there.

    .venv/bin/python bench/run_all.py                 # `make bench`
    .venv/bin/python bench/run_all.py --only packing,cached_rerun
    .venv/bin/python bench/run_all.py --render-only   # just rewrite RESULTS.md

The machine may be shared: before each benchmark it waits (up to --quiet-wait seconds) for the
1-minute load average to drop under --quiet-load, and every figure carries the load it saw.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, REPO, RESULTS, bench_env, load  # noqa: E402

# name -> time limit (s); run in this order (cheap ones first).
BENCHMARKS: dict[str, int] = {
    "packing": 600,
    "cached_rerun": 900,
    "hpo_pruning": 1200,
    "overhead": 1800,
    "demo_wall": 2400,
    "gpu_throughput": 3600,
}
OUT = REPO / "bench" / "RESULTS.md"
PACKAGES = ["torch", "mmsegmentation", "mmengine", "mmcv-lite", "mmcv", "ray", "mlflow", "optuna", "numpy"]


# -- running -----------------------------------------------------------------------------------
def wait_quiet(limit_s: float, threshold: float) -> dict[str, Any]:
    start = time.time()
    while os.getloadavg()[0] > threshold and time.time() - start < limit_s:
        time.sleep(5)
    return {"waited_s": round(time.time() - start, 1), "load_at_start": load()}


def run_one(name: str, limit: int, quiet_wait: float, quiet_load: float) -> dict[str, Any]:
    waited = wait_quiet(quiet_wait, quiet_load)
    print(f"== {name} (load {waited['load_at_start']['load1']}, waited {waited['waited_s']} s)", flush=True)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with (logs / f"{name}.log").open("w") as log:
            done = subprocess.run([str(PY), str(REPO / "bench" / f"{name}.py")], cwd=REPO, env=bench_env(),
                                  stdout=log, stderr=subprocess.STDOUT, timeout=limit, check=False)
        rc: Optional[int] = done.returncode
    except subprocess.TimeoutExpired:
        rc = None
    wall = time.perf_counter() - start
    tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
    status = "ok" if rc == 0 else ("timeout" if rc is None else f"exit {rc}")
    print(f"   {status} in {wall:.0f} s", flush=True)
    return {"status": status, "wall_s": round(wall, 1), **waited, "load_at_end": load(),
            **({"log_tail": tail} if rc != 0 else {})}


# -- machine -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    gpu = "none"
    try:
        probe = subprocess.run([str(PY), "-c", "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"],
                               capture_output=True, text=True, timeout=120, env=bench_env())
        gpu = probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu, "cores_reported": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": ram_gib, "gpu": gpu, "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(), "versions": versions,
    }


# -- rendering ---------------------------------------------------------------------------------
def read(name: str) -> Optional[dict[str, Any]]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def met(flag: Optional[bool]) -> str:
    return {True: "yes", False: "**no**", None: "-"}[flag]


def load_note(doc: dict[str, Any]) -> str:
    loads = doc.get("load_after") or {}
    return f"load average after the run: {loads.get('load1')} / {loads.get('load5')} / {loads.get('load15')} (1/5/15 min)"


def section_overhead(d: dict[str, Any], rows: list[list[str]]) -> list[str]:
    setup, b = d["setup"], d["breakdown"]
    rows.append(["ablate run / bare mmengine Runner, wall time of one "
                 f"{d['bare_runner_work_s']:.0f} s B0 trial (min of {setup['repeats']})",
                 fmt(d["ratio"], 3), "<= 1.03", met(d["target_met"])])
    rows.append(["same, projected to a 60 s trial (measured absolute costs)",
                 fmt(d["projected_ratio_60s_single_trial"], 3), "<= 1.03",
                 met(d["projected_ratio_60s_single_trial"] <= d["target_ratio"])])
    rows.append(["per-trial overhead only, 60 s trial (fixed costs amortised over a study)",
                 fmt(d["projected_ratio_60s_trial_amortised"], 3), "<= 1.03",
                 met(d["projected_ratio_60s_trial_amortised"] <= d["target_ratio"])])
    bare_runs = ", ".join(f"{r['wall_s']:.1f}" for r in d["bare_runs"])
    ablate_runs = ", ".join(f"{r['wall_s']:.1f} (trial {r['trial_duration_s']:.1f})" for r in d["ablate_runs"])
    same_miou = {r.get("mIoU") for r in d["bare_runs"]} | {r.get("mIoU") for r in d["ablate_runs"]}
    out = [
        "## 1. Per-trial overhead of `ablate run` (`bench/overhead.py`)",
        "",
        f"One SegFormer-B0 trial ({setup['iters']} iterations, batch {setup['batch_size']}, "
        f"{setup['crop'][0]}x{setup['crop'][1]} crops of the synthetic set resized to "
        f"{setup['image_scale_wh'][0]}x{setup['image_scale_wh'][1]}, validation once at the end), "
        "trained from the same resolved config by a bare `Runner.from_cfg(cfg).train()` process and by "
        "`ablate run STUDY --json` (fresh store and runs dir each time; FLOPs cache warm). "
        f"Data: `{Path(setup['data']).name}` ({'reused' if setup['data_reused'] else 'generated'}).",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| bare process wall, runs | {bare_runs} |",
        f"| ablate command wall, runs | {ablate_runs} |",
        f"| bare wall (min) | {fmt(d['bare_wall_s'], 1)} |",
        f"| ablate wall (min) | {fmt(d['ablate_wall_s'], 1)} |",
        f"| difference | {fmt(d['difference_s'], 1)} |",
        f"| bare: Runner build + train (+ validation) in process | {fmt(d['bare_runner_work_s'], 1)} |",
        f"| ablate: trial duration (`ablate.duration_s`, inside the Ray worker) | {fmt(d['trial_duration_s'], 1)} |",
        f"| fixed per command (ablate wall - trial duration) | {fmt(d['fixed_per_command_s'], 1)} |",
        f"| of which beyond the bare process's own start-up | {fmt(d['fixed_per_command_extra_s'], 1)} |",
        f"| per trial (trial duration - bare Runner work) | {fmt(d['per_trial_overhead_s'], 1)} |",
        "",
        f"Both paths reach the same mIoU ({', '.join(fmt(m) for m in sorted(x for x in same_miou if x is not None))}): "
        "they train the same thing.",
        "",
        "Fixed costs, each timed alone in a fresh process (`bench/_probe.py`):",
        "",
        "| cost | seconds |",
        "|---|---:|",
        f"| import `ablate.cli` (torch through the mmcv bridge, typer, rich) | {fmt(b['import_ablate_cli_s'])} |",
        f"| planning the study, FLOPs cache cold / warm | {fmt(b['plan_cold_flops_cache_s'])} / {fmt(b['plan_warm_flops_cache_s'])} |",
        f"| import MLflow | {fmt(b['mlflow_import_s'])} |",
        f"| create a fresh sqlite MLflow store (schema migrations) | {fmt(b['mlflow_store_creation_s'])} |",
        f"| `ray.init` (embedded local Ray) | {fmt(b['ray_init_s'])} |",
        f"| first Ray task: worker start + its imports (ablate, mmseg, MLflow) | {fmt(b['ray_first_worker_s'])} "
        f"(imports {fmt(b['ray_worker_imports_s'])}) |",
        f"| `ray.shutdown` | {fmt(b['ray_shutdown_s'])} |",
        f"| FLOPs count (B0 at the image size, fresh model; repeat) | "
        f"{fmt(b['flops_count_in_trial_s'])} ({fmt(b['flops_count_repeat_s'])}) |",
        "",
    ]
    parts = {
        "MLflow child run + params (`_prepare_run`)": b.get("trial_mlflow_run_and_params_s"),
        "FLOPs count on the built model (`_log_complexity`)": b.get("trial_flops_count_on_runner_model_s"),
        "3 saved predictions (`save_predictions`)": b.get("trial_save_predictions_s"),
        "artifact logging (predictions, config)": b.get("trial_log_artifacts_s"),
        "20 metric batches (MLflowTrialHook, 400 iterations / 20)": b.get("trial_mlflow_20_metric_batches_s"),
    }
    if any(v is not None for v in parts.values()):
        known = sum(v for v in parts.values() if v is not None)
        out += ["Per-trial steps `execute_trial` adds around `runner.train()`, timed on a built Runner "
                "(`bench/_probe.py trial`):", "", "| step | seconds |", "|---|---:|"]
        out += [f"| {k} | {fmt(v)} |" for k, v in parts.items()]
        out += [f"| sum | {fmt(known)} |",
                f"| rest of the measured per-trial overhead (MLflow clients/stores opened in the worker and the hook, "
                f"config re-read, log files, final tags; and noise) | {fmt(d['per_trial_overhead_s'] - known)} |", ""]
    out += [load_note(d), ""]
    return out


def section_packing(d: dict[str, Any], rows: list[list[str]]) -> list[str]:
    lb = d["lower_bound"]
    tc, noisy, fo, sim, many = d["true_costs"], d["noisy_costs"], d["file_order"], d["simulated"], d["simulated_500_instances"]
    rows.append([f"packing: makespan / max(sum/4, longest chain), {d['setup']['trials']} trials on 4 GPUs "
                 f"(dispatcher: {d['dispatcher_rule']})", fmt(d["ratio"], 3), "<= 1.10", met(d["target_met"])])
    rows.append(["packing: the same trials in file order (the ordering makes the study "
                 f"{fmt(d['ordering_gain'], 3)}x shorter)", fmt(fo["ratio"], 3), "-", "-"])
    rows.append(["packing, simulated on 500 other instances: share within 1.10, dispatcher's rule "
                 "(plain longest first)", f"{many['dispatcher']['share_within_1.10'] * 100:.1f}% "
                 f"({many['longest_first_own_cost']['share_within_1.10'] * 100:.1f}%)", "-", "-"])
    out = [
        "## 2. Packing trials onto 4 GPUs (`bench/packing.py`)",
        "",
        f"{d['setup']['trials']} sleep-only trials (durations {min(d['setup']['durations_s'])}-{max(d['setup']['durations_s'])} s "
        f"from seed {d['setup']['seed']}, total {lb['total_s']} s; t00 and t01 each have three dependents) through "
        "`RayDispatcher` on a local Ray with 4 logical GPUs (workers started beforehand). "
        f"Lower bound: max(total/4 = {lb['total_over_gpus_s']} s, longest chain = {lb['longest_chain_s']} s) = {lb['bound_s']} s. "
        f"The dispatcher's ordering rule: {d['dispatcher_rule']}.",
        "",
        "| costs given to the dispatcher | makespan (s) | / bound | GPU busy | simulated (no Ray) |",
        "|---|---:|---:|---:|---:|",
        f"| true durations | {fmt(tc['makespan_s'])} | {fmt(tc['ratio'], 3)} | {fmt(tc['gpu_busy_share'] * 100, 1)}% | {fmt(sim['dispatcher_true_costs_s'])} |",
        f"| durations x lognormal(0, 0.3) | {fmt(noisy['makespan_s'])} | {fmt(noisy['ratio'], 3)} | {fmt(noisy['gpu_busy_share'] * 100, 1)}% | {fmt(sim['dispatcher_noisy_costs_s'])} |",
        f"| none (all 0: file order) | {fmt(fo['makespan_s'])} | {fmt(fo['ratio'], 3)} | {fmt(fo['gpu_busy_share'] * 100, 1)}% | {fmt(sim['file_order_s'])} |",
        f"| (plain longest first by own cost; simulated only) | - | {fmt(sim['longest_first_own_cost_ratio'], 3)} | - | {fmt(sim['longest_first_own_cost_s'])} |",
        "",
        f"Measured - simulated is Ray's own latency ({fmt(tc['makespan_s'] - sim['dispatcher_true_costs_s'], 2)} s over the "
        "true-cost run). The same rules simulated on 500 other seeded instances (same shape: 16 trials, 1-6 s, two roots "
        "with three dependents each):",
        "",
        "| rule | mean ratio | p95 | max | instances within 1.10 |",
        "|---|---:|---:|---:|---:|",
    ]
    for rule, label in (("dispatcher", f"the dispatcher's ({d['dispatcher_rule']})"),
                        ("longest_first_own_cost", "longest first by own cost"), ("file_order", "file order")):
        m = many[rule]
        out.append(f"| {label} | {fmt(m['mean'], 3)} | {fmt(m['p95'], 3)} | {fmt(m['max'], 3)} | {fmt(m['share_within_1.10'] * 100, 1)}% |")
    out += ["", load_note(d), ""]
    return out


def section_cached(d: dict[str, Any], rows: list[list[str]]) -> list[str]:
    rows.append(["cached rerun of a 3-trial study: seconds", fmt(d["rerun_s"], 2), "<= 5", met(d["rerun_s"] <= d["target_s"])])
    rows.append(["cached rerun: trials retrained", str(d["retrained"]), "0", met(d["retrained"] == 0)])
    stages = d["breakdown"].get("stages", {})
    out = [
        "## 3. Rerunning a finished study (`bench/cached_rerun.py`)",
        "",
        f"`ablate run` of a 3-trial B0 study on the tiny synthetic set took {fmt(d['first_run_s'], 1)} s the first time "
        f"({', '.join(d['first_run_states'])}); the reruns took "
        f"{', '.join(fmt(r['wall_s']) + ' s' for r in d['reruns'])} and retrained {d['retrained']} trial(s).",
        "",
        f"The same rerun through the CLI's `main` with `gc.freeze()` registered to run after every other atexit handler "
        f"(a what-if: it spares the collector's final pass over the torch/MLflow object graph at interpreter exit): "
        f"{fmt(d.get('rerun_with_gc_freeze_at_exit_s'))} s.",
        "",
        "Where a fully cached rerun goes (`bench/_rerun_stages.py`: the CLI's steps in a fresh process, "
        f"{fmt(stages.get('process_wall_s'))} s in all):",
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    if stages.get("error"):
        out.append(f"| (the step-by-step run failed: {stages['error'].strip().splitlines()[-1][:200]}) | - |")
    if stages.get("process_startup_and_exit_s") is not None:
        out.append(f"| interpreter start-up and exit (atexit handlers, teardown) | {fmt(stages['process_startup_and_exit_s'])} |")
    for step, seconds in stages.get("stages", {}).items():
        out.append(f"| {step} | {fmt(seconds)} |")
    parts = stages.get("plan_parts", {})
    if parts:
        out += ["", "Inside load_study + plan_trials (cumulative seconds, calls):", "", "| function | seconds | calls |", "|---|---:|---:|"]
        out += [f"| {k} | {fmt(v[0], 3)} | {v[1]} |" for k, v in parts.items()]
    notable = d["breakdown"].get("profile_notable_cumulative_s", {})
    if notable:
        out += ["", f"cProfile of one whole rerun through the CLI ({fmt(d['breakdown'].get('profile_wall_s'))} s under the profiler; "
                "cumulative seconds, overlapping):", ""]
        out.append(", ".join(f"{k} {fmt(v)}" for k, v in notable.items()) + ".")
    out += ["", load_note(d), ""]
    return out


def section_hpo(d: dict[str, Any], rows: list[list[str]]) -> list[str]:
    m, n = d["median"], d["none"]
    rows.append(["HPO, 6 trials: trial-iterations median pruning / no pruning",
                 f"{m['trial_iterations']} / {n['trial_iterations']} ({fmt(d['iterations_ratio_median_vs_none'], 2)})", "-", "-"])
    rows.append(["HPO: best mIoU median pruning / no pruning", f"{fmt(m['best_mIoU'])} / {fmt(n['best_mIoU'])}", "-", "-"])
    s = d["setup"]
    out = [
        "## 4. Median pruning in `ablate tune` (`bench/hpo_pruning.py`)",
        "",
        f"{s['trials']} trials, {s['search']}, {s['sampler']} (the same learning rates in both: "
        f"{'yes' if s['same_lr_sequence_in_both'] else 'no'}), {s['iters']} iterations each, evaluated every "
        f"{s['val_interval']}, one trial at a time, on the tiny synthetic set. Iterations trained are the last step of "
        "each trial's MLflow loss history.",
        "",
        "| | median pruning | no pruning |",
        "|---|---:|---:|",
        f"| trial-iterations trained (of {m['planned_iterations']}) | {m['trial_iterations']} | {n['trial_iterations']} |",
        f"| trials pruned | {m['pruned']} | {n['pruned']} |",
        f"| best mIoU | {fmt(m['best_mIoU'])} | {fmt(n['best_mIoU'])} |",
        f"| wall time of the search (s) | {fmt(m['wall_s'], 1)} | {fmt(n['wall_s'], 1)} |",
        "",
        "| trial | lr | median: state, iters, mIoU | none: state, iters, mIoU |",
        "|---:|---:|---|---|",
    ]
    for a, b in zip(m["trials"], n["trials"]):
        out.append(f"| {a['optuna_trial']} | {a['lr']:.2e} | {a['state']}, {a['iters_trained']}, {fmt(a['mIoU'])} | "
                   f"{b['state']}, {b['iters_trained']}, {fmt(b['mIoU'])} |")
    missing = m.get("pruned_missing_last_eval")
    if missing:
        out += ["", f"{missing} of the {m['pruned']} pruned trials lack, in MLflow, the evaluation at the iteration they were "
                "pruned (Optuna has it); their mIoU above is the previous evaluation, or none. The pruning hook raises "
                "before MLflowTrialHook (lower priority) logs that evaluation."]
    if (d.get("wall_ratio_median_vs_none") or 0) > 0.9:
        out += ["", f"Wall time moves less than iterations ({fmt(d['wall_ratio_median_vs_none'], 2)} vs "
                f"{fmt(d['iterations_ratio_median_vs_none'], 2)}): these trials are seconds long, mostly fixed per-trial "
                "costs (worker, MLflow run, FLOPs count, predictions), so saved iterations are a small share of them."]
    out += ["", load_note(d), ""]
    return out


def section_demo(d: dict[str, Any], rows: list[list[str]]) -> list[str]:
    s = d["setup"]
    gen = d.get("data_generation")
    judged = d.get("total_with_data_generation_s") or d["total_s"]
    rows.append(["`make demo` (ladder demo run + report" + (", + generating its data" if gen else ", data reused") + "), seconds",
                 fmt(judged, 0), "<= 600", met(d["target_met"])])
    out = [
        "## 5. Demo wall time (`bench/demo_wall.py`)",
        "",
        f"What `make demo` runs: `ablate run {s['study']} --profile {s['profile']}` then `ablate report` on it, with a "
        "fresh sqlite store, runs dir and FLOPs cache, from the repository root, on all of this machine's cores. "
        f"Datasets present before: {', '.join(f'{k}: {v}' for k, v in s['datasets_present_before'].items())} "
        f"(so the run itself {'generated data' if s.get('data_generation_in_run') else 'reused them'}); "
        + ("generating both (`ablate data synth`, as on a fresh checkout) was timed apart and is added below."
           if gen else "data generation not timed."),
        "",
        "| step | seconds | exit |",
        "|---|---:|---:|",
        f"| ablate run | {fmt(d['run_s'], 1)} | {d['run_rc']} |",
        f"| ablate report ({d['report_files']} files) | {fmt(d['report_s'], 1)} | {d['report_rc']} |",
        f"| run + report | {fmt(d['total_s'], 1)} | |",
    ]
    if gen:
        out.append(f"| generating synth_kitti + synth_city | {fmt(gen['total_s'], 1)} | |")
        out.append(f"| total from a fresh checkout (venv installed) | {fmt(d['total_with_data_generation_s'], 1)} | |")
    if d.get("trials"):
        out += ["", "| trial | state | mIoU | seconds |", "|---|---|---:|---:|"]
        out += [f"| {t['name']} | {t['state']} | {fmt(t['mIoU'])} | {fmt(t['duration_s'], 1)} |" for t in d["trials"]]
    for key in ("run_stderr_tail", "report_stderr_tail"):
        if d.get(key):
            out += ["", f"`{key}`:", "", "```", d[key].strip()[-1200:], "```"]
    out += ["", load_note(d), ""]
    return out


def section_gpu(d: dict[str, Any], rows: list[list[str]]) -> list[str]:
    out = ["## 6. GPU training throughput (`bench/gpu_throughput.py`)", ""]
    if d.get("skipped"):
        rows.append(["GPU images/s, ablate vs bare Runner (B0/B2, fp32/AMP)", f"skipped: {d['skipped']}", "-", "-"])
        out.append(f"Skipped: {d['skipped']}. On a CUDA machine the script measures images/s of SegFormer-B0 and B2 "
                   "training through `ablate run` and through a bare mmengine Runner on the same resolved config, "
                   "fp32 and AMP.")
        smoke = d.get("cpu_plumbing_check")
        if smoke:
            fp = smoke.get("fp32", {})
            out.append("")
            out.append(f"Plumbing check on the CPU ({smoke['note']}): ablate {fmt(fp.get('ablate', {}).get('images_per_s'))} "
                       f"images/s, bare {fmt(fp.get('bare', {}).get('images_per_s'))} images/s "
                       f"(ratio {fmt(fp.get('ablate_over_bare_images_per_s'), 3)}; trial state {fp.get('ablate', {}).get('state')}).")
        out += ["", load_note(d), ""]
        return out
    out += [f"Device: {d['device']}; {d['setup']}", "", "| model | precision | ablate images/s | bare images/s | ratio |",
            "|---|---|---:|---:|---:|"]
    for model, res in d["results"].items():
        for precision in ("fp32", "amp"):
            r = res.get(precision, {})
            out.append(f"| {model} | {precision} | {fmt(r.get('ablate', {}).get('images_per_s'))} | "
                       f"{fmt(r.get('bare', {}).get('images_per_s'))} | {fmt(r.get('ablate_over_bare_images_per_s'), 3)} |")
            rows.append([f"GPU {model} {precision}: ablate / bare images/s", fmt(r.get("ablate_over_bare_images_per_s"), 3), "-", "-"])
    out += ["", load_note(d), ""]
    return out


SECTIONS: dict[str, Callable[[dict[str, Any], list[list[str]]], list[str]]] = {
    "overhead": section_overhead,
    "packing": section_packing,
    "cached_rerun": section_cached,
    "hpo_pruning": section_hpo,
    "demo_wall": section_demo,
    "gpu_throughput": section_gpu,
}


def missed_notes() -> list[str]:
    """One line per missed target, naming the largest measured contributors (from the JSON)."""
    notes: list[str] = []
    d = read("overhead")
    if d and not d.get("target_met"):
        b = d["breakdown"]
        ray = sum(b.get(k) or 0.0 for k in ("ray_init_s", "ray_first_worker_s", "ray_shutdown_s"))
        notes.append(
            f"- **overhead**: ablate/bare = {fmt(d['ratio'], 3)} on a {fmt(d['bare_runner_work_s'], 0)} s trial. "
            f"{fmt(d['fixed_per_command_s'], 1)} s of every command is fixed ({fmt(d['fixed_per_command_extra_s'], 1)} s more "
            f"than a bare process's start-up): embedded Ray {fmt(ray, 1)} s (init {fmt(b.get('ray_init_s'))}, first worker "
            f"with its imports {fmt(b.get('ray_first_worker_s'))}, shutdown {fmt(b.get('ray_shutdown_s'))}), a fresh MLflow "
            f"store {fmt(b.get('mlflow_store_creation_s'))} s, importing the CLI {fmt(b.get('import_ablate_cli_s'))} s and MLflow "
            f"{fmt(b.get('mlflow_import_s'))} s, planning {fmt(b.get('plan_warm_flops_cache_s'))} s. Inside the trial, "
            f"{fmt(d['per_trial_overhead_s'], 1)} s more than the bare Runner (FLOPs count "
            f"{fmt(b.get('trial_flops_count_on_runner_model_s'))} s, saved predictions {fmt(b.get('trial_save_predictions_s'))} s, "
            "the rest MLflow clients, logging and files), which alone gives "
            f"{fmt(d['projected_ratio_60s_trial_amortised'], 3)} on a 60 s trial.")
    d = read("cached_rerun")
    if d and not d.get("target_met"):
        stages = (d["breakdown"].get("stages") or {}).get("stages", {})
        top = sorted(((v, k) for k, v in stages.items() if "instrumenting" not in k), reverse=True)[:5]
        startup = (d["breakdown"].get("stages") or {}).get("process_startup_and_exit_s")
        notes.append(
            f"- **cached rerun**: {fmt(d['rerun_s'])} s for 0 trials trained; largest steps: "
            + ", ".join(f"{k} {fmt(v)} s" for v, k in top)
            + (f", interpreter start-up + exit {fmt(startup)} s" if startup is not None else "")
            + f". With `gc.freeze()` at exit the same rerun takes {fmt(d.get('rerun_with_gc_freeze_at_exit_s'))} s.")
    for name in ("packing", "demo_wall"):
        d = read(name)
        if d and d.get("target_met") is False:
            notes.append(f"- **{name}**: target missed; see its section.")
    return notes


def render(info: dict[str, Any], runs: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    body: list[str] = []
    for name, section in SECTIONS.items():
        doc = read(name)
        status = runs.get(name, {}).get("status")
        if doc is None:
            body += [f"## `bench/{name}.py`", "", f"No result ({status or 'not run'}).", ""]
            rows.append([f"`{name}`", f"no result ({status or 'not run'})", "-", "-"])
            continue
        try:
            body += section(doc, rows)
        except (KeyError, TypeError, ValueError) as exc:
            body += [f"## `bench/{name}.py`", "", f"Result present but not renderable: {type(exc).__name__}: {exc}", ""]
        when = doc.get("date", "?")
        if status and status != "ok":
            body += [f"_This result is from an earlier run ({when}); the latest attempt ended: {status}._", ""]
    v = info["versions"]
    head = [
        "# Benchmarks",
        "",
        f"Generated {dt.datetime.now().astimezone().isoformat(timespec='seconds')} by `make bench` "
        "(`.venv/bin/python bench/run_all.py`), from `bench/results/*.json` "
        "(one per script; each script also runs alone: `.venv/bin/python bench/<name>.py`).",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores_usable']} usable cores ({info['cores_reported']} reported), "
        f"{info['ram_gib']} GiB RAM, GPU: {info['gpu']}; {info['os']} ({info['arch']})",
        "- software: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- the machine is shared with other work: each section gives the load average seen after it, and "
        "`bench/results/run_all.json` the load at the start of each script (before each, `run_all.py` waits up to "
        "2 minutes for the 1-minute load to drop under 1.5).",
        "- environment of every benchmark process (`bench/_common.py`): Ray on 127.0.0.1 "
        "(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), `RAY_USAGE_STATS_ENABLED=0`, `MLFLOW_DISABLE_TELEMETRY=true`, "
        "synchronous MLflow logging. ablate itself sets neither telemetry switch: without them MLflow 3 requests "
        "https://config.mlflow-telemetry.io/<version>.json on the first experiment/run it creates.",
        "",
        "## Summary",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    head += [f"| {' | '.join(r)} |" for r in rows]
    notes = missed_notes()
    if notes:
        head += ["", "Missed targets, and where the time goes (numbers from the sections below):", "", *notes]
    head += ["", "Per-script dates and loads:", "", "| script | date | status | wall (s) | load at start |", "|---|---|---|---:|---:|"]
    for name in SECTIONS:
        doc = read(name) or {}
        r = runs.get(name, {})
        head.append(f"| `{name}` | {doc.get('date', '-')} | {r.get('status', '-')} | {fmt(r.get('wall_s'), 0)} | "
                    f"{fmt((r.get('load_at_start') or {}).get('load1'))} |")
    head.append("")
    tail = [
        "## Other benchmarks",
        "",
        "- [zoo_flops.md](zoo_flops.md) (`bench/zoo_flops.py`): FLOPs of every Table 1 model against the paper's.",
        "- [report_1000.md](report_1000.md) (`bench/report_1000.py`): `ablate report` over 1,000 trial runs.",
        "",
    ]
    return "\n".join(head + body + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--quiet-wait", type=float, default=120.0, help="seconds to wait for a quiet machine per script")
    parser.add_argument("--quiet-load", type=float, default=1.5, help="1-minute load average counted as quiet")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record_path = RESULTS / "run_all.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    runs: dict[str, Any] = record.get("runs", {})
    info = machine()
    names: list[str] = []
    if not args.render_only:
        names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
        for name in names:
            runs[name] = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                          **run_one(name, BENCHMARKS[name], args.quiet_wait, args.quiet_load)}
            record_path.write_text(json.dumps({"machine": info, "runs": runs}, indent=2) + "\n")
    record_path.write_text(json.dumps({"machine": info, "runs": runs}, indent=2) + "\n")
    OUT.write_text(render(info, runs))
    print(f"wrote {OUT.relative_to(REPO)}")
    failed = [n for n in names if runs[n].get("status") != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)} (see bench/results/logs/)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
