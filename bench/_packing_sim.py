"""The packing benchmark's simulated clock, and its mixed-size part (see `bench/packing.py`).

The scheduler and `drive` run here exactly as `ablate run` uses them, against a dispatcher whose
trials end `sleep_s` after they start and hold one GPU per worker meanwhile.
"""

from __future__ import annotations

import heapq
import random
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from _common import fmt, ratio

from ablate.dispatch import (
    Capacity,
    Completion,
    Resources,
    RunContext,
    critical_path_costs,
    drive,
    widest_first,
)
from ablate.trial import TrialResult, TrialSpec, TrialState

GPUS = 4
SEED = 7
MIXED_TARGET = 1.15
# a zoo on one 4-GPU server: two 4-GPU DDP trials (B5-like), three 2-GPU, eleven 1-GPU trials
MIXED_WIDTHS = (4, 4, 2, 2, 2) + (1,) * 11
CONTEXT = RunContext("sqlite:///unused", "0")
Rule = Callable[[Sequence[TrialSpec]], Mapping[str, Any]]


def dependencies() -> dict[int, int]:
    """Trial index -> the trial it depends on: 0 and 1 are pretraining for 2-4 and 5-7."""
    return {2: 0, 3: 0, 4: 0, 5: 1, 6: 1, 7: 1}


def make_specs(durs: Sequence[float], costs: Sequence[float], widths: Optional[Sequence[int]] = None,
               deps: Optional[dict[int, int]] = None) -> list[TrialSpec]:
    """Trials t00, t01, ...; `widths`: workers (one GPU each) per trial, all 1 by default."""
    deps = dependencies() if deps is None else deps
    widths = widths or [1] * len(durs)
    specs = []
    for i, (dur, cost) in enumerate(zip(durs, costs)):
        name = f"t{i:02d}"
        specs.append(TrialSpec(
            study="bench_packing", name=name, trial_id=name, seed=0, base="none.py", config_text="",
            overrides={}, work_dir=Path("/nonexistent") / name, data_root=Path("/nonexistent"),
            data_fingerprint="-", iters=1, batch_size=1, image_size=(1, 1), params={"sleep_s": dur},
            depends_on=(f"t{deps[i]:02d}",) if i in deps else (), cost=float(cost),
            workers=widths[i], gpus_per_worker=1.0 if widths[i] > 1 else None,
        ))
    return specs


class SimulatedDispatcher:
    """GPUS GPUs on a virtual clock: a trial holds one GPU per worker and ends `sleep_s` after it
    was submitted; each poll advances the clock to the next end (ties: lower trial id first)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._ends: list[tuple[float, str, TrialSpec, int]] = []
        self.spans: list[tuple[float, float, int]] = []  # (start, end, GPUs) of every trial

    def open(self) -> Capacity:
        return Capacity(Resources(gpus=GPUS, cpus=GPUS))

    def demand(self, spec: TrialSpec) -> Resources:
        return Resources(gpus=float(spec.workers), cpus=float(spec.workers))

    def submit(self, spec: TrialSpec, context: RunContext, attempt: int) -> None:
        end = self.now + float(spec.params["sleep_s"])
        self.spans.append((self.now, end, spec.workers))
        heapq.heappush(self._ends, (end, spec.trial_id, spec, attempt))

    def poll(self, timeout: Optional[float] = None) -> list[Completion]:
        if not self._ends:
            return []
        self.now, _, spec, attempt = heapq.heappop(self._ends)
        return [Completion(spec, TrialResult(spec.trial_id, spec.name, spec.seed, TrialState.FINISHED), attempt)]

    def cancel(self, trial_id: str) -> None:
        self._ends = [e for e in self._ends if e[1] != trial_id]
        heapq.heapify(self._ends)

    def close(self) -> None:
        self._ends = []


def own_cost(specs: Sequence[TrialSpec]) -> dict[str, float]:
    """Plain longest first: a trial's own cost, blind to who waits for it."""
    return {s.trial_id: s.cost for s in specs}


def simulate(durs: Sequence[float], costs: Sequence[float], rule: Rule = widest_first,
             widths: Optional[Sequence[int]] = None, deps: Optional[dict[int, int]] = None) -> float:
    """The scheduler and `drive` without Ray: the makespan on the simulated clock."""
    clock = SimulatedDispatcher()
    results = drive(make_specs(durs, costs, widths, deps), clock, CONTEXT, priority=rule)
    assert all(r.state is TrialState.FINISHED for r in results)
    for start, _, _ in clock.spans:  # never more GPUs in use than there are
        assert sum(g for b, e, g in clock.spans if b <= start < e) <= GPUS
    return round(clock.now, 3)


# -- mixed sizes -----------------------------------------------------------------------------------
def mixed_instance(seed: int = SEED) -> tuple[list[int], list[float]]:
    """(GPUs per trial, durations): MIXED_WIDTHS in a seeded order, durations 1-6 s."""
    rng = random.Random(seed)
    widths = list(MIXED_WIDTHS)
    rng.shuffle(widths)
    return widths, [round(rng.uniform(1.0, 6.0), 1) for _ in widths]


def mixed_bound(widths: Sequence[int], durs: Sequence[float]) -> dict[str, float]:
    gpu_seconds = sum(w * d for w, d in zip(widths, durs))
    return {"gpu_seconds": round(gpu_seconds, 2), "gpu_seconds_over_gpus_s": round(gpu_seconds / GPUS, 3),
            "longest_s": max(durs), "bound_s": round(max(gpu_seconds / GPUS, max(durs)), 3)}


def file_order_rule(specs: Sequence[TrialSpec]) -> dict[str, float]:
    """No ordering at all: the trials start in the order they were given."""
    return {s.trial_id: 0.0 for s in specs}


MIXED_RULES: dict[str, Rule] = {
    "dispatcher": widest_first,
    "critical_path_only": critical_path_costs,
    "file_order": file_order_rule,
}


def mixed(count: int = 500) -> dict[str, Any]:
    """The seeded mixed instance and `count` others, simulated under each rule."""
    widths, durs = mixed_instance()
    bound = mixed_bound(widths, durs)
    seeded = {}
    for name, rule in MIXED_RULES.items():
        makespan = simulate(durs, durs, rule, widths, deps={})
        seeded[name] = {"makespan_s": makespan, "ratio": ratio(makespan, bound["bound_s"])}
    ratios: dict[str, list[float]] = {name: [] for name in MIXED_RULES}
    for seed in range(1000, 1000 + count):
        w, d = mixed_instance(seed)
        lb = mixed_bound(w, d)["bound_s"]
        for name, rule in MIXED_RULES.items():
            ratios[name].append(simulate(d, d, rule, w, deps={}) / lb)
    many = {}
    for name, values in ratios.items():
        values.sort()
        many[name] = {"mean": round(sum(values) / len(values), 4), "p95": round(values[int(0.95 * len(values))], 4),
                      "max": round(values[-1], 4),
                      "share_within_target": round(sum(v <= MIXED_TARGET for v in values) / len(values), 3)}
    primary = seeded["dispatcher"]["ratio"]
    return {
        "setup": {"gpus": GPUS, "widths": widths, "durations_s": durs, "seed": SEED, "instances": count,
                  "costs": "the durations", "clock": "simulated (drive + Scheduler, no Ray)"},
        "lower_bound": bound,
        "dispatcher_rule": "widest first, then critical path; a reservation for the head of the queue",
        "seeded": seeded, "instances": many,
        "ratio": primary, "target_ratio": MIXED_TARGET, "target_met": primary is not None and primary <= MIXED_TARGET,
    }


def _pct(share: Optional[float]) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def render_mixed(mix: dict[str, Any]) -> list[str]:
    setup, lb = mix["setup"], mix["lower_bound"]
    counts: dict[int, int] = {}
    for width in setup["widths"]:
        counts[width] = counts.get(width, 0) + 1
    sizes = ", ".join(f"{n} x {w}-GPU" for w, n in sorted(counts.items(), reverse=True))
    labels = {"dispatcher": f"the dispatcher's ({mix['dispatcher_rule']})", "critical_path_only": "critical path alone",
              "file_order": "file order"}
    out = [
        "",
        "### Mixed sizes",
        "",
        f"{sizes} trials (durations {min(setup['durations_s'])}-{max(setup['durations_s'])} s, order and durations "
        f"from seed {setup['seed']}) on {setup['gpus']} GPUs, through `drive` and `Scheduler` on the simulated clock "
        f"(each trial holds its GPUs until it ends). Lower bound, counting GPU-seconds: max({lb['gpu_seconds']} "
        f"GPU-s / {setup['gpus']} = {lb['gpu_seconds_over_gpus_s']} s, longest trial = {lb['longest_s']} s) = "
        f"{lb['bound_s']} s. Ray Train's start-up of each DDP trial is not simulated; that the trials really hold "
        "their GPUs (none shared, a rendezvous port each) is tested in `tests/test_ddp.py`.",
        "",
        f"| rule | makespan (s) | / bound | {setup['instances']} other instances: mean | p95 | max | "
        f"within {mix['target_ratio']:.2f} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rule, seeded in mix.get("seeded", {}).items():
        many = mix.get("instances", {}).get(rule, {})
        out.append(f"| {labels.get(rule, rule)} | {fmt(seeded.get('makespan_s'))} | {fmt(seeded.get('ratio'), 3)} | "
                   f"{fmt(many.get('mean'), 3)} | {fmt(many.get('p95'), 3)} | {fmt(many.get('max'), 3)} | "
                   f"{_pct(many.get('share_within_target'))} |")
    out += ["", f"Simulated {mix.get('date', '-')} (`{mix.get('command', 'bench/packing.py')}`)."]
    return out
