"""What `ablate run` costs on top of plain mmengine for one trial.

The same SegFormer-B0 trial (the synthetic 375x1242 set resized to 414x125, 96x96 crops, batch 2)
is trained twice each way, alternating:

* bare: `bench/_bare_train.py`, i.e. `Runner.from_cfg(cfg).train()` on the trial's resolved
  config (the `config_text` ablate plans), after `ablate.compat.install()` and `register_all()`;
* ablate: `ablate run STUDY --json` with a fresh MLflow store and runs dir (Ray + MLflow + checks).

Both are whole-process wall times (the min of the repeats). The trial's own duration (tag
`ablate.duration_s`) splits the difference into fixed per-command costs (import, plan, store,
Ray start/stop) and per-trial costs inside the worker (run creation, FLOPs count, predictions,
artifacts), and each fixed cost is also timed alone in a fresh process (`bench/_probe.py`).

    .venv/bin/python bench/overhead.py [--iters 400] [--repeats 2] [--keep DIR]
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
    ABLATE, B0_CONFIG, PY, REPO, SYNTH_KITTI, Figure, bench_env, fmt, load, load_note, met, parse_json_stdout, ratio,
    scratch, sqlite_uri, timed_run, write_result, write_study,
)

TARGET_RATIO = 1.03
TARGET_TRIAL_S = 60.0


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


def run_ablate(study: Path, root: Path, env: dict[str, str], logs: Path, i: int) -> dict[str, Any]:
    from ablate import tracking

    uri = sqlite_uri(root / "mlruns.db")
    done = timed_run([ABLATE, "run", study, "--tracking-uri", uri, "--runs-dir", root / "runs", "--json"],
                     env=env, log=logs / f"ablate-{i}.log")
    if done["rc"] != 0:
        raise RuntimeError(f"ablate run failed:\n{done['stderr_tail']}")
    report = parse_json_stdout(done["stdout"])
    (trial,) = report["trials"]
    if trial["state"] != "FINISHED":
        raise RuntimeError(f"trial ended {trial['state']}: {trial['error']}")
    run = tracking.client(uri).get_run(trial["run_id"])
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
    parser.add_argument("--iters", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="keep the scratch folder here")
    args = parser.parse_args(argv)

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

        bare: list[dict[str, Any]] = []
        ablate: list[dict[str, Any]] = []
        for i in range(args.repeats):
            # alternate which goes first, so a change in the machine's load hits both alike
            order = ("bare", "ablate") if i % 2 == 0 else ("ablate", "bare")
            for kind in order:
                if kind == "bare":
                    bare.append(run_bare(config, tmp / f"bare-{i}", env, logs, i))
                    print(f"bare   #{i}: {bare[-1]['wall_s']:.1f} s (train {bare[-1]['train_s']:.1f} s)", flush=True)
                else:
                    ablate.append(run_ablate(study_path, tmp / f"ablate-{i}", env, logs, i))
                    print(f"ablate #{i}: {ablate[-1]['wall_s']:.1f} s (trial {ablate[-1]['trial_duration_s']:.1f} s)",
                          flush=True)

        probes = {
            "python_startup": timed_run([PY, "-c", "pass"], env=env)["wall_s"],
            "import": probe("import", env=env),
            "ray": probe("ray", env=env),
            "mlflow": probe("mlflow", tmp / "probe.db", env=env),
            "flops": probe("flops", B0_CONFIG, spec.image_size[0], spec.image_size[1], env=env),
            "trial": probe("trial", config, tmp / "probe-trial", spec.image_size[0], spec.image_size[1], env=env),
        }

    best_bare = min(bare, key=lambda r: r["wall_s"])
    best_ablate = min(ablate, key=lambda r: r["wall_s"])
    bare_wall, ablate_wall = best_bare["wall_s"], best_ablate["wall_s"]
    bare_work = min(r["build_s"] + r["train_s"] for r in bare)  # Runner build + train (+ its validation)
    bare_fixed = bare_wall - bare_work  # interpreter start + imports
    trial = min(r["trial_duration_s"] for r in ablate)
    per_command = ablate_wall - trial  # driver: imports, plan, store, Ray start, worker start, shutdown
    per_trial = trial - bare_work  # in the worker: MLflow run, FLOPs count, hooks, predictions, artifacts
    fixed_extra = per_command - bare_fixed
    # Projection to a 60 s trial: the same absolute costs around 60 s of Runner work.
    projected = (TARGET_TRIAL_S + per_trial + per_command) / (TARGET_TRIAL_S + bare_fixed)
    # Per-trial overhead alone, i.e. a study of many 60 s trials where fixed costs amortise.
    projected_trial = (TARGET_TRIAL_S + per_trial) / TARGET_TRIAL_S
    ray = probes["ray"]
    mlf = probes["mlflow"]
    write_result("overhead", {
        "setup": {
            "model": "SegFormer-B0", "data": str(data_root), "data_reused": have_data,
            "image_scale_wh": [414, 125], "crop": [96, 96], "batch_size": 2, "iters": args.iters,
            "val_images": "all of the set's val split, once at the end", "repeats": args.repeats,
            "flops_cache": "warm (filled by a plan before the timed runs)",
        },
        "bare_runs": bare,
        "ablate_runs": ablate,
        "bare_wall_s": bare_wall,
        "ablate_wall_s": ablate_wall,
        "ratio": ratio(ablate_wall, bare_wall),
        "difference_s": round(ablate_wall - bare_wall, 2),
        "bare_runner_work_s": round(bare_work, 2),
        "trial_duration_s": trial,
        "fixed_per_command_s": round(per_command, 2),
        "fixed_per_command_extra_s": round(fixed_extra, 2),
        "per_trial_overhead_s": round(per_trial, 2),
        "projected_ratio_60s_single_trial": round(projected, 4),
        "projected_ratio_60s_trial_amortised": round(projected_trial, 4),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio(ablate_wall, bare_wall) <= TARGET_RATIO,
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
            "trial_flops_count_on_runner_model_s": probes["trial"].get("flops_count_s"),
            "trial_save_predictions_s": probes["trial"].get("save_predictions_s"),
            "trial_log_artifacts_s": probes["trial"].get("log_artifacts_s"),
            "trial_mlflow_20_metric_batches_s": probes["trial"].get("mlflow_20_metric_batches_s"),
        },
        "probes": probes,
    })
    return 0


# -- RESULTS.md section ---------------------------------------------------------------------------
def summary(d: dict[str, Any]) -> list[Figure]:
    target = f"<= {d['target_ratio']}"
    single = d["projected_ratio_60s_single_trial"]
    amortised = d["projected_ratio_60s_trial_amortised"]
    return [
        Figure(f"ablate run / bare mmengine Runner, wall time of one {d['bare_runner_work_s']:.0f} s B0 trial "
               f"(min of {d['setup']['repeats']})", fmt(d["ratio"], 3), target, met(d["target_met"])),
        Figure(f"same, projected to a {TARGET_TRIAL_S:.0f} s trial (measured absolute costs)", fmt(single, 3), target,
               met(single <= d["target_ratio"])),
        Figure(f"per-trial overhead only, {TARGET_TRIAL_S:.0f} s trial (fixed costs amortised over a study)",
               fmt(amortised, 3), target, met(amortised <= d["target_ratio"])),
    ]


def missed(d: dict[str, Any]) -> Optional[str]:
    """Where the time goes, when the ratio misses its target."""
    if d.get("target_met"):
        return None
    b = d["breakdown"]
    ray = sum(b.get(k) or 0.0 for k in ("ray_init_s", "ray_first_worker_s", "ray_shutdown_s"))
    return (
        f"ablate/bare = {fmt(d['ratio'], 3)} on a {fmt(d['bare_runner_work_s'], 0)} s trial. "
        f"{fmt(d['fixed_per_command_s'], 1)} s of every command is fixed ({fmt(d['fixed_per_command_extra_s'], 1)} s more "
        f"than a bare process's start-up): embedded Ray {fmt(ray, 1)} s (init {fmt(b.get('ray_init_s'))}, first worker "
        f"with its imports {fmt(b.get('ray_first_worker_s'))}, shutdown {fmt(b.get('ray_shutdown_s'))}), a fresh MLflow "
        f"store {fmt(b.get('mlflow_store_creation_s'))} s, importing the CLI {fmt(b.get('import_ablate_cli_s'))} s and "
        f"MLflow {fmt(b.get('mlflow_import_s'))} s, planning {fmt(b.get('plan_warm_flops_cache_s'))} s. Inside the trial, "
        f"{fmt(d['per_trial_overhead_s'], 1)} s more than the bare Runner (FLOPs count "
        f"{fmt(b.get('trial_flops_count_on_runner_model_s'))} s, saved predictions "
        f"{fmt(b.get('trial_save_predictions_s'))} s, the rest not broken down), which alone gives "
        f"{fmt(d['projected_ratio_60s_trial_amortised'], 3)} on a {TARGET_TRIAL_S:.0f} s trial.")


def render(d: dict[str, Any]) -> str:
    setup, b = d["setup"], d["breakdown"]
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
        "`ablate run STUDY --json` (fresh store and runs dir each time; FLOPs cache warm), alternating, "
        f"{setup['repeats']} times each. "
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
        same,
        "",
        "Fixed costs, timed apart: planning twice in the benchmark's own process, the rest each in a fresh "
        "process (`bench/_probe.py`):",
        "",
        "| cost | seconds |",
        "|---|---:|",
        f"| import `ablate.cli` (torch through the mmcv bridge, typer, rich) | {fmt(b['import_ablate_cli_s'])} |",
        f"| planning the study, first / second time (FLOPs cache cold / warm) | {fmt(b['plan_cold_flops_cache_s'])} / "
        f"{fmt(b['plan_warm_flops_cache_s'])} |",
        f"| import MLflow | {fmt(b['mlflow_import_s'])} |",
        f"| create a fresh sqlite MLflow store (`tracking.prepare_store`) | {fmt(b['mlflow_store_creation_s'])} |",
        f"| `ray.init` (embedded local Ray) | {fmt(b['ray_init_s'])} |",
        f"| first Ray task: worker start + its imports (ablate, mmseg, MLflow) | {fmt(b['ray_first_worker_s'])} "
        f"(imports {fmt(b['ray_worker_imports_s'])}) |",
        f"| `ray.shutdown` | {fmt(b['ray_shutdown_s'])} |",
        f"| FLOPs count (B0 at the image size, fresh model; repeat) | "
        f"{fmt(b['flops_count_in_trial_s'])} ({fmt(b['flops_count_repeat_s'])}) |",
        "",
    ]
    written = (d.get("probes", {}).get("trial") or {}).get("predictions_written")
    parts = {
        "MLflow child run + 30 params": b.get("trial_mlflow_run_and_params_s"),
        "FLOPs count on the built model": b.get("trial_flops_count_on_runner_model_s"),
        "saved predictions" + (f" ({written} files)" if written is not None else ""): b.get("trial_save_predictions_s"),
        "artifact logging (predictions, config)": b.get("trial_log_artifacts_s"),
        "20 metric batches (what MLflowTrialHook logs for 400 iterations, every 20)":
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
