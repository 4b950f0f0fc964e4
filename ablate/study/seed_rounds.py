"""`seeds: {auto: {min, max, ci_width}}`: when a study has run enough seeds.

After each round, every ladder and leave-one-out delta of the round's finished runs gets the
95% interval the report gives it (`ablate.statistics.ladder`: paired by seed, Welch otherwise), so
the rule and the report cannot disagree. The study stops when every interval is narrower than
`ci_width` mIoU points, when `max` seeds ran, or when a trial failed (more seeds would not
mend a failure). A delta without an interval (fewer than two finished seeds on a side) counts
as infinitely wide.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ablate.study.schema import AutoSeeds

NARROW, MAX, FAILED = "narrow", "max", "failed"
_WHY = {NARROW: "every interval is narrower than", MAX: "max seeds reached", FAILED: "a trial failed"}


@dataclass(frozen=True)
class SeedRound:
    """One round: the seeds it covered, what it trained, the interval width of every delta and
    whether the study stops after it (`stop`: narrow | max | failed, empty to go on)."""

    number: int
    seeds: tuple[int, ...]
    trained: int
    cached: int
    widths: dict[str, float] = field(default_factory=dict)
    ci_width: float = math.inf
    stop: str = ""

    @property
    def widest(self) -> tuple[str, float]:
        if not self.widths:
            return ("", math.nan)
        return max(self.widths.items(), key=lambda kv: kv[1])

    def describe(self) -> str:
        """The line the console and the log show for the round."""
        label, width = self.widest
        seeds = ",".join(str(s) for s in self.seeds)
        text = f"seeds round {self.number}: seeds {seeds} ({self.trained} trained, {self.cached} cached); "
        text += (
            f"widest 95% interval {_width(width)} mIoU ({label}), target < {self.ci_width:g}"
            if label
            else "no delta with an interval"
        )
        if self.stop == NARROW:
            return text + f"; stop: {_WHY[NARROW]} {self.ci_width:g}" + self.permutation_note()
        if self.stop:
            return text + f"; stop: {_WHY[self.stop]}" + self.permutation_note()
        return text + f"; adding seed {self.seeds[-1] + 1}"

    def permutation_note(self) -> str:
        """Narrow intervals can come before the report's sign-flip tests could reach p < ALPHA (Holm across
        each table's deltas included): say how many seeds those need, or "" when this round has them."""
        from ablate.statistics import ALPHA, pairs_to_reach

        if not self.widths:
            return ""
        family = max(Counter(key.split(" ", 1)[0] for key in self.widths).values())
        need = pairs_to_reach(ALPHA, family)
        if len(self.seeds) >= need:
            return ""
        count = "more" if math.isinf(need) else str(int(need))
        return (
            f" (with {len(self.seeds)} seeds the report's permutation tests cannot reach p < {ALPHA:g}"
            f"{f' after Holm across {family} deltas' if family > 1 else ''}; they need {count})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "seeds": list(self.seeds),
            "trained": self.trained,
            "cached": self.cached,
            "ci_width": self.ci_width,
            "stop": self.stop or None,
            "widths": {k: (round(v, 4) if math.isfinite(v) else None) for k, v in self.widths.items()},
        }


def _width(value: float) -> str:
    return "none" if math.isinf(value) or math.isnan(value) else f"{value:.3f}"


def delta_widths(records: Sequence[Any]) -> dict[str, float]:
    """Width (high - low) of the 95% interval of every ladder / leave-one-out delta of `records`
    (`TrialRun`), by `ladder +trick` / `leave-one-out -trick`; inf where there is no interval."""
    from ablate.statistics import ladders

    out: dict[str, float] = {}
    for ladder in ladders(records, classes=()):
        kind = "leave-one-out" if ladder.is_loo else "ladder"
        for step, label in zip(ladder.steps, ladder.step_labels):
            if step.rung == 0:
                continue
            test = step.comparison
            width = test.ci_high - test.ci_low if test is not None else math.inf
            out[f"{kind} {label}"] = width if math.isfinite(width) else math.inf
    return out


def decide(widths: dict[str, float], rule: AutoSeeds, seeds: int, failed: bool) -> str:
    """Why the study stops after a round with `seeds` seeds ("" to add one more)."""
    if failed:
        return FAILED
    if widths and all(w < rule.ci_width for w in widths.values()):
        return NARROW
    return MAX if seeds >= rule.max else ""
