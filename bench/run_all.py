"""Run every benchmark, then rebuild bench/RESULTS.md from bench/results/*.json.

Each benchmark is its own process (one failing or timing out does not stop the others) and
writes bench/results/<name>.json, stamped with the id of the run that started it (`run_id`).
Each script also renders its own part of RESULTS.md from that JSON: `render(result)` its section,
`summary(result)` its rows of the summary table and, where it explains a missed target,
`missed(result)`. This script only runs them, records how each went in
bench/results/run_all.json, and joins what they render.

RESULTS.md shows one run: after `make bench` a script that failed has no figures there, rather
than an older run's. `--only` runs some scripts and rebuilds RESULTS.md only when that leaves
every section from one run; `--render-only` builds it from whatever results are stored, naming
the run each section comes from.

    .venv/bin/python bench/run_all.py                 # `make bench`
    .venv/bin/python bench/run_all.py --only packing,cached_rerun
    .venv/bin/python bench/run_all.py --render-only   # rebuild RESULTS.md from the stored results, mixed runs allowed

The machine may be shared: before each benchmark it waits (up to --quiet-wait seconds) for the
1-minute load average to drop under --quiet-load, and every figure carries the load it saw.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata as metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ENV, PY, REPO, RESULTS, RUN_ID_ENV, Figure, bench_env, fmt, load  # noqa: E402

# name -> time limit (s); run in this order (cheap ones first).
BENCHMARKS: dict[str, int] = {
    "packing": 600,
    "cached_rerun": 900,
    "hpo_pruning": 1200,
    "overhead": 2400,
    "demo_wall": 2400,
    "latency": 1800,
    "report_1000": 1200,
    "zoo_flops": 1800,
    "gpu_throughput": 3600,
}
# The order of the sections in RESULTS.md.
# gpu_proof: bench/gpu_proof.sh (run by hand on a GPU machine, not by this script) writes its result.
SECTIONS = ["overhead", "packing", "cached_rerun", "hpo_pruning", "demo_wall", "latency", "gpu_throughput", "gpu_proof"]
# Sections whose result comes from a run on another machine, not from `make bench` here: shown
# with the run and date they come from.
BY_HAND = {"gpu_proof"}
OTHERS = {
    "zoo_flops": "FLOPs of every Table 1 model against the paper's.",
    "report_1000": "`ablate report` over 1,000 trial runs.",
}
OUT = REPO / "bench" / "RESULTS.md"
SUITE = REPO / "bench" / "suite.md"
PACKAGES = ["torch", "mmsegmentation", "mmengine", "mmcv-lite", "mmcv", "ray", "mlflow", "optuna", "numpy"]
QUIET_WAIT_S = 120.0
QUIET_LOAD = 1.5


# -- running -----------------------------------------------------------------------------------
def wait_quiet(limit_s: float, threshold: float) -> dict[str, Any]:
    start = time.time()
    while os.getloadavg()[0] > threshold and time.time() - start < limit_s:
        time.sleep(5)
    return {"waited_s": round(time.time() - start, 1), "load_at_start": load(),
            "quiet_wait_s": limit_s, "quiet_load": threshold}


def run_one(name: str, limit: int, quiet_wait: float, quiet_load: float, run_id: str) -> dict[str, Any]:
    waited = wait_quiet(quiet_wait, quiet_load)
    print(f"== {name} (load {waited['load_at_start']['load1']}, waited {waited['waited_s']} s)", flush=True)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with (logs / f"{name}.log").open("w") as log:
            done = subprocess.run([str(PY), str(REPO / "bench" / f"{name}.py")], cwd=REPO,
                                  env=bench_env(**{RUN_ID_ENV: run_id}),
                                  stdout=log, stderr=subprocess.STDOUT, timeout=limit, check=False)
        rc: Optional[int] = done.returncode
    except subprocess.TimeoutExpired:
        rc = None
    wall = time.perf_counter() - start
    tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
    status = "ok" if rc == 0 else ("timeout" if rc is None else f"exit {rc}")
    print(f"   {status} in {wall:.0f} s", flush=True)
    return {"run_id": run_id, "status": status, "wall_s": round(wall, 1), **waited, "load_at_end": load(),
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


# -- joining the scripts' sections -------------------------------------------------------------
def read(name: str) -> Optional[dict[str, Any]]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def result_run(doc: Optional[dict[str, Any]]) -> Optional[str]:
    """The run a stored result came from (results written before runs had ids: their date)."""
    if doc is None:
        return None
    return str(doc.get("run_id") or f"undated-run-{doc.get('date', '?')}")


def section(number: int, name: str, run: dict[str, Any], only_run: Optional[str]) -> tuple[str, list[Figure],
                                                                                         Optional[str]]:
    """One script's section, summary rows and missed-target note; a script that cannot render says so.

    With `only_run`, a result from any other run is left out (its script failed or did not run in
    this one): RESULTS.md never shows two runs' figures side by side unless asked to."""
    doc = read(name)
    status = run.get("status")
    if doc is not None and only_run is not None and result_run(doc) != only_run and name not in BY_HAND:
        doc = None
    if doc is None:
        text = f"## {number}. `bench/{name}.py`\n\nNo result from this run ({status or 'not run'})."
        return text, [Figure(f"`{name}`", f"no result ({status or 'not run'})")], None
    try:
        script = importlib.import_module(name)
        text = script.render(doc)
        rows = list(script.summary(doc))
        note = script.missed(doc) if hasattr(script, "missed") else None
    except Exception as exc:  # one broken script or stale result must not lose the other sections
        problem = f"{type(exc).__name__}: {exc}".splitlines()[0]
        text = f"## `bench/{name}.py`\n\nResult present but not renderable: {problem}"
        rows, note = [Figure(f"`{name}`", "result not renderable")], None
    if note is None and doc.get("target_met") is False:
        note = "target missed; see its section."
    if text.startswith("## "):
        text = f"## {number}. {text[3:]}"
    if only_run is None or name in BY_HAND:  # say which run it is
        text += f"\n\n_From run `{result_run(doc)}` ({doc.get('date', '?')})._"
        if status and status != "ok" and run.get("run_id") != result_run(doc):
            text += f" _The latest attempt (run `{run.get('run_id', '?')}`) ended: {status}._"
    return text, rows, note


def _quiet(runs: dict[str, Any]) -> str:
    settings = {(r.get("quiet_wait_s"), r.get("quiet_load")) for r in runs.values()}
    if len(settings) == 1:
        wait, threshold = next(iter(settings))
        if wait is not None and threshold is not None:
            return (f"before each script `run_all.py` waited up to {wait:.0f} s for the 1-minute load average to "
                    f"drop under {threshold}")
    return (f"before each script `run_all.py` waits for the 1-minute load average to drop under --quiet-load "
            f"(default {QUIET_LOAD}), for at most --quiet-wait seconds (default {QUIET_WAIT_S:.0f})")


def render(info: dict[str, Any], runs: dict[str, Any], only_run: Optional[str]) -> str:
    """RESULTS.md from the stored results: of the run `only_run` alone, or (None) of whichever runs
    wrote them, each section naming its run."""
    rows: list[Figure] = []
    body: list[str] = []
    notes: list[str] = []
    for number, name in enumerate(SECTIONS, start=1):
        text, figures, note = section(number, name, runs.get(name, {}), only_run)
        body += [text.rstrip("\n"), ""]
        rows += figures
        if note:
            notes.append(f"- **{name}**: {note}")
    env = ", ".join(f"`{k}={v}`" for k, v in ENV.items())
    head = [
        "# Benchmarks",
        "",
        "Built by `bench/run_all.py` from `bench/results/*.json`, one per script (`make bench` runs every script "
        "first; `--render-only` only rebuilds this file). Each script also runs alone: "
        "`.venv/bin/python bench/<name>.py`.",
        "",
        (f"Every figure below comes from one `make bench` run, `{only_run}`"
         + (f", except {', '.join(f'`{n}`' for n in sorted(BY_HAND))} (run by hand on another machine; its section "
            "names its run)." if BY_HAND else ".") if only_run is not None else
         "Rebuilt with `--render-only` from the stored results of these runs: "
         + ", ".join(f"`{r}`" for r in sorted({result_run(read(n)) for n in SECTIONS} - {None}))
         + "; each section names its own."),
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores_usable']} usable cores ({info['cores_reported']} reported), "
        f"{info['ram_gib']} GiB RAM, GPU: {info['gpu']}; {info['os']} ({info['arch']})",
        "- software: " + ", ".join(f"{k} {val}" for k, val in info["versions"].items()),
        "- the machine may be shared with other work: each section gives the load average after its run and the "
        f"table below the load at its start; {_quiet(runs)}.",
        f"- environment of every benchmark process (`bench/_common.py`): {env}; `MLFLOW_TRACKING_URI` and "
        "`RAY_ADDRESS` removed, so no benchmark reaches the user's own MLflow store or Ray cluster. "
        "`import ablate` sets `MLFLOW_DISABLE_TELEMETRY=true`, `DO_NOT_TRACK=true` and `RAY_USAGE_STATS_ENABLED=0` "
        "itself where they are unset (`ablate/__init__.py`); the benchmark environment sets them as well, for the "
        "processes that start Ray or MLflow without importing ablate first.",
        "",
        "## Summary",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    head += [f"| {' | '.join(row)} |" for row in rows]
    if notes:
        head += ["", "Missed targets, and where the time goes (numbers from the sections below):", "", *notes]
    head += ["", "Per-script runs, dates and loads:", "",
             "| script | run | date | status | wall (s) | waited (s) | load at start |",
             "|---|---|---|---|---:|---:|---:|"]
    for name in [*SECTIONS, *OTHERS]:
        doc = read(name) or {}
        r = runs.get(name, {})
        which = result_run(doc or None) or r.get("run_id", "-")
        head.append(f"| `{name}` | {which} | {doc.get('date') or r.get('date', '-')} | "
                    f"{r.get('status', '-')} | {fmt(r.get('wall_s'), 0)} | {fmt(r.get('waited_s'), 0)} | "
                    f"{fmt((r.get('load_at_start') or {}).get('load1'))} |")
    head.append("")
    tail = ["## Other benchmarks", ""]
    for name, what in OTHERS.items():
        r = runs.get(name, {})
        when = ("from this run" if only_run is not None and r.get("run_id") == only_run and r.get("status") == "ok"
                else f"not rebuilt by this run ({r.get('status', 'not run')})" if only_run is not None
                else f"run `{r.get('run_id', '?')}`, {r.get('status', 'not run')}")
        tail.append(f"- [{name}.md]({name}.md) (`bench/{name}.py`, {when}): {what}")
    if SUITE.exists():  # the test suite's time is measured by a fresh clone's `make test`, not by a script
        tail.append(f"- [suite.md](suite.md) (measured by hand): {SUITE.read_text().splitlines()[0].lstrip('# ')}")
    tail.append("")
    return "\n".join(head + body + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: rebuild RESULTS.md from bench/results/*.json and the recorded machine")
    parser.add_argument("--quiet-wait", type=float, default=QUIET_WAIT_S,
                        help="seconds to wait for a quiet machine per script")
    parser.add_argument("--quiet-load", type=float, default=QUIET_LOAD, help="1-minute load average counted as quiet")
    args = parser.parse_args(argv)
    if args.render_only and args.only:
        parser.error("--render-only runs nothing; drop --only")
    RESULTS.mkdir(parents=True, exist_ok=True)
    record_path = RESULTS / "run_all.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    runs: dict[str, Any] = record.get("runs", {})
    names: list[str] = []
    only_run: Optional[str] = None
    if args.render_only:
        # The machine the stored results were measured on, not the one rebuilding the file.
        info = record.get("machine") or machine()
    else:
        info = machine()
        names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
        only_run = f"run-{dt.datetime.now().astimezone().strftime('%Y%m%dT%H%M%S%z')}"
        print(f"run {only_run}", flush=True)
        for name in names:
            runs[name] = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                          **run_one(name, BENCHMARKS[name], args.quiet_wait, args.quiet_load, only_run)}
            record_path.write_text(json.dumps({"run_id": only_run, "machine": info, "runs": runs}, indent=2) + "\n")
    failed = [n for n in names if runs[n].get("status") != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)} (see bench/results/logs/)")
    elsewhere = [n for n in SECTIONS if only_run is not None and n not in names and n not in BY_HAND]
    if elsewhere:
        print(f"{OUT.relative_to(REPO)} not rebuilt: {', '.join(elsewhere)} did not run in {only_run}, and it shows "
              "one run only. Run them all (`make bench`), or rebuild it from mixed runs with --render-only "
              "(each section then names its run).")
        return 1 if failed else 0
    OUT.write_text(render(info, runs, only_run))
    print(f"wrote {OUT.relative_to(REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
