"""What median pruning saves in `ablate tune`, and what it costs in best mIoU.

The same search (learning rate of SegFormer-B0, log-uniform 1e-4..1e-1, a seeded random sampler
so both variants try exactly the same 6 values, in the same order) runs twice through
`tune_study` on a one-slot RayDispatcher: once with `pruner: {type: median}` and once with
`pruner: {type: none}`. Each trial trains 12 iterations on the tiny synthetic set and is
evaluated every 3, so a pruned trial stops at 3, 6 or 9.

Iterations actually trained are read back from MLflow (the last step of each trial's loss
history, logged every iteration), so they count what ran, not what was planned.

    .venv/bin/python bench/hpo_pruning.py [--trials 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    B0_CONFIG,
    Figure,
    fmt,
    load,
    load_note,
    ratio,
    scratch,
    sqlite_uri,
    tiny_data,
    write_result,
    write_study,
)

ITERS = 12
VAL_INTERVAL = 3


def study_doc(data_root: Path, pruner: dict[str, Any], n_trials: int) -> dict[str, Any]:
    return {
        "name": "bench_hpo",
        "base": str(B0_CONFIG),
        "data": {"root": str(data_root), "image_scale": [192, 64]},
        "budget": {"iters": ITERS, "val_interval": VAL_INTERVAL, "batch_size": 2, "crop": [32, 32],
                   "log_interval": 1, "workers": 0},
        "seeds": [0],
        "search": {
            "params": {"optim_wrapper.optimizer.lr": {"loguniform": [1.0e-4, 1.0e-1]}},
            "sampler": {"type": "random", "seed": 0},
            "pruner": pruner,
            "n_trials": n_trials,
        },
    }


def variant(tmp: Path, data_root: Path, label: str, pruner: dict[str, Any], n_trials: int) -> dict[str, Any]:
    from ablate.dispatch import RayDispatcher
    from ablate.search import tune_study
    from ablate.study import load_study

    root = tmp / label
    root.mkdir()
    study = load_study(write_study(root / "study.yaml", study_doc(data_root, pruner, n_trials)))
    uri = sqlite_uri(root / "mlruns.db")
    # One trial at a time on the machine's 2 cores: the pruner sees every earlier trial finished.
    dispatcher = RayDispatcher(num_cpus=2, cpus_per_trial=2)
    start = time.perf_counter()
    outcome = tune_study(study, uri, dispatcher, runs_dir=root / "runs")
    wall = time.perf_counter() - start
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    trials = []
    for result in outcome.results:
        run = client.get_run(result.run_id)
        history = client.get_metric_history(result.run_id, "loss")
        evaluated = sorted(m.step for m in client.get_metric_history(result.run_id, "mIoU"))
        trials.append({
            "optuna_trial": int(run.data.tags.get("ablate.optuna_trial", -1)),
            "lr": float(run.data.params["override.optim_wrapper.optimizer.lr"]),
            "state": result.state.value,
            "iters_trained": max((m.step for m in history), default=0),
            "mIoU": result.metrics.get("mIoU"),
            "mIoU_steps_in_mlflow": evaluated,
            "duration_s": round(result.duration_s, 2),
        })
    trials.sort(key=lambda t: t["optuna_trial"])
    return {
        "pruner": pruner,
        "wall_s": round(wall, 2),
        "trial_iterations": sum(t["iters_trained"] for t in trials),
        "planned_iterations": ITERS * len(trials),
        "pruned": sum(t["state"] == "PRUNED" for t in trials),
        # A pruned trial stops right after an evaluation at the iteration it reached; that
        # evaluation should be in its MLflow history like every other.
        "pruned_missing_last_eval": sum(
            t["state"] == "PRUNED" and t["iters_trained"] not in t["mIoU_steps_in_mlflow"] for t in trials),
        "best_mIoU": outcome.best_value,
        "best_params": outcome.best_params,
        "trials": trials,
        "load": load(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)

    with scratch("hpo", args.keep) as tmp:
        os.environ["ABLATE_CACHE_DIR"] = str(tmp / "cache")
        data_root = tiny_data(tmp / "tiny")
        median = variant(tmp, data_root, "median", {"type": "median", "n_startup_trials": 2}, args.trials)
        print(f"median: {median['trial_iterations']} iterations, best mIoU {median['best_mIoU']}", flush=True)
        none = variant(tmp, data_root, "none", {"type": "none"}, args.trials)
        print(f"none:   {none['trial_iterations']} iterations, best mIoU {none['best_mIoU']}", flush=True)

    same_params = [t["lr"] for t in median["trials"]] == [t["lr"] for t in none["trials"]]
    write_result("hpo_pruning", {
        "setup": {"model": "SegFormer-B0", "data": "tiny synthetic 64x192, 6 train / 3 val", "iters": ITERS,
                  "val_interval": VAL_INTERVAL, "trials": args.trials, "sampler": "random, seed 0",
                  "search": "optim_wrapper.optimizer.lr loguniform [1e-4, 1e-1]", "slots": 1,
                  "same_lr_sequence_in_both": same_params},
        "median": median,
        "none": none,
        "iterations_ratio_median_vs_none": ratio(median["trial_iterations"], none["trial_iterations"]),
        "wall_ratio_median_vs_none": ratio(median["wall_s"], none["wall_s"]),
        "best_mIoU_delta": (None if median["best_mIoU"] is None or none["best_mIoU"] is None
                            else round(median["best_mIoU"] - none["best_mIoU"], 4)),
    })
    return 0


# -- RESULTS.md section ---------------------------------------------------------------------------
def summary(d: dict[str, Any]) -> list[Figure]:
    m, n = d["median"], d["none"]
    return [
        Figure(f"HPO, {d['setup']['trials']} trials: trial-iterations median pruning / no pruning",
               f"{m['trial_iterations']} / {n['trial_iterations']} ({fmt(d['iterations_ratio_median_vs_none'], 2)})"),
        Figure("HPO: best mIoU median pruning / no pruning", f"{fmt(m['best_mIoU'])} / {fmt(n['best_mIoU'])}"),
    ]


def _mean(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def render(d: dict[str, Any]) -> str:
    m, n, s = d["median"], d["none"], d["setup"]
    out = [
        "## Median pruning in `ablate tune` (`bench/hpo_pruning.py`)",
        "",
        f"{s['trials']} trials, {s['search']}, {s['sampler']} (the same learning rates in both: "
        f"{'yes' if s['same_lr_sequence_in_both'] else 'no'}), {s['iters']} iterations each, evaluated every "
        f"{s['val_interval']}, one trial at a time, data: {s['data']}. Iterations trained are the last step of "
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
        out += ["", f"{missing} of the {m['pruned']} pruned trials lack, in MLflow, the evaluation at the iteration "
                "they were pruned (it was reported to Optuna); their mIoU above is their last evaluation in MLflow, "
                "or none."]
    wall, iters = d.get("wall_ratio_median_vs_none"), d.get("iterations_ratio_median_vs_none")
    pruned = [t for t in m["trials"] if t["state"] == "PRUNED"]
    pruned_s = _mean([t["duration_s"] for t in pruned])
    pruned_iters = _mean([t["iters_trained"] for t in pruned])
    full_s = _mean([t["duration_s"] for t in n["trials"] if t["state"] == "FINISHED"])
    if wall is not None and iters is not None and wall > iters and pruned_s is not None and full_s is not None:
        out += ["", f"Wall time moves less than iterations ({fmt(wall, 2)} vs {fmt(iters, 2)}): a pruned trial trained "
                f"{fmt(pruned_iters, 1)} iterations and took {fmt(pruned_s, 1)} s on average, against "
                f"{fmt(full_s, 1)} s for a trial that ran all {s['iters']}; a trial's time is far from proportional "
                "to the iterations it trains."]
    out += ["", load_note(d)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
