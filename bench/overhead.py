"""What `ablate run` costs on top of plain mmengine for one trial.

The same SegFormer-B0 trial (the synthetic 375x1242 set resized to 414x125, 96x96 crops, batch 2)
is trained twice each way, alternating:

* bare: `bench/_bare_train.py`, i.e. `Runner.from_cfg(cfg).train()` on the trial's resolved
  config (the `config_text` ablate plans), after `ablate.compat.install()` and `register_all()`;
* ablate: `ablate run STUDY --json --dispatcher D` with a fresh MLflow store and runs dir, once
  per dispatcher: `local` (the trial trains in the command's own process) and `ray` (an embedded
  local Ray runs it in a worker). The headline figures are those of the dispatcher
  `--dispatcher auto` (the default) picks on the machine the benchmark runs on.

All are whole-process wall times (the min of the repeats). The trial's own duration (tag
`ablate.duration_s`) splits the difference into fixed per-command costs (import, plan, store,
and for Ray its start and stop) and per-trial costs around the Runner (run creation, FLOPs
count, predictions, artifacts), and each fixed cost is also timed alone in a fresh process
(`bench/_probe.py`).

    .venv/bin/python bench/overhead.py [--iters 460] [--repeats 2] [--dispatchers local,ray] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ABLATE,
    B0_CONFIG,
    PY,
    REPO,
    SYNTH_KITTI,
    Figure,
    bench_env,
    fmt,
    load,
    load_note,
    met,
    parse_json_stdout,
    ratio,
    scratch,
    sqlite_uri,
    timed_run,
    write_result,
    write_study,
)

TARGET_RATIO = 1.03
TARGET_TRIAL_S = 60.0
DISPATCHERS = {"local": "in-process (`--dispatcher local`)", "ray": "Ray (`--dispatcher ray`, an embedded local Ray)"}
WHERE = {"local": "in the command's own process", "ray": "in the Ray worker"}


def study_doc(data_root: Path, iters: int, synth: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"root": str(data_root), "image_scale": [414, 125]}
    if synth:  # only where the repo's data/synth_kitti is missing: a smaller set of the same kind
        data["synth"] = {"train": 30, "test": 20, "height": 375, "width": 1242, "seed": 0}
    return {
        "name": "bench_overhead",
        "base": str(B0_CONFIG),
        "data": data,
        "budget": {"iters": iters, "val_interval": iters, "batch_size": 2, "crop": [96, 96],
                   "log_interval": 20, "workers": 0},
        "seeds": [0],
        "trials": [{"name": "b0"}],
    }


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def run_bare(config: Path, work_dir: Path, env: dict[str, str], logs: Path, i: int) -> dict[str, Any]:
    done = timed_run([PY, REPO / "bench" / "_bare_train.py", config, work_dir], env=env,
                     log=logs / f"bare-{i}.log")
    if done["rc"] != 0:
        raise RuntimeError(f"bare training failed:\n{done['stderr_tail']}")
    inner = last_json_line(done["stdout"])
    return {"wall_s": done["wall_s"], **inner, "load": load()}


def auto_dispatcher(study: Any) -> str:
    """What `--dispatcher auto` picks for this study on this machine, asked of the CLI itself."""
    from ablate.cli.trials import DispatcherKind, make_dispatcher

    chosen = make_dispatcher(DispatcherKind.AUTO, None, study.spec.resources, None)  # builds, starts nothing
    return "ray" if type(chosen).__name__ == "RayDispatcher" else "local"


def run_ablate(study: Path, root: Path, env: dict[str, str], logs: Path, i: int, dispatcher: str) -> dict[str, Any]:
    uri = sqlite_uri(root / "mlruns.db")
    done = timed_run([ABLATE, "run", study, "--tracking-uri", uri, "--runs-dir", root / "runs", "--json",
                      "--dispatcher", dispatcher], env=env, log=logs / f"ablate-{dispatcher}-{i}.log")
    if done["rc"] != 0:
        raise RuntimeError(f"ablate run failed:\n{done['stderr_tail']}")
    report = parse_json_stdout(done["stdout"])
    (trial,) = report["trials"]
    if trial["state"] != "FINISHED":
        raise RuntimeError(f"trial ended {trial['state']}: {trial['error']}")
    from mlflow import MlflowClient

    run = MlflowClient(uri).get_run(trial["run_id"])
    return {
        "wall_s": done["wall_s"],
        "trial_duration_s": float(run.data.tags["ablate.duration_s"]),
        "trial_run_span_s": round((run.info.end_time - run.info.start_time) / 1000, 3),
        "mIoU": trial["mIoU"],
        "load": load(),
    }


def probe(kind: str, *args: Any, env: dict[str, str]) -> dict[str, Any]:
    done = timed_run([PY, REPO / "bench" / "_probe.py", kind, *args], env=env)
    if done["rc"] != 0:
        return {"error": done["stderr_tail"][-500:]}
    return {**last_json_line(done["stdout"]), "process_wall_s": done["wall_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=460, help="the trial's iterations (460: about 60 s, 2-core CPU)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dispatchers", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--keep", type=Path, default=None, help="keep the scratch folder here")
    args = parser.parse_args(argv)
    dispatchers = [d for d in args.dispatchers.split(",") if d]
    if not dispatchers or any(d not in DISPATCHERS for d in dispatchers):
        parser.error(f"--dispatchers: a comma-separated list of {', '.join(DISPATCHERS)}")

    with scratch("overhead", args.keep) as tmp:
        logs = tmp / "logs"
        logs.mkdir(exist_ok=True)
        # One FLOPs cache for the whole benchmark, warmed by planning below, so every timed
        # `ablate run` pays what a user's second command pays; the cold cost is reported apart.
        env = bench_env(ABLATE_CACHE_DIR=str(tmp / "cache"))
        os.environ["ABLATE_CACHE_DIR"] = env["ABLATE_CACHE_DIR"]
        have_data = (SYNTH_KITTI / ".complete").exists()
        data_root = SYNTH_KITTI if have_data else tmp / "synth_kitti"
        study_path = write_study(tmp / "overhead.yaml", study_doc(data_root, args.iters, not have_data))

        from ablate.study import load_study, plan_trials

        study = load_study(study_path)
        t = time.perf_counter()
        (spec,) = plan_trials(study, tmp / "plan")
        plan_cold = time.perf_counter() - t
        t = time.perf_counter()
        plan_trials(study, tmp / "plan")
        plan_warm = time.perf_counter() - t
        config = tmp / "trial_config.py"
        config.write_text(spec.config_text)

        auto = auto_dispatcher(study)
        headline = auto if auto in dispatchers else dispatchers[0]
        print(f"--dispatcher auto picks {auto} here", flush=True)
        bare: list[dict[str, Any]] = []
        measured: dict[str, list[dict[str, Any]]] = {d: [] for d in dispatchers}
        kinds = ["bare", *dispatchers]
        for i in range(args.repeats):
            # rotate which goes first, so a change in the machine's load hits all alike
            for kind in kinds[i % len(kinds):] + kinds[: i % len(kinds)]:
                if kind == "bare":
                    bare.append(run_bare(config, tmp / f"bare-{i}", env, logs, i))
                    print(f"bare   #{i}: {bare[-1]['wall_s']:.1f} s (train {bare[-1]['train_s']:.1f} s)", flush=True)
                else:
                    measured[kind].append(run_ablate(study_path, tmp / f"ablate-{kind}-{i}", env, logs, i, kind))
                    print(f"{kind:6s} #{i}: {measured[kind][-1]['wall_s']:.1f} s "
                          f"(trial {measured[kind][-1]['trial_duration_s']:.1f} s)", flush=True)

        probes = {
            "python_startup": timed_run([PY, "-c", "pass"], env=env)["wall_s"],
            "import": probe("import", env=env),
            **({"ray": probe("ray", env=env)} if "ray" in dispatchers else {}),
            "mlflow": probe("mlflow", tmp / "probe.db", env=env),
            "flops": probe("flops", B0_CONFIG, spec.image_size[0], spec.image_size[1], env=env),
            "trial": probe("trial", config, tmp / "probe-trial", spec.image_size[0], spec.image_size[1], env=env),
        }

    bare_wall = min(r["wall_s"] for r in bare)
    bare_work = min(r["build_s"] + r["train_s"] for r in bare)  # Runner build + train (+ its validation)
    bare_fixed = bare_wall - bare_work  # interpreter start + imports
    split = {kind: overhead_split(runs, bare_wall, bare_work, bare_fixed) for kind, runs in measured.items()}
    head = split[headline]
    ray = probes.get("ray", {})
    mlf = probes["mlflow"]
    write_result("overhead", {
        "setup": {
            "model": "SegFormer-B0", "data": str(data_root), "data_reused": have_data,
            "image_scale_wh": [414, 125], "crop": [96, 96], "batch_size": 2, "iters": args.iters,
            "val_images": "all of the set's val split, once at the end", "repeats": args.repeats,
            "flops_cache": "warm (filled by a plan before the timed runs)",
        },
        "auto_dispatcher": auto,
        "dispatcher": headline,  # the headline figures below are this dispatcher's
        "bare_runs": bare,
        "ablate_runs": measured[headline],
        "bare_wall_s": bare_wall,
        "bare_runner_work_s": round(bare_work, 2),
        **head,
        "dispatchers": {kind: {"runs": measured[kind], **numbers} for kind, numbers in split.items()},
        "target_ratio": TARGET_RATIO,
        "target_met": head["ratio"] <= TARGET_RATIO,
        "breakdown": {
            "plan_cold_flops_cache_s": round(plan_cold, 2),
            "plan_warm_flops_cache_s": round(plan_warm, 2),
            "python_startup_s": probes["python_startup"],
            "import_ablate_cli_s": probes["import"].get("import_ablate_cli_s"),
            "ray_init_s": ray.get("ray_init_s"),
            "ray_first_worker_s": ray.get("first_task_s"),
            "ray_worker_imports_s": ray.get("worker_imports_s"),
            "ray_shutdown_s": ray.get("ray_shutdown_s"),
            "mlflow_import_s": mlf.get("import_mlflow_s"),
            "mlflow_store_creation_s": mlf.get("create_store_s"),
            "flops_count_in_trial_s": probes["flops"].get("count_s"),
            "flops_count_repeat_s": probes["flops"].get("count_again_s"),
            "trial_mlflow_run_and_params_s": probes["trial"].get("mlflow_create_run_and_params_s"),
            "trial_flops_count_on_runner_model_s": probes["trial"].get("complexity_first_count_s"),
            "trial_complexity_cached_s": probes["trial"].get("complexity_cached_s"),
            "trial_log_artifacts_s": probes["trial"].get("log_artifacts_s"),
            "trial_mlflow_20_metric_batches_s": probes["trial"].get("mlflow_20_metric_batches_s"),
        },
        "probes": probes,
    })
    return 0


def overhead_split(runs: list[dict[str, Any]], bare_wall: float, bare_work: float, bare_fixed: float) -> dict[str, Any]:
    """One dispatcher's runs against the bare ones: fixed per command, per trial, and the ratios."""
    wall = min(r["wall_s"] for r in runs)
    trial = min(r["trial_duration_s"] for r in runs)
    per_command = wall - trial  # imports, plan, store, (Ray start, worker start, shutdown), exit
    per_trial = trial - bare_work  # around the Runner: MLflow run, FLOPs count, hooks, predictions, artifacts
    return {
        "ablate_wall_s": wall,
        "ratio": ratio(wall, bare_wall),
        "difference_s": round(wall - bare_wall, 2),
        "trial_duration_s": trial,
        "fixed_per_command_s": round(per_command, 2),
        "fixed_per_command_extra_s": round(per_command - bare_fixed, 2),
        "per_trial_overhead_s": round(per_trial, 2),
        # the same absolute costs around 60 s of Runner work
        "projected_ratio_60s_single_trial": round((TARGET_TRIAL_S + per_trial + per_command) /
                                                  (TARGET_TRIAL_S + bare_fixed), 4),
        # per-trial overhead alone: a study of many 60 s trials, where fixed costs amortise
        "projected_ratio_60s_trial_amortised": round((TARGET_TRIAL_S + per_trial) / TARGET_TRIAL_S, 4),
    }


# -- RESULTS.md section ---------------------------------------------------------------------------
def _dispatcher(d: dict[str, Any]) -> str:
    """The dispatcher the headline figures are from (results written before both were measured: Ray)."""
    return str(d.get("dispatcher") or "ray")


def summary(d: dict[str, Any]) -> list[Figure]:
    target = f"<= {d['target_ratio']}"
    single = d["projected_ratio_60s_single_trial"]
    amortised = d["projected_ratio_60s_trial_amortised"]
    kind = _dispatcher(d)
    picked = " (what `--dispatcher auto` picks here)" if d.get("auto_dispatcher") == kind else ""
    rows = [
        Figure(f"ablate run / bare mmengine Runner, wall time of one {d['bare_runner_work_s']:.0f} s B0 trial "
               f"(min of {d['setup']['repeats']}), {DISPATCHERS[kind]}{picked}", fmt(d["ratio"], 3), target,
               met(d["target_met"])),
        Figure(f"same, projected to a {TARGET_TRIAL_S:.0f} s trial (measured absolute costs)", fmt(single, 3), target,
               met(single <= d["target_ratio"])),
        Figure(f"per-trial overhead only, {TARGET_TRIAL_S:.0f} s trial (fixed costs amortised over a study)",
               fmt(amortised, 3), target, met(amortised <= d["target_ratio"])),
    ]
    for other, numbers in (d.get("dispatchers") or {}).items():
        if other != kind:
            rows.append(Figure(f"same trial, {DISPATCHERS[other]}: ablate / bare", fmt(numbers["ratio"], 3)))
    return rows


def missed(d: dict[str, Any]) -> Optional[str]:
    """Where the time goes, when the ratio misses its target."""
    if d.get("target_met"):
        return None
    b = d["breakdown"]
    kind = _dispatcher(d)
    ray = sum(b.get(k) or 0.0 for k in ("ray_init_s", "ray_first_worker_s", "ray_shutdown_s"))
    ray_part = (f"embedded Ray {fmt(ray, 1)} s (init {fmt(b.get('ray_init_s'))}, first worker with its imports "
                f"{fmt(b.get('ray_first_worker_s'))}, shutdown {fmt(b.get('ray_shutdown_s'))}), "
                if kind == "ray" else "")
    return (
        f"ablate/bare = {fmt(d['ratio'], 3)} on a {fmt(d['bare_runner_work_s'], 0)} s trial, {DISPATCHERS[kind]}. "
        f"{fmt(d['fixed_per_command_s'], 1)} s of every command is fixed ({fmt(d['fixed_per_command_extra_s'], 1)} s more "
        f"than a bare process's start-up): {ray_part}a fresh MLflow "
        f"store {fmt(b.get('mlflow_store_creation_s'))} s, importing the CLI {fmt(b.get('import_ablate_cli_s'))} s and "
        f"MLflow {fmt(b.get('mlflow_import_s'))} s, planning {fmt(b.get('plan_warm_flops_cache_s'))} s. Around the "
        f"Runner, {fmt(d['per_trial_overhead_s'], 1)} s more than the bare process (FLOPs and parameters from the "
        f"cache {fmt(b.get('trial_complexity_cached_s'))} s, {fmt(b.get('trial_flops_count_on_runner_model_s'))} s "
        "for a model counted the first time; the rest not broken down), which alone gives "
        f"{fmt(d['projected_ratio_60s_trial_amortised'], 3)} on a {TARGET_TRIAL_S:.0f} s trial.")


def render(d: dict[str, Any]) -> str:
    setup, b = d["setup"], d["breakdown"]
    kind = _dispatcher(d)
    auto = d.get("auto_dispatcher")
    bare_runs = ", ".join(f"{r['wall_s']:.1f}" for r in d["bare_runs"])
    ablate_runs = ", ".join(f"{r['wall_s']:.1f} (trial {r['trial_duration_s']:.1f})" for r in d["ablate_runs"])
    bare_miou = sorted({r["mIoU"] for r in d["bare_runs"] if r.get("mIoU") is not None})
    ablate_miou = sorted({r["mIoU"] for r in d["ablate_runs"] if r.get("mIoU") is not None})
    if bare_miou and bare_miou == ablate_miou and len(bare_miou) == 1:
        same = f"Both paths reach the same mIoU ({fmt(bare_miou[0])}): they train the same thing."
    else:
        same = (f"mIoU, bare: {', '.join(map(fmt, bare_miou)) or '-'}; ablate: {', '.join(map(fmt, ablate_miou)) or '-'} "
                "(not one value: the two paths did not train identically).")
    out = [
        "## Per-trial overhead of `ablate run` (`bench/overhead.py`)",
        "",
        f"One SegFormer-B0 trial ({setup['iters']} iterations, batch {setup['batch_size']}, "
        f"{setup['crop'][0]}x{setup['crop'][1]} crops of the synthetic set resized to "
        f"{setup['image_scale_wh'][0]}x{setup['image_scale_wh'][1]}, validation once at the end), "
        "trained from the same resolved config by a bare `Runner.from_cfg(cfg).train()` process and by "
        "`ablate run STUDY --json --dispatcher D` for D in "
        f"{', '.join(f'`{k}`' for k in d.get('dispatchers') or [kind])} "
        f"(fresh store and runs dir each time; FLOPs cache warm), in turn, {setup['repeats']} times each. "
        f"Data: `{Path(setup['data']).name}` ({'reused' if setup['data_reused'] else 'generated'}).",
        "",
        (f"On this machine `--dispatcher auto` (the default) picks `{auto}`; the table is the {DISPATCHERS[kind]} runs."
         if auto else f"The table is the {DISPATCHERS[kind]} runs."),
        "",
        "| | seconds |",
        "|---|---:|",
        f"| bare process wall, runs | {bare_runs} |",
        f"| ablate command wall, runs | {ablate_runs} |",
        f"| bare wall (min) | {fmt(d['bare_wall_s'], 1)} |",
        f"| ablate wall (min) | {fmt(d['ablate_wall_s'], 1)} |",
        f"| difference | {fmt(d['difference_s'], 1)} |",
        f"| bare: Runner build + train (+ validation) in process | {fmt(d['bare_runner_work_s'], 1)} |",
        f"| ablate: trial duration (`ablate.duration_s`, {WHERE[kind]}) | {fmt(d['trial_duration_s'], 1)} |",
        f"| fixed per command (ablate wall - trial duration) | {fmt(d['fixed_per_command_s'], 1)} |",
        f"| of which beyond the bare process's own start-up | {fmt(d['fixed_per_command_extra_s'], 1)} |",
        f"| per trial (trial duration - bare Runner work) | {fmt(d['per_trial_overhead_s'], 1)} |",
        "",
        same,
        "",
    ]
    both = d.get("dispatchers") or {}
    if len(both) > 1:
        out += ["Each dispatcher (seconds; ratios against the bare process):", "",
                "| dispatcher | wall, runs | wall (min) | ablate / bare | fixed per command | per trial |",
                "|---|---|---:|---:|---:|---:|"]
        out += [f"| {DISPATCHERS[k]}{' (auto)' if k == auto else ''} | "
                f"{', '.join(fmt(r['wall_s'], 1) for r in v['runs'])} | {fmt(v['ablate_wall_s'], 1)} | "
                f"{fmt(v['ratio'], 3)} | {fmt(v['fixed_per_command_s'], 1)} | {fmt(v['per_trial_overhead_s'], 1)} |"
                for k, v in both.items()]
        out.append("")
    out += [
        "Fixed costs, timed apart: planning twice in the benchmark's own process, the rest each in a fresh "
        "process (`bench/_probe.py`):",
        "",
        "| cost | seconds |",
        "|---|---:|",
        f"| import `ablate.cli` | {fmt(b['import_ablate_cli_s'])} |",
        f"| planning the study, first / second time (FLOPs and plan caches cold / warm) | "
        f"{fmt(b['plan_cold_flops_cache_s'])} / {fmt(b['plan_warm_flops_cache_s'])} |",
        f"| import MLflow | {fmt(b['mlflow_import_s'])} |",
        f"| create a fresh sqlite MLflow store (`RunStore.prepare`) | {fmt(b['mlflow_store_creation_s'])} |",
        *([f"| Ray only: `ray.init` (embedded local Ray) | {fmt(b['ray_init_s'])} |",
           f"| Ray only: first task, worker start + its imports (ablate, mmseg, MLflow) | "
           f"{fmt(b['ray_first_worker_s'])} (imports {fmt(b['ray_worker_imports_s'])}) |",
           f"| Ray only: `ray.shutdown` | {fmt(b['ray_shutdown_s'])} |"] if b.get("ray_init_s") is not None else []),
        f"| FLOPs count (B0 at the image size, fresh model; repeat) | "
        f"{fmt(b['flops_count_in_trial_s'])} ({fmt(b['flops_count_repeat_s'])}) |",
        "",
    ]
    parts = {
        "MLflow child run + 30 params": b.get("trial_mlflow_run_and_params_s"),
        "FLOPs and parameters from the cache (warm in the timed runs; counting a new model on the built Runner "
        f"takes {fmt(b.get('trial_flops_count_on_runner_model_s'))} s)": b.get("trial_complexity_cached_s"),
        "artifact logging (config)": b.get("trial_log_artifacts_s"),
        "20 metric batches (MLflowTrialHook logs one every `log_interval`, here 20 iterations)":
            b.get("trial_mlflow_20_metric_batches_s"),
    }
    if any(v is not None for v in parts.values()):
        known = sum(v for v in parts.values() if v is not None)
        out += ["Per-trial steps a trial adds around `runner.train()`, each timed on a built Runner "
                "(`bench/_probe.py trial`):", "", "| step | seconds |", "|---|---:|"]
        out += [f"| {k} | {fmt(v)} |" for k, v in parts.items()]
        out += [f"| sum | {fmt(known)} |",
                f"| rest of the measured per-trial overhead (not broken down) | "
                f"{fmt(d['per_trial_overhead_s'] - known)} |", ""]
    out.append(load_note(d))
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
