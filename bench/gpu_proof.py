"""The Python side of bench/gpu_proof.sh: the record of each step in bench/results/gpu_proof.json
and the `GPU proof` section of bench/RESULTS.md (the probe, studies and stand-ins: _gpu_setup.py).

The shell script runs each step's command under a time limit and hands its exit code, seconds and
log to `record`, which runs the step's check (bench/_gpu_checks.py), stores the outcome and
rewrites the section at once: a run cut short still leaves every finished step in both files.
Nothing at module level needs more than the standard library, so `start`, `record` and `render`
work even where the virtualenv could not be built.

    python bench/gpu_proof.py start [--only STEPS] [--dry-run] [--budget S] [--work DIR]
    python bench/gpu_proof.py probe --out FILE        # exit 0 only where torch uses a GPU
    python bench/gpu_proof.py study fractional|ddp --data DIR --out FILE
    python bench/gpu_proof.py record STEP --rc N --started T0 --ended T1 --log FILE --work DIR
    python bench/gpu_proof.py record STEP --status skipped|"not run" --reason TEXT
    python bench/gpu_proof.py get cuda_ok|gpu_count
    python bench/gpu_proof.py render                  # exit 0 when every step passed or was skipped

ABLATE_GPU_PROOF_RESULTS (the JSON) and ABLATE_GPU_PROOF_MD (the Markdown file) move the outputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, Figure, fmt, load, load_note, met  # noqa: E402
from _gpu_checks import BF16_TARGET, CHECKS, RATIO_TARGET, Outcome  # noqa: E402

RESULT_FILE = Path(os.environ.get("ABLATE_GPU_PROOF_RESULTS") or RESULTS / "gpu_proof.json")
MD_FILE = Path(os.environ.get("ABLATE_GPU_PROOF_MD") or REPO / "bench" / "RESULTS.md")
# The steps in the order the script runs them, with what each one runs and must show.
STEPS: dict[str, str] = {
    "env": "`make install` (plus a CUDA build of torch where the venv has none); torch sees the GPU",
    "smoke": "`ablate run studies/smoke.yaml`: both trials FINISHED on `cuda:N`, tags `ablate.devices` and "
             "`ablate.gpu`, `system/gpu_*` metrics",
    "fractional": "4 one-iteration bf16 trials, `gpus_per_trial: 0.25`, through Ray: all FINISHED, training on "
                  "the one GPU at once",
    "latency": "`bench/latency.py`: SegFormer B0, B2 and the two ResNet-18 models, fp32 and bf16",
    "throughput": "`bench/gpu_throughput.py --iters 60 --warmup 20`: `ablate run` vs a bare Runner, B0 and B2, "
                  "fp32 and bf16, MFU",
    "ladder": "`ablate run studies/trick_ladder.yaml --profile demo`, then `ablate report`",
    "ddp": "a `gpus_per_trial: 2` DDP trial (nccl, SyncBN); 2 GPUs or more",
}
PASSED, FAILED, TIMEOUT, SKIPPED, NOT_RUN = "passed", "failed", "timeout", "skipped", "not run"
FINE = (PASSED, SKIPPED)  # a skipped step (one GPU: no DDP) proves nothing, but nothing is wrong either
TAIL_LINES = 30


# -- the results file -------------------------------------------------------------------------------
def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def read(path: Optional[Path] = None) -> dict[str, Any]:
    path = path or RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write(doc: dict[str, Any], path: Optional[Path] = None) -> None:
    path = path or RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def start(only: list[str], dry_run: bool, budget: float, work: str, command: str) -> dict[str, Any]:
    """A fresh record; with --only, the other steps' earlier results stay (each carries its date)."""
    earlier = read().get("steps", {}) if only else {}
    doc = {
        "benchmark": "gpu_proof", "run_id": f"gpu_proof-{dt.datetime.now():%Y%m%dT%H%M%S%f}", "date": now(),
        "command": command, "dry_run": dry_run, "budget_s": budget,
        "started_at": time.time(), "elapsed_s": 0.0, "work_dir": work, "machine": {},
        "steps": {name: earlier[name] for name in STEPS if name in earlier and name not in only},
    }
    write(doc)
    return doc


def log_tail(log: Optional[Path]) -> str:
    if log is None or not log.exists():
        return ""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(lines[-TAIL_LINES:])[-4000:]


def record(step: str, *, rc: Optional[int] = None, started: float = 0.0, ended: float = 0.0,
           log: Optional[Path] = None, work: Optional[Path] = None, status: Optional[str] = None,
           reason: str = "") -> dict[str, Any]:
    """Store how one step went: its status, seconds, summary, key numbers and, unless it passed,
    its problems and the end of its log."""
    doc = read()
    machine = doc.setdefault("machine", {})
    entry: dict[str, Any] = {"date": now(), "run_id": doc.get("run_id")}
    if status is not None:  # decided by the script without running anything
        entry.update(status=status, summary=reason)
    else:
        entry["seconds"] = round(ended - started, 1)
        outcome = Outcome()
        if doc.get("dry_run"):
            outcome.summary = "stand-in command (dry run)"
        if work is not None and (not doc.get("dry_run") or step == "env"):
            try:
                outcome = CHECKS[step](work, machine.get("gpus") or [])
            except Exception as exc:  # a check that breaks is a finding about the step, not a crash
                outcome.problems.append(f"its check failed: {type(exc).__name__}: {exc}".splitlines()[0][:300])
        if step == "env" and outcome.numbers:
            machine.update({k: v for k, v in outcome.numbers.items() if not isinstance(v, dict) or k == "smi"})
            if doc.get("dry_run"):
                outcome.problems.clear()  # a CPU is what a dry run expects
        if rc in (124, 137):
            entry["status"] = TIMEOUT
            outcome.problems.insert(0, "stopped at its time limit")
        elif rc != 0:
            entry["status"] = FAILED
            outcome.problems.insert(0, f"exit code {rc}")
        else:
            entry["status"] = PASSED if outcome.ok else FAILED
        entry.update(summary=outcome.summary, numbers=outcome.numbers)
        if outcome.problems:
            entry["problems"] = outcome.problems
        if entry["status"] != PASSED:
            entry["log_tail"] = log_tail(log)
            if step == "env" and _offline(entry["log_tail"]):
                entry.setdefault("problems", []).append(
                    "pip reached no package index: on a machine without network give it a wheelhouse "
                    "(PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR) or a venv that already holds a CUDA torch "
                    "(ABLATE_GPU_PROOF_VENV=DIR)")
    doc.setdefault("steps", {})[step] = entry
    doc["elapsed_s"] = round(time.time() - doc.get("started_at", time.time()), 1)
    doc["load_after"] = load()
    write(doc)
    return entry


def _offline(text: str) -> bool:
    signs = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
             "No matching distribution found", "Could not find a version that satisfies", "ConnectTimeout",
             "Read timed out", "Max retries exceeded")
    return any(sign in text for sign in signs)


def exit_code(doc: dict[str, Any]) -> int:
    steps = doc.get("steps", {})
    return 0 if steps and all(s.get("status") in FINE for s in steps.values()) else 1


# -- RESULTS.md -------------------------------------------------------------------------------------
def _machine_line(d: dict[str, Any]) -> str:
    m = d.get("machine", {})
    smi = m.get("smi") or {}
    memory = ", ".join(f"{v} MiB" for v in smi.get("memory_mib", [])[:1])
    gpus = m.get("gpus") or smi.get("gpus") or []
    where = f"**{gpus[0]}**" if gpus else "no GPU"
    if len(gpus) > 1:
        where += f" (x{len(gpus)})"
    return (f"{where}{f' ({memory})' if memory else ''}, driver {m.get('driver') or '-'}, CUDA "
            f"{m.get('cuda_driver') or '-'} (driver) / {m.get('cuda') or 'none'} (torch build), torch "
            f"{m.get('torch') or '-'}, Python {m.get('python') or '-'}, {m.get('host_cores') or '-'} cores")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _nested(name: str, result: dict[str, Any]) -> Optional[str]:
    """latency.py's or gpu_throughput.py's own section for its GPU result, one heading level down."""
    try:
        import importlib

        text = importlib.import_module(name).render(result)
    except Exception as exc:  # an old or odd result: the table above still has the key numbers
        return f"### `bench/{name}.py`\n\nNot renderable: {type(exc).__name__}: {exc}".splitlines()[0]
    return re.sub(r"^## ", "### ", text, flags=re.M)


def render(d: dict[str, Any]) -> str:
    steps = d.get("steps", {})
    counts = {s: sum(e.get("status") == s for e in steps.values()) for s in (PASSED, FAILED, TIMEOUT, SKIPPED, NOT_RUN)}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out = ["## GPU proof (`bench/gpu_proof.sh`)", ""]
    if d.get("dry_run"):
        out += ["**Dry run** (`ABLATE_GPU_PROOF_DRY_RUN=1`): every step's command was a stand-in. This checks the "
                "script's plumbing and proves nothing about a GPU.", ""]
    out += [f"`{d.get('command', 'bash bench/gpu_proof.sh')}` on {_machine_line(d)}; {d.get('date', '-')}: "
            f"{tally or 'no step ran'}, {fmt(d.get('elapsed_s'), 0)} s of its {fmt(d.get('budget_s'), 0)} s budget. "
            "Each step is the project's own command under a time limit; its check reads what the command left "
            "(`ablate run --json`, the MLflow runs, the benchmark's JSON), not its console output.", "",
            "| step | what it runs and must show | status | s | result |", "|---|---|---|---:|---|"]
    for name, what in STEPS.items():
        e = steps.get(name, {"status": NOT_RUN, "summary": "not in this run"})
        # a step kept from another run of the script (--only): its run id differs from this record's
        earlier = bool(e.get("date")) and e.get("run_id") != d.get("run_id")
        result = e.get("summary") or "-"
        if earlier:
            result += f" (earlier run, {e['date']})"
        status = e.get("status", "-")
        out.append(f"| {name} | {_cell(what)} | {status if status in FINE else f'**{status}**'} | "
                   f"{fmt(e.get('seconds'), 0)} | {_cell(result)} |")
    targets = steps.get("throughput", {}).get("numbers", {}).get("targets")
    if targets:
        out += ["", "Throughput targets (lowest over B0/B2 and fp32/bf16): " + "; ".join(
            f"{name}: {met(flag)}" for name, flag in targets.items()) + "."]
    problems = [(n, e) for n, e in steps.items() if e.get("problems") or e.get("log_tail")]
    if problems:
        out += ["", "### What went wrong", ""]
        for name, e in problems:
            out.append(f"- **{name}** ({e.get('status')}): " + "; ".join(e.get("problems", [])))
            if e.get("log_tail"):
                out += ["", "  ```", *[f"  {line}" for line in e["log_tail"].splitlines()], "  ```"]
    for step, script in (("latency", "latency"), ("throughput", "gpu_throughput")):
        result = steps.get(step, {}).get("numbers", {}).get("result")
        if result and not d.get("dry_run"):
            out += ["", _nested(script, result) or ""]
    out += ["", load_note(d)]
    return "\n".join(out)


def summary(d: dict[str, Any]) -> list[Figure]:
    steps = d.get("steps", {})
    gpu = (d.get("machine") or {}).get("gpu")
    gpu = gpu if gpu and gpu != "none" else "no GPU"
    fine = sum(e.get("status") in FINE for e in steps.values())
    rows = [Figure(f"CUDA path on a GPU (`bench/gpu_proof.sh`{', dry run' if d.get('dry_run') else ''}): "
                   f"steps passed or skipped, on {gpu}", f"{fine}/{len(STEPS)}", f"{len(STEPS)}/{len(STEPS)}",
                   met(fine == len(STEPS) and not d.get("dry_run")))]
    numbers = steps.get("throughput", {}).get("numbers", {})
    if "lowest_ablate_over_bare" in numbers:
        low = numbers["lowest_ablate_over_bare"]
        rows.append(Figure("GPU training images/s, ablate / bare Runner, lowest of B0/B2 fp32/bf16 (gpu_proof)",
                           fmt(low, 3), f">= {RATIO_TARGET}", met(None if low is None else low >= RATIO_TARGET)))
        low = numbers.get("lowest_bf16_over_fp32")
        rows.append(Figure("GPU training images/s through ablate, bf16 / fp32, lowest of B0/B2 (gpu_proof)",
                           fmt(low, 2), f">= {BF16_TARGET}", met(None if low is None else low >= BF16_TARGET)))
    return rows


_SECTION = re.compile(r"^## (?:\d+\. )?(?:GPU proof \(`bench/gpu_proof\.sh`\)|`bench/gpu_proof\.py`).*?(?=^## |\Z)",
                      re.M | re.S)


def update_markdown(d: dict[str, Any], path: Optional[Path] = None) -> None:
    """Replace (or add, before `## Other benchmarks`) this section, numbered as run_all.py numbers it."""
    path = path or MD_FILE
    try:
        from run_all import SECTIONS

        number = f"{SECTIONS.index('gpu_proof') + 1}. "
    except (ImportError, ValueError):
        number = ""
    text = render(d).replace("## GPU proof", f"## {number}GPU proof", 1).rstrip("\n") + "\n\n"
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if _SECTION.search(old):
        new = _SECTION.sub(lambda _: text, old, count=1)
    elif "\n## Other benchmarks" in old:
        new = old.replace("\n## Other benchmarks", "\n" + text + "## Other benchmarks", 1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


# -- command line -----------------------------------------------------------------------------------
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start")
    p.add_argument("--only", default="")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--budget", type=float, default=0.0)
    p.add_argument("--work", default="")
    p.add_argument("--command", default="bash bench/gpu_proof.sh")
    p = sub.add_parser("probe")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("study")
    p.add_argument("kind", choices=["fractional", "ddp"])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("dry")
    p.add_argument("step", choices=list(STEPS))
    p.add_argument("--work", type=Path, required=True)
    p = sub.add_parser("record")
    p.add_argument("step", choices=list(STEPS))
    p.add_argument("--rc", type=int, default=None)
    p.add_argument("--started", type=float, default=0.0)
    p.add_argument("--ended", type=float, default=0.0)
    p.add_argument("--log", type=Path, default=None)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--status", choices=[SKIPPED, NOT_RUN], default=None)
    p.add_argument("--reason", default="")
    p = sub.add_parser("get")
    p.add_argument("key", choices=["cuda_ok", "gpu_count"])
    sub.add_parser("render")
    args = parser.parse_args(argv)

    if args.cmd == "start":
        only = [s for s in args.only.split(",") if s]
        start(only, args.dry_run, args.budget, args.work, args.command)
    elif args.cmd == "probe":
        from _gpu_setup import probe

        facts = probe()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(facts, indent=2) + "\n")
        print(json.dumps(facts))
        usable = bool(facts.get("cuda_available")) and "ablate_error" not in facts
        return 0 if usable else 1
    elif args.cmd == "study":
        import yaml
        from _gpu_setup import study_doc

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(yaml.safe_dump(study_doc(args.kind, args.data.resolve()), sort_keys=False))
    elif args.cmd == "dry":
        from _gpu_setup import dry

        return dry(args.step, args.work)
    elif args.cmd == "record":
        entry = record(args.step, rc=args.rc, started=args.started, ended=args.ended, log=args.log, work=args.work,
                       status=args.status, reason=args.reason)
        update_markdown(read())
        print(f"   {args.step}: {entry['status']}" + (f" in {entry['seconds']:.0f} s" if "seconds" in entry else "")
              + (f": {entry['summary']}" if entry.get("summary") else ""), flush=True)
        for problem in entry.get("problems", []):
            print(f"     - {problem}", flush=True)
    elif args.cmd == "get":
        machine = read().get("machine", {})
        if args.key == "gpu_count":
            print(machine.get("gpu_count", 0))
        else:
            print("yes" if machine.get("cuda_available") and "ablate_error" not in machine else "no")
    elif args.cmd == "render":
        doc = read()
        update_markdown(doc)
        return exit_code(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
