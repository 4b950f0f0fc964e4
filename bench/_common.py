"""Helpers every benchmark script shares: paths, a telemetry-free environment, timing, JSON, rendering.

Each benchmark runs `ablate` the way a user does (the CLI in a subprocess, or the public API in
this process) and writes one JSON file under bench/results/; its `render(result)` turns that JSON
into its section of bench/RESULTS.md, which bench/run_all.py joins. Nothing here is imported by
the package itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
# ABLATE_BENCH_RESULTS redirects the JSON results (bench/gpu_proof.sh keeps its GPU runs of
# latency.py and gpu_throughput.py apart from the tracked ones this way; tests use a scratch folder).
RESULTS = Path(os.environ.get("ABLATE_BENCH_RESULTS") or REPO / "bench" / "results").resolve()
PY = Path(sys.executable)
ABLATE = PY.with_name("ablate")
B0_CONFIG = REPO / "configs" / "segformer" / "segformer_mit-b0_kitti.py"
B2_CONFIG = REPO / "configs" / "segformer" / "segformer_mit-b2_kitti.py"
SYNTH_KITTI = REPO / "data" / "synth_kitti"

# No usage reporting or telemetry (Ray's, MLflow's), synchronous MLflow writes (so a run's numbers
# are in the store when the command returns), never the user's own store or Ray cluster (the two
# variables that point at them are dropped below).
ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow 3 otherwise fetches a config from the internet
    "DO_NOT_TRACK": "true",
    "PYTHONWARNINGS": "ignore",
}
os.environ.update(ENV)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("RAY_ADDRESS", None)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for a child process: this one's, with the benchmark settings forced."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update(ENV)
    env.update(extra)
    return env


def load() -> dict[str, float]:
    """1/5/15-minute load averages: the machine is shared, so every figure carries them."""
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@contextmanager
def scratch(prefix: str, keep: Optional[Path] = None) -> Iterator[Path]:
    """A temporary folder (or `keep`, left in place for inspection)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=f"ablate-bench-{prefix}-") as tmp:
        yield Path(tmp)


def timed_run(cmd: Sequence[str], *, cwd: Path = REPO, env: Optional[dict[str, str]] = None,
              timeout: Optional[float] = None, log: Optional[Path] = None) -> dict[str, Any]:
    """Run a command; wall seconds, exit code and the tail of its output (all of it to `log`)."""
    start = time.perf_counter()
    done = subprocess.run(list(map(str, cmd)), cwd=cwd, env=env or bench_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if log is not None:
        log.write_text(f"$ {' '.join(map(str, cmd))}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    return {"wall_s": round(wall, 3), "rc": done.returncode, "stdout": done.stdout,
            "stderr_tail": done.stderr[-3000:]}


def parse_json_stdout(text: str) -> Any:
    """The JSON document a command printed (`ablate run --json`), ignoring anything before it."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in the command's output")
    return json.loads(text[start:])


# Which `run_all.py` run a result belongs to: RESULTS.md is built from the results of one run only.
# A script run alone stamps its result as a run of its own.
RUN_ID_ENV = "ABLATE_BENCH_RUN_ID"


def run_id() -> str:
    return os.environ.get(RUN_ID_ENV) or f"alone-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>.json, stamped with its run, the date, the command and the load after the run."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "run_id": run_id(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": f".venv/bin/python bench/{name}.py",
        "load_after": load(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)
    return path


def write_study(path: Path, doc: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def tiny_data(root: Path) -> Path:
    """The test suite's 6/3-image 64x192 synthetic set (generated once per root)."""
    from ablate import data

    if (root / ".complete").exists():
        return root
    return data.synthesize(root, train=6, test=3, height=64, width=192, seed=0)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or not b:
        return None
    return round(a / b, 4)


# -- rendering: every script's `render(result)` / `summary(result)` build on these ----------------


class Figure(NamedTuple):
    """One row of the summary table at the top of RESULTS.md."""

    figure: str
    measured: str
    target: str = "-"
    met: str = "-"


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """A number as RESULTS.md shows it; `-` where the result has none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def met(flag: Optional[bool]) -> str:
    return {True: "yes", False: "**no**", None: "-"}[flag]


def load_note(result: dict[str, Any]) -> str:
    """The load the figures were taken under: the machine may be shared."""
    loads = result.get("load_after") or {}
    return (f"load average after the run: {loads.get('load1')} / {loads.get('load5')} / {loads.get('load15')} "
            "(1/5/15 min)")
