"""How long `ablate report` takes over 1,000 trial runs.

Fills a temporary sqlite store through the same helpers `ablate run` uses (tags, params, batched
metrics, per-class IoU), plus a tune parent run with a 600-trial Optuna study, then times
`build_report` cold (first call in the process) and warm, and writes bench/report_1000.md.

    .venv/bin/python bench/report_1000.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

STUDY = "bench-1000"
ZOO = [f"{family}-{size}" for family in ("unet", "deeplabv3plus", "swin", "segformer", "pspnet") for size in ("s", "l")]
RECIPE = ["transfer", "poly_lr", "class_balanced_loss", "ohem", "multiscale_test", "aux_head"]
SEEDS = (0, 1, 2)
N_NAMED = 100  # plain named trials, three seeds each
N_SEARCH = 600
N_FAILED, N_RUNNING = 20, 8


def _class_metrics(rng: random.Random, miou: float) -> dict[str, float]:
    from ablate.data import CLASSES

    out = {}
    for name in CLASSES:
        key = name.replace(" ", "_")
        out[f"IoU.{key}"] = float("nan") if name == "train" else max(0.0, min(100.0, miou + rng.gauss(0, 12)))
        out[f"Acc.{key}"] = float("nan") if name == "train" else max(0.0, min(100.0, miou + 8 + rng.gauss(0, 8)))
    return out


def _run(
    client: Any, exp_id: str, rng: random.Random, name: str, seed: int, tags: dict[str, str], *,
    miou: Optional[float], status: str = "FINISHED", flops: float = 60.0, params_m: float = 27.0,
) -> str:
    from mlflow.entities import Param

    from ablate import tracking

    all_tags = {
        tracking.tags.TRIAL_ID: f"{name}-s{seed}", tracking.tags.STUDY: STUDY, tracking.tags.KIND: "trial",
        "ablate.trial_name": name, "ablate.seed": str(seed), "ablate.model": "segformer_mit-b2_kitti",
        "ablate.enc_pretrained": "yes", "ablate.dec_pretrained": "no", "ablate.duration_s": f"{rng.uniform(600, 3600):.1f}",
        **tags,
    }
    if status == "FAILED":
        all_tags["ablate.failure"] = "RuntimeError: CUDA out of memory"
    run_id = client.create_run(exp_id, run_name=f"{name}-s{seed}", tags=all_tags).info.run_id
    params = {"trial_name": name, "base": "configs/segformer/segformer_mit-b2_kitti.py", "seed": seed, "iters": 20000,
              "batch_size": 2, "dataset": "kitti@0123456789ab", "model": "EncoderDecoder", "backbone": "MixVisionTransformer",
              "decode_head": "SegformerHead", "crop": "None", "profile": "None", "override.optim_wrapper.optimizer.lr": 6e-5}
    client.log_batch(run_id, params=[Param(k, v) for k, v in tracking.param_items(params).items()])
    if miou is not None:
        store = tracking.RunStore.open(client.tracking_uri)
        store.log_metrics(run_id, {"mIoU": miou, "mAcc": miou + 8, "aAcc": 90.0, "best_mIoU": miou,
                                   "loss": 0.3, "lr": 1e-6, **_class_metrics(rng, miou)}, step=20000)
        store.log_metrics(run_id, {"flops_g": flops, "params_m": params_m}, step=0)
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)
    return run_id


def _optuna(path: Path, rng: random.Random) -> tuple[str, list[tuple[int, str, float, dict[str, float]]]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{path}"
    study = optuna.create_study(study_name=f"{STUDY}-search", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    done = []
    for _ in range(N_SEARCH):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-6, 1e-3, log=True)
        warmup = trial.suggest_int("warmup", 0, 1500)
        if rng.random() < 0.1:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            done.append((trial.number, "PRUNED", float("nan"), {"lr": lr, "warmup": warmup}))
            continue
        value = 70 + 5 * (1 - abs(-4.5 - math.log10(lr))) - warmup / 1000 + rng.gauss(0, 0.5)
        study.tell(trial, value)
        done.append((trial.number, "COMPLETE", value, {"lr": lr, "warmup": warmup}))
    return storage, done


def fill(root: Path) -> tuple[str, int]:
    """The 1,000-run store; returns its URI and the number of trial runs written."""
    from ablate import tracking

    rng = random.Random(0)
    uri = f"sqlite:///{root / 'mlruns.db'}"
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = tracking.RunStore.open(uri).ensure_experiment(STUDY)
    count = 0
    for index, model in enumerate(ZOO):
        flops = 10.0 * (1.6 ** index)
        for seed in SEEDS:
            _run(client, exp, rng, model, seed, {"ablate.shape": "zoo", "ablate.model": model,
                                                 "ablate.dec_pretrained": "yes" if index % 3 == 0 else "no"},
                 miou=55 + index * 2 + rng.gauss(0, 1), flops=flops, params_m=flops / 3)
            count += 1
    for rung, trick in enumerate(["base", *RECIPE]):
        for seed in SEEDS:
            _run(client, exp, rng, f"r{rung}-{trick}", seed, {"ablate.shape": "ladder", "ablate.rung": str(rung), "ablate.trick": trick},
                 miou=61 + 3 * rung + rng.gauss(0, 0.8))
            count += 1
    for rung, trick in enumerate(["full", *RECIPE]):
        for seed in SEEDS:
            _run(client, exp, rng, "full" if rung == 0 else f"minus-{trick}", seed,
                 {"ablate.shape": "leave_one_out", "ablate.rung": str(rung), "ablate.trick": trick},
                 miou=(78 if rung == 0 else 78 - rung) + rng.gauss(0, 0.8))
            count += 1
    for index in range(N_NAMED):
        for seed in SEEDS:
            _run(client, exp, rng, f"lr-{index:03d}", seed, {"ablate.shape": "trials"},
                 miou=60 + rng.gauss(0, 4), flops=rng.uniform(20, 120))
            count += 1
    storage, trials = _optuna(root / "optuna.db", rng)
    client.create_run(exp, run_name="tune", tags={tracking.tags.KIND: "tune", tracking.tags.STUDY: STUDY,
                                                    "ablate.optuna_storage": storage, "ablate.optuna_study": f"{STUDY}-search"})
    for number, state, value, _ in trials:
        _run(client, exp, rng, f"search-{number:04d}", 0, {"ablate.shape": "trials", "ablate.optuna_trial": str(number),
                                                          "ablate.optuna_state": state},
             miou=None if state != "COMPLETE" else value)
        count += 1
    for index in range(N_FAILED + N_RUNNING):
        status = "FAILED" if index < N_FAILED else "RUNNING"
        _run(client, exp, rng, f"broken-{index:02d}", 0, {"ablate.shape": "trials"}, miou=None, status=status)
        count += 1
    return uri, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the store and report here instead of a temp folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ablate-bench-report-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        uri, count = fill(root)
        fill_s = time.perf_counter() - started
        print(f"filled {count} trial runs in {fill_s:.1f} s", flush=True)

        from ablate.report import build_report, collect

        timings = []
        for label in ("cold", "warm"):
            started = time.perf_counter()
            files = build_report([STUDY], out=root / "report", tracking_uri=uri)
            timings.append((label, time.perf_counter() - started, len(files)))
            print(f"build_report ({label}): {timings[-1][1]:.2f} s, {len(files)} files", flush=True)
        started = time.perf_counter()
        collection = collect(uri, [STUDY])
        collect_s = time.perf_counter() - started
        print(f"collect alone: {collect_s:.2f} s ({len(collection.trials)} trial runs)", flush=True)
        _write(count, fill_s, timings, collect_s, len(collection.trials))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def _write(count: int, fill_s: float, timings: list[tuple[str, float, int]], collect_s: float, fetched: int) -> None:
    import matplotlib
    import mlflow
    import optuna

    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    lines = [
        "# `ablate report` over 1,000 trial runs",
        "",
        "Measured by `bench/report_1000.py` (re-run it to refresh this file).",
        "",
        f"- store: temporary sqlite MLflow store, {count} trial runs in one experiment (filled in {fill_s:.0f} s, not timed):",
        f"  {len(ZOO)} zoo models x {len(SEEDS)} seeds, a {len(RECIPE) + 1}-rung ladder and a {len(RECIPE) + 1}-row",
        f"  leave-one-out set x {len(SEEDS)} seeds, {N_NAMED} named trials x {len(SEEDS)} seeds, {N_SEARCH} Optuna search",
        f"  trials (one tune parent run, 600-trial Optuna sqlite study), {N_FAILED} failed and {N_RUNNING} running runs;",
        "  each finished run has mIoU/mAcc/aAcc, 19 `IoU.<class>` and 19 `Acc.<class>`, FLOPs and params.",
        "- report: Table 1, ladder and leave-one-out tables (md/tex/csv), PNG figures (mIoU vs FLOPs, waterfall,",
        "  leave-one-out deltas, per-class heatmaps and bars, Optuna history/importance/slice), index.html, README.md.",
        f"- machine: {platform.machine()}, {affinity} usable CPU cores ({cpus} reported), shared with other work; "
        f"{platform.system()} {platform.release()}",
        f"- software: Python {platform.python_version()}, MLflow {mlflow.__version__}, Optuna {optuna.__version__}, "
        f"matplotlib {matplotlib.__version__}",
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    for label, seconds, files in timings:
        note = " (first call: includes importing MLflow, matplotlib and Optuna)" if label == "cold" else ""
        lines.append(f"| `build_report`, {label}{note}; {files} files | {seconds:.2f} |")
    lines.append(f"| fetching all {fetched} runs alone (`collect`: paged `search_runs`, part of the above) | {collect_s:.2f} |")
    (REPO / "bench" / "report_1000.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
