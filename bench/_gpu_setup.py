"""What bench/gpu_proof.sh needs besides the checks: the probe of the machine, the two studies it
writes (quarter-GPU trials, a 2-GPU DDP trial) and a dry run's stand-in for a step's command."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from _common import B0_CONFIG

TINY_DATA = {"train": 6, "test": 3, "height": 64, "width": 192, "seed": 0}
TINY_BUDGET = {"iters": 1, "val_interval": 1, "batch_size": 2, "crop": [64, 64], "log_interval": 1, "workers": 0}


# -- the machine ------------------------------------------------------------------------------------
def _smi(*args: str) -> Optional[str]:
    try:
        done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def probe() -> dict[str, Any]:
    """GPU, driver, CUDA and torch as the machine and the venv's torch report them."""
    out: dict[str, Any] = {"python": platform.python_version(), "host_cores": os.cpu_count()}
    rows = _smi("--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits")
    if rows:
        gpus = [[c.strip() for c in line.split(",")] for line in rows.strip().splitlines() if line.strip()]
        out["smi"] = {"gpus": [g[0] for g in gpus], "driver": gpus[0][1] if gpus and len(gpus[0]) > 1 else None,
                      "memory_mib": [g[2] for g in gpus if len(g) > 2]}
        out["driver"] = out["smi"]["driver"]
        header = re.search(r"CUDA Version:\s*([\d.]+)", _smi() or "")
        out["cuda_driver"] = header.group(1) if header else None
    try:
        import torch
    except Exception as exc:
        out["torch_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return out
    out.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    out["gpu_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(out["gpu_count"])]
    out["gpu"] = out["gpus"][0] if out["gpus"] else "none"
    if out["cuda_available"]:
        out["bf16"] = torch.cuda.is_bf16_supported()
        out["cudnn"] = torch.backends.cudnn.version()
    try:
        from importlib import metadata

        import ablate  # noqa: F401

        out["ablate"] = metadata.version("mmseg-ablate")
    except Exception as exc:
        out["ablate_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return out


# -- the studies the script writes ------------------------------------------------------------------
def study_doc(kind: str, data: Path) -> dict[str, Any]:
    """Four quarter-GPU trials (one per seed) in bf16, or one trial as a 2-GPU DDP job."""
    doc: dict[str, Any] = {
        "name": f"gpu_proof_{kind}",
        "base": str(B0_CONFIG),
        "data": {"root": str(data), "synth": TINY_DATA, "image_scale": [TINY_DATA["width"], TINY_DATA["height"]]},
        "budget": dict(TINY_BUDGET),
    }
    if kind == "fractional":
        doc["budget"]["amp"] = "bf16"
        doc.update(resources={"gpus_per_trial": 0.25, "retries": 0}, seeds=[0, 1, 2, 3],
                   trials=[{"name": "quarter-gpu"}])
    else:
        doc["budget"].update(iters=2, val_interval=2)
        doc.update(resources={"gpus_per_trial": 2, "retries": 0}, seeds=[0], trials=[{"name": "ddp-2gpu"}])
    return doc


def dry(step: str, work: Path) -> int:
    """A dry run's stand-in for a step's command: instant, and failing or hanging on request
    (ABLATE_GPU_PROOF_DRY_FAIL / ABLATE_GPU_PROOF_DRY_HANG: comma-separated step names)."""
    def named(var: str) -> bool:
        return step in os.environ.get(var, "").split(",")

    print(f"stand-in for the {step} step", flush=True)
    if step == "env":
        work.mkdir(parents=True, exist_ok=True)
        (work / "probe.json").write_text(json.dumps(probe(), indent=2) + "\n")
    if named("ABLATE_GPU_PROOF_DRY_HANG"):
        time.sleep(3600)
    if named("ABLATE_GPU_PROOF_DRY_FAIL"):
        print(f"the {step} stand-in fails on purpose", file=sys.stderr, flush=True)
        return 1
    return 0
