"""What a report can show with few seeds and short training: a permutation test's smallest p, the
seeds it needs, the table cells and advice built from them (an unreachable 0.05 is said, never
printed as a plain p), and the sentence a short (demo) budget gets."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pytest

from ablate.report import ladder_tables
from ablate.report.budget import SHORT_ITERS, short_budget_note
from ablate.statistics import (
    ALPHA,
    Ladder,
    LadderStep,
    adjust,
    compare,
    pairs_to_reach,
    permutation_floor,
    permutation_p,
    summarize,
)
from ablate.study.seed_rounds import SeedRound


@pytest.mark.parametrize("n", [2, 3, 5, 6, 13, 14])
def test_floor_is_the_smallest_p_the_sign_flip_test_gives(n: int) -> None:
    # every pair moves up, by different amounts: only the observed flip (and its mirror) is as extreme
    before = np.zeros(n)
    after = 10.0 + np.arange(n)
    assert permutation_p(before, after, paired=True) == pytest.approx(permutation_floor(n))
    if n <= 13:  # exact: every one of the 2^n flips
        assert permutation_floor(n) == 2 / 2**n
    assert permutation_floor(3) == 0.25 and permutation_floor(5) == 0.0625


@pytest.mark.parametrize("sizes", [(2, 3), (3, 3), (4, 4)])
def test_floor_of_the_relabeling_test(sizes: tuple[int, int]) -> None:
    a = np.arange(sizes[0], dtype=float)
    b = 100.0 + np.arange(sizes[1])
    assert permutation_p(a, b) == pytest.approx(permutation_floor(*sizes))
    assert permutation_floor(*sizes) == pytest.approx(2 / math.comb(sum(sizes), sizes[0]))


def test_pairs_to_reach_alone_and_after_holm() -> None:
    assert pairs_to_reach() == 6  # 2/2^5 = 0.0625, 2/2^6 = 0.03125
    for tests in (1, 2, 3, 4, 5, 10, 40):
        need = pairs_to_reach(ALPHA, tests)
        assert permutation_floor(int(need)) < ALPHA / tests <= permutation_floor(int(need) - 1)
    assert (pairs_to_reach(ALPHA, 3), pairs_to_reach(ALPHA, 5)) == (7, 8)
    # the sampled test (9999 resamples) never gives p below 2/10000
    assert pairs_to_reach(ALPHA, 1000) == math.inf


def _seeds(n: int, shift: float, offset: float = 0.0) -> tuple[list[float], list[float], list[int]]:
    rng = np.random.default_rng(n)
    before = list(60.0 + rng.normal(0, 1, n) + offset)
    after = [v + shift + 0.1 * i for i, v in enumerate(before)]
    return before, after, list(range(n))


def test_comparison_says_whether_its_test_can_reach() -> None:
    a, b, seeds = _seeds(3, 5.0)
    three = compare(a, b, seeds, seeds)
    assert three is not None and three.p_floor == 0.25 and not three.permutation_can_reach
    a, b, seeds = _seeds(6, 5.0)
    six = compare(a, b, seeds, seeds)
    assert six is not None and six.permutation_can_reach and six.p_permutation == pytest.approx(2 / 64)
    # four such tests in one table: Holm multiplies the smallest p by 4, 0.125 is out of reach
    family = adjust([None, six, six, six, six])
    assert all(c is not None and c.holm_floor == 0.125 and not c.permutation_can_reach for c in family[1:])
    a, b, seeds = _seeds(8, 5.0)
    eight = compare(a, b, seeds, seeds)
    assert all(c is not None and c.permutation_can_reach for c in adjust([eight] * 4))
    welch = compare([1.0, 2.0], [5.0, 6.0, 7.0], [0, 1], [2, 3, 4])
    assert welch is not None and welch.method == "welch" and welch.sizes == (2, 3) and welch.p_floor == 0.2


def _ladder(rungs: list[tuple[str, list[float]]], seeds: Optional[list[int]] = None) -> Ladder:
    """A ladder built the way `ablate.statistics.ladders` builds one: rung k against rung k-1, one Holm family."""
    seeds = seeds or list(range(len(rungs[0][1])))
    steps, comparisons = [], [None]
    for (_, before), (_, after) in zip(rungs, rungs[1:]):
        comparisons.append(compare(before, after, seeds, seeds))
    for rung, ((trick, values), comparison) in enumerate(zip(rungs, adjust(comparisons))):
        steps.append(LadderStep(
            rung=rung, trick=trick, name=f"r{rung}-{trick}", values=tuple(values), seeds=tuple(seeds),
            miou=summarize(values), delta=None, cumulative=None, comparison=comparison, reference=None,
            class_iou=(), class_delta=(), class_tests=(),
        ))
    return Ladder("study", "ladder", tuple(steps), ())


def _rungs(n: int, k: int) -> list[tuple[str, list[float]]]:
    base, _, _ = _seeds(n, 0.0)
    out = [("base", base)]
    for i in range(k):
        out.append((f"trick{i}", [v + 3.0 + 0.2 * j for j, v in enumerate(out[-1][1])]))
    return out


def test_table_marks_unreachable_tests_and_gives_the_seeds_they_need() -> None:
    table = ladder_tables.ladder_table(_ladder(_rungs(3, 3)))
    md = table.markdown()
    assert md.count("| n/a: min p 0.25 with 3 seeds |") == 3
    assert "cannot fall below 2/2^n (0.25 for n=3): it can reach p < 0.05 from 6 pairs on" in table.caption
    assert "below 0.05 after Holm across the 3 tests from 7." in table.caption
    assert table.notes == ["With these seeds the permutation test cannot give any change a p below 0.05 after "
                           "Holm across the 3 tests of this table: it needs 7 seeds shared by both rows (6 for "
                           "p < 0.05 before Holm)."]
    assert "it needs 7 seeds shared by both rows" in md
    tex = table.latex()
    assert "n/a: min p 0.25 with 3 seeds" in tex and "\\raggedright With these seeds the permutation test" in tex


def test_holm_alone_can_put_a_test_out_of_reach() -> None:
    # 6 seeds reach 0.05 alone (0.0312), not after Holm across 2 tests (0.0625)
    table = ladder_tables.ladder_table(_ladder(_rungs(6, 2)))
    cells = [row[table.header.index("p (perm.)")] for row in table.rows]
    assert cells[1:] == ["n/a: min p 0.0312 with 6 seeds, 0.0625 after Holm"] * 2
    assert table.notes == ["With these seeds the permutation test cannot give any change a p below 0.05 after "
                           "Holm across the 2 tests of this table: it needs 7 seeds shared by both rows (6 for "
                           "p < 0.05 before Holm)."]
    # one test alone: no Holm, 6 seeds are enough and 5 are not
    table = ladder_tables.ladder_table(_ladder(_rungs(5, 1)))
    assert table.rows[1][table.header.index("p (perm.)")] == "n/a: min p 0.0625 with 5 seeds"
    assert table.notes == ["With these seeds the permutation test cannot give any change a p below 0.05: it needs "
                           "6 seeds shared by both rows."]
    assert "p < 0.05 from 6 pairs on." in table.caption
    # 8 seeds reach it across 2 tests: the p itself, and no advice
    table = ladder_tables.ladder_table(_ladder(_rungs(8, 2)))
    cells = [row[table.header.index("p (perm.)")] for row in table.rows]
    assert cells[1:] == ["0.008"] * 2 and not table.notes and "n/a: min p" not in table.markdown()


def test_seed_rounds_say_when_the_permutation_test_needs_more() -> None:
    widths = {"ladder +a": 0.1, "ladder +b": 0.2, "ladder +c": 0.3, "leave-one-out -a": 0.2}
    stopped = SeedRound(2, (0, 1, 2), 1, 0, widths, ci_width=0.5, stop="narrow")
    assert stopped.describe().endswith(
        "stop: every interval is narrower than 0.5 (with 3 seeds the report's permutation tests cannot reach "
        "p < 0.05 after Holm across 3 deltas; they need 7)")
    enough = SeedRound(6, tuple(range(7)), 1, 0, widths, ci_width=0.5, stop="max")
    assert enough.describe().endswith("stop: max seeds reached")
    going = SeedRound(1, (0, 1), 2, 0, widths, ci_width=0.05)
    assert going.describe().endswith("adding seed 2")


def _run(iters: Optional[str], train: int = 0, batch: Optional[int] = 2) -> SimpleNamespace:
    """The three things the short-budget rule reads from a `TrialRun`."""
    datasets = (SimpleNamespace(splits={"train": train, "val": 50}),) if train else ()
    return SimpleNamespace(params={} if iters is None else {"iters": iters}, datasets=datasets, total_batch=batch)


def test_short_budget_sentence_only_below_the_threshold() -> None:
    demo = [_run("20", train=150), _run("20", train=150)]
    note = short_budget_note(demo)  # type: ignore[arg-type]
    assert note == (
        f"Short training: Every run trained fewer than {SHORT_ITERS} iterations (as few as 20, 0.27 passes over "
        "the 150 training images), far too few for the models to converge: these numbers show that the pipeline "
        "runs end to end, not the tricks' effects; train the study's full budget for those.")
    assert SHORT_ITERS == 1000
    mixed = short_budget_note([_run("20000"), _run(str(SHORT_ITERS - 1)), _run("40")])  # type: ignore[list-item]
    assert mixed is not None and mixed.startswith("Short training: 2 of 3 runs trained fewer than 1000 iterations "
                                                  "(as few as 40), far too few")
    assert short_budget_note([_run(str(SHORT_ITERS)), _run("20000", train=150)]) is None  # type: ignore[list-item]
    assert short_budget_note([_run(None), _run("many")]) is None  # type: ignore[list-item]
