"""How long `ablate run` takes when every trial is already finished, and that none retrains.

A 3-trial SegFormer-B0 study on the test suite's tiny synthetic set (64x192, 4 iterations) is run
once with `ablate run --json`, then run again (twice; the faster counts). Every rerun must report
all trials CACHED. Where the time goes is recorded whatever the result:

* `bench/_rerun_stages.py`: the same steps as the CLI, in a fresh process, with a clock between
  them and the parts of planning timed separately;
* cProfile of one whole rerun through the CLI: the costliest functions by cumulative time.

    .venv/bin/python bench/cached_rerun.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import pstats
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ABLATE,
    B0_CONFIG,
    PY,
    REPO,
    Figure,
    bench_env,
    fmt,
    load,
    load_note,
    met,
    parse_json_stdout,
    scratch,
    sqlite_uri,
    timed_run,
    tiny_data,
    write_result,
    write_study,
)

TARGET_S = 2.0
TARGET_RETRAINED = 0


def study_doc(data_root: Path) -> dict[str, Any]:
    return {
        "name": "bench_cached",
        "base": str(B0_CONFIG),
        "data": {"root": str(data_root), "image_scale": [192, 64]},
        "budget": {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        "seeds": [0],
        "trials": [
            {"name": "base"},
            {"name": "lr-high", "overrides": {"optim_wrapper.optimizer.lr": 0.001}},
            {"name": "lr-low", "overrides": {"optim_wrapper.optimizer.lr": 0.00001}},
        ],
    }


def profile_summary(path: Path, top: int = 30) -> list[dict[str, Any]]:
    """The `top` functions by cumulative time, as plain rows."""
    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "file": file, "cumulative_s": round(ct, 3),
                     "own_s": round(tt, 3), "calls": nc})
    rows.sort(key=lambda r: -r["cumulative_s"])
    return rows[:top]


def pick(rows: list[dict[str, Any]], needles: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Cumulative seconds of named functions in the profile: label -> (file part, function name)."""
    out: dict[str, float] = {}
    for label, (file_part, func) in needles.items():
        match = [r for r in rows if file_part in r["file"] and r["function"].endswith(f"({func})")]
        if match:
            out[label] = max(r["cumulative_s"] for r in match)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)

    with scratch("cached", args.keep) as tmp:
        env = bench_env(ABLATE_CACHE_DIR=str(tmp / "cache"))
        study = write_study(tmp / "cached.yaml", study_doc(tiny_data(tmp / "tiny")))
        uri = sqlite_uri(tmp / "mlruns.db")
        runs = tmp / "runs"
        cmd = [ABLATE, "run", study, "--tracking-uri", uri, "--runs-dir", runs, "--json"]
        first = timed_run(cmd, env=env, log=tmp / "first.log")
        if first["rc"] != 0:
            raise RuntimeError(f"first run failed:\n{first['stderr_tail']}")
        first_states = [t["state"] for t in parse_json_stdout(first["stdout"])["trials"]]
        print(f"first run: {first['wall_s']:.1f} s, {first_states}", flush=True)
        reruns = []
        for i in range(2):
            done = timed_run(cmd, env=env, log=tmp / f"rerun-{i}.log")
            states = [t["state"] for t in parse_json_stdout(done["stdout"])["trials"]] if done["rc"] == 0 else []
            reruns.append({"wall_s": done["wall_s"], "rc": done["rc"], "states": states,
                           "retrained": sum(s != "CACHED" for s in states), "load": load()})
            print(f"rerun #{i}: {done['wall_s']:.2f} s, {states}", flush=True)
        stages = timed_run([PY, REPO / "bench" / "_rerun_stages.py", study, uri, runs], env=env)
        stage_doc = json.loads(stages["stdout"].strip().splitlines()[-1]) if stages["rc"] == 0 else {
            "error": stages["stderr_tail"]}
        stage_doc["process_wall_s"] = stages["wall_s"]
        if "total_in_process_s" in stage_doc:  # interpreter start-up, site imports, and exit (atexit, teardown)
            stage_doc["process_startup_and_exit_s"] = round(stages["wall_s"] - stage_doc["total_in_process_s"], 3)
        prof = tmp / "rerun.prof"
        profiled = timed_run([PY, "-m", "cProfile", "-o", prof, ABLATE, *cmd[1:]], env=env)
        rows = profile_summary(prof, top=400) if profiled["rc"] == 0 else []

    best = min(reruns, key=lambda r: r["wall_s"])
    retrained = max(r["retrained"] for r in reruns)
    notable = pick(rows, {
        "import ablate.cli": ("ablate/cli/__init__.py", "<module>"),
        "load_study": ("ablate/study/loader.py", "load_study"),
        "run_study": ("ablate/study/run.py", "run_study"),
        "plan_trials": ("ablate/study/plan.py", "plan_trials"),
        "plan_cache.load (stored plan)": ("ablate/study/plan_cache.py", "load"),
        "plan_cache.inputs_digest": ("ablate/study/plan_cache.py", "inputs_digest"),
        "Planner.plan (planning afresh)": ("ablate/study/plan.py", "plan"),
        "Config.fromfile": ("mmengine/config/config.py", "fromfile"),
        "Config.pretty_text (yapf)": ("mmengine/config/config.py", "pretty_text"),
        "dataset_fingerprint": ("ablate/data/layout.py", "dataset_fingerprint"),
        "estimate_cost": ("ablate/study/plan.py", "estimate_cost"),
        "config_digest": ("ablate/config/resolve.py", "config_digest"),
        "config_diff": ("ablate/study/plan.py", "config_diff"),
        "RunStore.prepare": ("ablate/tracking/store.py", "prepare"),
        "MlflowClient.search_runs": ("mlflow/tracking/client.py", "search_runs"),
        "cache lookups (cached_result)": ("ablate/study/run.py", "cached_result"),
        "import mlflow": ("mlflow/__init__.py", "<module>"),
        "import ray": ("ray/__init__.py", "<module>"),
        "import torch": ("torch/__init__.py", "<module>"),
        "import mmseg": ("mmseg/__init__.py", "<module>"),
        "import mmengine": ("mmengine/__init__.py", "<module>"),
    })
    write_result("cached_rerun", {
        "setup": {"trials": 3, "model": "SegFormer-B0", "data": "tiny synthetic 64x192, 6 train / 3 val",
                  "iters": 4, "command": "ablate run STUDY --tracking-uri sqlite:///... --runs-dir DIR --json"},
        "first_run_s": first["wall_s"],
        "first_run_states": first_states,
        "reruns": reruns,
        "rerun_s": best["wall_s"],
        "retrained": retrained,
        "target_s": TARGET_S,
        "target_retrained": TARGET_RETRAINED,
        "target_met": best["wall_s"] <= TARGET_S and retrained == TARGET_RETRAINED,
        "breakdown": {
            "stages": stage_doc,
            "profile_notable_cumulative_s": notable,
            "profile_wall_s": profiled["wall_s"],
            "profile_top": [{k: v for k, v in r.items() if k != "file"} for r in rows[:30]],
        },
    })
    return 0


# -- RESULTS.md section ---------------------------------------------------------------------------
def summary(d: dict[str, Any]) -> list[Figure]:
    trials = d["setup"]["trials"]
    return [
        Figure(f"cached rerun of a {trials}-trial study: seconds", fmt(d["rerun_s"], 2), f"<= {fmt(d['target_s'], 0)}",
               met(d["rerun_s"] <= d["target_s"])),
        Figure("cached rerun: trials retrained", str(d["retrained"]), str(d["target_retrained"]),
               met(d["retrained"] <= d["target_retrained"])),
    ]


def missed(d: dict[str, Any]) -> Optional[str]:
    """The largest steps of a cached rerun, when it misses its target."""
    if d.get("target_met"):
        return None
    doc = d["breakdown"].get("stages") or {}
    top = sorted(((v, k) for k, v in doc.get("stages", {}).items() if "instrumenting" not in k), reverse=True)[:5]
    startup = doc.get("process_startup_and_exit_s")
    return (f"{fmt(d['rerun_s'])} s with {d['retrained']} trial(s) retrained; largest steps: "
            + ", ".join(f"{k} {fmt(v)} s" for v, k in top)
            + (f", interpreter start-up + exit {fmt(startup)} s" if startup is not None else "") + ".")


def render(d: dict[str, Any]) -> str:
    setup = d["setup"]
    stages = d["breakdown"].get("stages", {})
    out = [
        "## Rerunning a finished study (`bench/cached_rerun.py`)",
        "",
        f"`ablate run` of a {setup['trials']}-trial B0 study ({setup['iters']} iterations each; data: {setup['data']}) "
        f"took {fmt(d['first_run_s'], 1)} s the first time "
        f"({', '.join(d['first_run_states'])}); the reruns took "
        f"{', '.join(fmt(r['wall_s']) + ' s' for r in d['reruns'])} and retrained {d['retrained']} trial(s).",
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
        out.append("| interpreter start-up and exit (atexit handlers, teardown) | "
                   f"{fmt(stages['process_startup_and_exit_s'])} |")
    for step, seconds in stages.get("stages", {}).items():
        out.append(f"| {step} | {fmt(seconds)} |")
    parts = stages.get("plan_parts", {})
    imported = stages.get("imported") or {}
    if imported:
        out += ["", "Imported by the end of the step-by-step rerun: "
                + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in imported.items())
                + f" (dispatcher `--dispatcher auto` builds here: {stages.get('dispatcher', '?')})."]
    if parts:
        out += ["", "Functions loading and planning call, inside load_study + plan_trials (cumulative seconds, calls):",
                "",
                "| function | seconds | calls |", "|---|---:|---:|"]
        out += [f"| {k} | {fmt(v[0], 3)} | {v[1]} |" for k, v in parts.items()]
    notable = d["breakdown"].get("profile_notable_cumulative_s", {})
    if notable:
        out += ["", f"cProfile of one whole rerun through the CLI ({fmt(d['breakdown'].get('profile_wall_s'))} s under "
                "the profiler; cumulative seconds, overlapping):", ""]
        out.append(", ".join(f"{k} {fmt(v)}" for k, v in notable.items()) + ".")
    out += ["", load_note(d)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
