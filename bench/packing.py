"""How well the scheduler packs trials of known, unequal length (and, second part, unequal size)
onto 4 GPUs.

16 trials with durations drawn from a fixed seed (1-6 s; two of them are "pretraining" trials
with three dependents each) run through `drive` (the loop `ablate run` uses) and `RayDispatcher`
on a local Ray with 4 logical GPUs and a sleep-only trainable (placement and ordering are under
test, not training). The makespan is compared with the lower bound max(total / 4, longest
dependency chain), for three inputs to the scheduler's own ordering rule (whatever
`ablate.dispatch.Scheduler` does with `cost` and `depends_on`):

* true costs: `cost` = the duration (what FLOPs x iterations estimate for real trials);
* noisy costs: `cost` = duration x lognormal(0, 0.3) noise;
* no costs: every `cost` 0, so trials start in file order.

Each is also run through the same `drive` and `Scheduler` against a simulated clock (a dispatcher
whose trials end at start + duration, no Ray), which separates the ordering from Ray's own
latencies; the simulation also compares the scheduler's rule with plain longest-first (own cost
only) on 500 other seeded instances.

Mixed sizes (a zoo on one 4-GPU server: two 4-GPU DDP trials, three 2-GPU and eleven 1-GPU ones,
durations 1-6 s, shuffled per seed) run through the same `drive` and `Scheduler` on the simulated
clock, where each trial holds its GPUs (a dispatcher reporting 4 GPUs; a DDP trial's demand is
its workers' GPUs). The lower bound counts GPU-seconds: max(sum of GPUs x duration / 4, longest
trial). The dispatcher's rule (widest first, then critical path, with a reservation for the
head of the queue) is compared with critical path alone and with file order, on the seeded
instance and 500 others. Real placement of DDP trials (Ray Train workers holding their GPUs, no
GPU shared, a rendezvous port each) is what tests/test_ddp.py checks; each DDP trial's Ray Train
start-up (seconds) is not part of this simulation.

    .venv/bin/python bench/packing.py [--repeats 2] [--mixed-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, load, ratio, write_result  # noqa: E402
from _packing_sim import (  # noqa: E402
    CONTEXT,
    GPUS,
    SEED,
    dependencies,
    make_specs,
    mixed,
    own_cost,
    render_mixed,
    simulate,
)

from ablate.dispatch import RayDispatcher, RunContext, drive  # noqa: E402
from ablate.trial import TrialResult, TrialSpec, TrialState  # noqa: E402

N_TRIALS = 16
TARGET = 1.10


def durations(seed: int = SEED) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(1.0, 6.0), 1) for _ in range(N_TRIALS)]


def sleeper(spec: TrialSpec, context: RunContext, attempt: int) -> TrialResult:
    """Stand-in for training: sleeps the trial's duration, reports when it ran."""
    import time as _time

    start = _time.time()
    _time.sleep(float(spec.params["sleep_s"]))
    return TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FINISHED,
                       metrics={"start": start, "end": _time.time()}, duration_s=_time.time() - start)


def lower_bound(durs: Sequence[float]) -> dict[str, float]:
    deps = dependencies()
    chain = max(durs[i] + (durs[deps[i]] if i in deps else 0.0) for i in range(len(durs)))
    return {"total_s": round(sum(durs), 2), "total_over_gpus_s": round(sum(durs) / GPUS, 3),
            "longest_chain_s": round(chain, 2), "bound_s": round(max(sum(durs) / GPUS, chain), 3)}


def write_mixed_only() -> None:
    """Add the mixed-size part to the stored results, keeping the measured one-GPU part as it is."""
    path = RESULTS / "packing.json"
    doc = json.loads(path.read_text()) if path.exists() else {"benchmark": "packing"}
    doc["mixed"] = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "command": ".venv/bin/python bench/packing.py --mixed-only", **mixed()}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {path}", flush=True)


def simulate_many(count: int) -> dict[str, dict[str, float]]:
    """Makespan / lower bound of each ordering rule over `count` other seeded instances."""
    rules: dict[str, Callable[[list[float]], float]] = {
        "dispatcher": lambda d: simulate(d, d),
        "longest_first_own_cost": lambda d: simulate(d, d, own_cost),
        "file_order": lambda d: simulate(d, [0.0] * len(d)),
    }
    ratios: dict[str, list[float]] = {name: [] for name in rules}
    for seed in range(1000, 1000 + count):
        durs = durations(seed)
        bound = lower_bound(durs)["bound_s"]
        for name, run in rules.items():
            ratios[name].append(run(durs) / bound)
    out = {}
    for name, values in ratios.items():
        values.sort()
        out[name] = {"mean": round(sum(values) / len(values), 4), "p95": round(values[int(0.95 * len(values))], 4),
                     "max": round(values[-1], 4), "share_within_1.10": round(sum(v <= 1.10 for v in values) / len(values), 3)}
    return out


def measure(durs: Sequence[float], costs: Sequence[float], order_log: Optional[list[str]] = None) -> dict[str, Any]:
    started: list[str] = []
    dispatcher = RayDispatcher(gpus_per_trial=1.0, trainable=sleeper)
    t = time.time()
    results = drive(make_specs(durs, costs), dispatcher, CONTEXT,
                    on_start=lambda spec, attempt: started.append(spec.name))
    wall = time.time() - t
    if any(r.state is not TrialState.FINISHED for r in results):
        raise RuntimeError([r.error for r in results if r.state is not TrialState.FINISHED])
    first = min(r.metrics["start"] for r in results)
    last = max(r.metrics["end"] for r in results)
    busy = sum(r.metrics["end"] - r.metrics["start"] for r in results)
    if order_log is not None:
        order_log.extend(started)
    return {"makespan_s": round(wall, 3), "first_start_to_last_end_s": round(last - first, 3),
            "gpu_busy_share": round(busy / (GPUS * wall), 4), "start_order": started, "load": load()}


def best_of(repeats: int, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    runs = [fn() for _ in range(repeats)]
    best = min(runs, key=lambda r: r["makespan_s"])
    return {**best, "all_makespans_s": [r["makespan_s"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mixed-only", action="store_true", help="only the (simulated) mixed-size part, added to "
                        "the stored results")
    args = parser.parse_args(argv)
    if args.mixed_only:
        write_mixed_only()
        return 0

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported: loopback only
    import ray

    durs = durations()
    noise = random.Random(SEED + 1)
    noisy = [d * noise.lognormvariate(0.0, 0.3) for d in durs]
    bound = lower_bound(durs)
    # Sleeping tasks use no CPU: 4 logical CPUs let all 4 GPU slots run on this small machine.
    ray.init(address="local", num_cpus=GPUS, num_gpus=GPUS, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    try:
        # Start one worker per GPU first: worker start-up is a one-off cost, not packing.
        t = time.time()
        warm = [s for s in make_specs([0.5] * N_TRIALS, [0.0] * N_TRIALS) if not s.depends_on][:GPUS]
        drive(warm, RayDispatcher(gpus_per_trial=1.0, trainable=sleeper), CONTEXT)
        warmup_s = time.time() - t
        true_costs = best_of(args.repeats, lambda: measure(durs, durs))
        estimated = best_of(args.repeats, lambda: measure(durs, noisy))
        file_order = best_of(args.repeats, lambda: measure(durs, [0.0] * N_TRIALS))
    finally:
        ray.shutdown()

    sim = {
        "dispatcher_true_costs_s": simulate(durs, durs),
        "dispatcher_noisy_costs_s": simulate(durs, noisy),
        "file_order_s": simulate(durs, [0.0] * N_TRIALS),
        "longest_first_own_cost_s": simulate(durs, durs, own_cost),
    }
    lb = bound["bound_s"]
    many = simulate_many(500)
    write_result("packing", {
        "setup": {"trials": N_TRIALS, "gpus": GPUS, "durations_s": durs, "seed": SEED,
                  "dependencies": {f"t{c:02d}": f"t{p:02d}" for c, p in dependencies().items()},
                  "noisy_costs": [round(c, 2) for c in noisy], "trainable": "sleep(duration)",
                  "ray": "local, num_cpus=4, num_gpus=4 (logical), workers warmed first",
                  "warmup_s": round(warmup_s, 2), "repeats": args.repeats},
        "lower_bound": bound,
        "dispatcher_rule": "critical path first (cost + costliest dependent chain)",
        "true_costs": {**true_costs, "ratio": ratio(true_costs["makespan_s"], lb)},
        "noisy_costs": {**estimated, "ratio": ratio(estimated["makespan_s"], lb)},
        "file_order": {**file_order, "ratio": ratio(file_order["makespan_s"], lb)},
        "ordering_gain": ratio(file_order["makespan_s"], true_costs["makespan_s"]),
        "simulated": {**sim, **{k[:-2] + "_ratio": ratio(v, lb) for k, v in sim.items()}},
        "simulated_500_instances": many,
        "ratio": ratio(true_costs["makespan_s"], lb),
        "target_ratio": TARGET,
        "target_met": ratio(true_costs["makespan_s"], lb) <= TARGET,
        "mixed": mixed(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# -- RESULTS.md section (reads only the keys it knows; others are listed, not dropped) -------------
import re  # noqa: E402

from _common import Figure, fmt, load_note, met  # noqa: E402

_RENDERED = {"benchmark", "date", "command", "load_after", "setup", "lower_bound", "dispatcher_rule", "true_costs",
             "noisy_costs", "file_order", "ordering_gain", "simulated", "ratio", "target_ratio", "target_met", "mixed"}


def _pct(share: Optional[float]) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _instances(d: dict[str, Any]) -> tuple[Optional[str], dict[str, Any]]:
    """The `simulated_<N>_instances` block, whatever N: (N, block)."""
    for key, value in d.items():
        found = re.fullmatch(r"simulated_(\d+)_instances", key)
        if found and isinstance(value, dict):
            return found.group(1), value
    return None, {}


def summary(d: dict[str, Any]) -> list[Figure]:
    setup = d["setup"]
    rows = [Figure(f"packing: makespan / max(sum/{setup['gpus']}, longest chain), {setup['trials']} trials on "
                   f"{setup['gpus']} GPUs (dispatcher: {d['dispatcher_rule']})", fmt(d["ratio"], 3),
                   f"<= {d['target_ratio']:.2f}", met(d["target_met"]))]
    if "file_order" in d:
        rows.append(Figure("packing: the same trials in file order (the ordering makes the study "
                           f"{fmt(d.get('ordering_gain'), 3)}x shorter)", fmt(d["file_order"].get("ratio"), 3)))
    count, many = _instances(d)
    if many.get("dispatcher") and many.get("longest_first_own_cost"):
        rows.append(Figure(f"packing, simulated on {count} other instances: share within 1.10, dispatcher's rule "
                           "(plain longest first)", f"{_pct(many['dispatcher'].get('share_within_1.10'))} "
                           f"({_pct(many['longest_first_own_cost'].get('share_within_1.10'))})"))
    mix = d.get("mixed")
    if mix:
        rows.append(Figure(f"packing, mixed sizes (4-, 2- and 1-GPU trials, simulated): makespan / max(GPU-seconds/"
                           f"{mix['setup']['gpus']}, longest trial)", fmt(mix.get("ratio"), 3),
                           f"<= {mix['target_ratio']:.2f}", met(mix.get("target_met"))))
    return rows


def render(d: dict[str, Any]) -> str:
    setup, lb, sim = d["setup"], d["lower_bound"], d.get("simulated", {})
    gpus, durs = setup["gpus"], setup["durations_s"]
    dependents: dict[str, int] = {}
    for parent in setup.get("dependencies", {}).values():
        dependents[parent] = dependents.get(parent, 0) + 1
    roots = "; ".join(f"{p} has {n} dependent{'s' if n != 1 else ''}" for p, n in sorted(dependents.items()))
    out = [
        f"## Packing trials onto {gpus} GPUs (`bench/packing.py`)",
        "",
        f"{setup['trials']} sleep-only trials (durations {min(durs)}-{max(durs)} s from seed {setup['seed']}, total "
        f"{lb['total_s']} s{'; ' + roots if roots else ''}) through `RayDispatcher` on a local Ray with {gpus} logical "
        f"GPUs (workers started beforehand), best of {setup.get('repeats', '-')}. Lower bound: max(total/{gpus} = "
        f"{lb['total_over_gpus_s']} s, longest chain = {lb['longest_chain_s']} s) = {lb['bound_s']} s. "
        f"The dispatcher's ordering rule: {d['dispatcher_rule']}.",
        "",
        "| costs given to the dispatcher | makespan (s) | / bound | GPU busy | simulated (no Ray) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label, simulated in (("true_costs", "true durations", "dispatcher_true_costs_s"),
                                  ("noisy_costs", "durations x lognormal(0, 0.3)", "dispatcher_noisy_costs_s"),
                                  ("file_order", "none (all 0: file order)", "file_order_s")):
        r = d.get(key)
        if r:
            out.append(f"| {label} | {fmt(r.get('makespan_s'))} | {fmt(r.get('ratio'), 3)} | "
                       f"{_pct(r.get('gpu_busy_share'))} | {fmt(sim.get(simulated))} |")
    if "longest_first_own_cost_s" in sim:
        out.append(f"| (plain longest first by own cost; simulated only) | - | "
                   f"{fmt(sim.get('longest_first_own_cost_ratio'), 3)} | - | {fmt(sim['longest_first_own_cost_s'])} |")
    if "true_costs" in d and "dispatcher_true_costs_s" in sim:
        out += ["", f"Measured - simulated is the latency of Ray and of the dispatcher's polling "
                f"({fmt(d['true_costs']['makespan_s'] - sim['dispatcher_true_costs_s'], 2)} s over the true-cost run)."]
    count, many = _instances(d)
    if many:
        out += ["", f"The same rules simulated on {count} other seeded instances (same shape as above, other "
                "durations):", "", "| rule | mean ratio | p95 | max | instances within 1.10 |", "|---|---:|---:|---:|---:|"]
        labels = {"dispatcher": f"the dispatcher's ({d['dispatcher_rule']})",
                  "longest_first_own_cost": "longest first by own cost", "file_order": "file order"}
        for rule, m in many.items():
            out.append(f"| {labels.get(rule, rule)} | {fmt(m.get('mean'), 3)} | {fmt(m.get('p95'), 3)} | "
                       f"{fmt(m.get('max'), 3)} | {_pct(m.get('share_within_1.10'))} |")
    extra = sorted(k for k in d if k not in _RENDERED and not re.fullmatch(r"simulated_\d+_instances", k))
    if extra:
        out += ["", "Also in `bench/results/packing.json`, not shown here: " + ", ".join(f"`{k}`" for k in extra) + "."]
    out += ["", load_note(d)]
    if d.get("mixed"):
        out += render_mixed(d["mixed"])
    return "\n".join(out)
