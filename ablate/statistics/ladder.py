"""Ladders and leave-one-out studies: each rung's change, its test, and the classes it moved.

A ladder compares rung k with rung k-1 (each trick's own contribution); leave-one-out compares
each "recipe minus trick" row with the full recipe. Comparisons are paired by seed where the two
rungs share seeds (`inference.compare`), and one table's comparisons are one family for Holm's
correction, so a reader can trust a star without counting how many rungs were tested. The
per-class tests of a rung are a family of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ablate.statistics.inference import Comparison, Summary, adjust, compare, mean_of, summarize
from ablate.statistics.per_image import metric_key
from ablate.tracking.records import TrialRun

SHAPE_ORDER = {"zoo": 0, "ladder": 1, "leave_one_out": 2}  # how a report orders the shapes of a study


@dataclass(frozen=True)
class LadderStep:
    """One rung: its mIoU over seeds, the change from the previous rung (or, leave-one-out, from
    the full recipe), the test of that change, and the same per class."""

    rung: int
    trick: str
    name: str
    values: tuple[float, ...]
    seeds: tuple[int | None, ...]
    miou: Summary
    delta: float | None
    cumulative: float | None
    comparison: Comparison | None
    reference: float | None
    class_iou: tuple[float, ...]
    class_delta: tuple[float, ...]
    class_tests: tuple[Comparison | None, ...]

    @property
    def class_tested(self) -> bool:
        return any(c is not None and not math.isnan(c.p_value) for c in self.class_tests)

    @property
    def class_significant(self) -> tuple[bool, ...]:
        return tuple(c is not None and c.significant for c in self.class_tests)


@dataclass(frozen=True)
class Ladder:
    """A trick ladder (`kind="ladder"`) or a leave-one-out study (`kind="leave_one_out"`)."""

    experiment: str
    kind: str
    steps: tuple[LadderStep, ...]
    classes: tuple[str, ...]

    @property
    def is_loo(self) -> bool:
        return self.kind == "leave_one_out"

    @property
    def tested(self) -> bool:
        return any(s.comparison is not None for s in self.steps)

    @property
    def methods(self) -> set[str]:
        return {s.comparison.method for s in self.steps if s.comparison is not None}

    @property
    def step_labels(self) -> list[str]:
        """Axis labels: `+trick` for ladder rungs, `-trick` for recipe-minus-trick rows."""
        labels = []
        for s in self.steps:
            if s.rung == 0:
                labels.append("full recipe" if self.is_loo else s.trick or "base")
            else:
                labels.append(f"{'-' if self.is_loo else '+'}{s.trick}")
        return labels

    def class_effects(self, step: LadderStep) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(helped, hurt): classes whose IoU the trick changed significantly after Holm, with the
        change the trick brings. Leave-one-out rows measure removal, so their sign is turned."""
        sign = -1.0 if self.is_loo else 1.0
        helped: list[tuple[str, float]] = []
        hurt: list[tuple[str, float]] = []
        for name, test in zip(self.classes, step.class_tests):
            if test is None or not test.significant:
                continue
            effect = sign * test.delta
            (helped if effect > 0 else hurt).append((name, effect))
        return sorted(helped, key=lambda x: -x[1]), sorted(hurt, key=lambda x: x[1])

    @property
    def noisy(self) -> list[str]:
        """Labels of rungs whose change is smaller than the seed-to-seed spread."""
        return [
            label
            for s, label in zip(self.steps, self.step_labels)
            if s.comparison is not None and s.comparison.below_noise
        ]


@dataclass(frozen=True)
class _Rung:
    """What a later rung is compared against."""

    values: list[float]
    seeds: list[int | None]
    class_values: list[list[float]]  # per class, per seed
    class_means: list[float]


def _class_tests(base: _Rung, rung: _Rung) -> tuple[Comparison | None, ...]:
    found = [
        compare(b, r, base.seeds, rung.seeds, permutation=False) for b, r in zip(base.class_values, rung.class_values)
    ]
    return tuple(adjust(found))


def _ladder(
    experiment: str, kind: str, runs: list[TrialRun], classes: Sequence[str], reference: Mapping[str, float]
) -> Ladder:
    by_rung: dict[int, list[TrialRun]] = {}
    for run in runs:
        by_rung.setdefault(run.rung if run.rung is not None else 0, []).append(run)
    steps: list[LadderStep] = []
    # rung 0 and the rung just below; a missing rung leaves a gap (no delta) rather than a delta
    # that silently spans two tricks.
    anchor: _Rung | None = None
    previous: _Rung | None = None
    no_classes = tuple(float("nan") for _ in classes)
    for rung in sorted(by_rung):
        group = sorted(by_rung[rung], key=lambda r: (r.seed if r.seed is not None else -1, r.start_time))
        per_class = [[r.metric(metric_key("IoU", c)) for r in group] for c in classes]
        here = _Rung([r.miou for r in group], [r.seed for r in group], per_class, [mean_of(v) for v in per_class])
        summary = summarize(here.values)
        if previous is not None and rung - 1 not in by_rung:
            previous = None
        base = anchor if kind == "leave_one_out" else previous
        steps.append(
            LadderStep(
                rung=rung,
                trick=group[0].trick,
                name=group[0].name,
                values=tuple(here.values),
                seeds=tuple(here.seeds),
                miou=summary,
                delta=summary.mean - summarize(base.values).mean if base is not None else None,
                cumulative=summary.mean - summarize(anchor.values).mean
                if anchor is not None and kind == "ladder"
                else None,
                comparison=compare(base.values, here.values, base.seeds, here.seeds) if base is not None else None,
                reference=reference.get(group[0].name),
                class_iou=tuple(here.class_means),
                class_delta=tuple(c - b for c, b in zip(here.class_means, base.class_means))
                if base is not None
                else no_classes,
                class_tests=_class_tests(base, here) if base is not None else tuple(None for _ in classes),
            )
        )
        if rung == 0:
            anchor = here
        previous = here
    adjusted = adjust([s.comparison for s in steps])
    steps = [replace(s, comparison=c) for s, c in zip(steps, adjusted)]
    return Ladder(experiment, kind, tuple(steps), tuple(classes))


def ladders(
    runs: Iterable[TrialRun], classes: Sequence[str], reference: Mapping[str, float] | None = None
) -> list[Ladder]:
    """One ladder per experiment and shape (ladder, leave_one_out) that has finished runs; only
    `reportable` runs count (no pretraining, search or metric-less run enters a test)."""
    grouped: dict[tuple[str, str], list[TrialRun]] = {}
    for run in runs:
        if run.reportable and run.shape in ("ladder", "leave_one_out"):
            grouped.setdefault((run.experiment, run.shape), []).append(run)
    return [
        _ladder(experiment, kind, runs, classes, reference or {})
        for (experiment, kind), runs in sorted(grouped.items(), key=lambda kv: (kv[0][0], SHAPE_ORDER[kv[0][1]]))
    ]
