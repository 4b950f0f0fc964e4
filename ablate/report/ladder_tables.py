"""The ladder and leave-one-out tables, their per-class effects, and both as CSV with every test.

A table states which test made each p-value and when the seeds cannot reach significance at all, so a
reader can check it without the code. CSVs carry unrounded values for re-use.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from ablate.report.tables import Table, fmt, fmt_mean_std, raw_number
from ablate.statistics import (
    ALPHA,
    EXACT_PAIRS,
    MAX_SEEDS,
    PAIRED,
    WELCH,
    Comparison,
    Ladder,
    pairs_to_reach,
    permutation_floor,
)

MAX_LISTED = 10  # classes named per cell of the helped/hurt table


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    return f"[{comparison.ci_low:+.2f}, {comparison.ci_high:+.2f}]"


def fmt_seeds(comparison: Comparison | None) -> str:
    """Seeds for 80% power; n/a without spread, a bound past MAX_SEEDS."""
    needed = comparison.seeds_needed if comparison is not None else None
    if needed is None or math.isnan(needed):
        return "n/a" if comparison is not None else ""
    return f"> {MAX_SEEDS}" if math.isinf(needed) else str(int(needed))


def _fmt_floor(p: float) -> str:
    return f"{p:.3g}"


def fmt_permutation(c: Comparison) -> str:
    """The permutation p, or, when its seeds cannot take it below ALPHA (alone or after Holm across
    the table), the smallest p they allow: a "non-significant" p there is no evidence either way."""
    if math.isnan(c.p_permutation):
        return "n/a"
    if c.permutation_can_reach:
        return fmt_p(c.p_permutation)
    seeds = f"{c.sizes[0]} seeds" if c.paired else f"{c.sizes[0]}+{c.sizes[1]} seeds"
    text = f"n/a: min p {_fmt_floor(c.p_floor)} with {seeds}"
    return text if c.p_floor >= ALPHA else f"{text}, {_fmt_floor(c.holm_floor)} after Holm"


def permutation_advice(ladder: Ladder) -> str:
    """How many seeds the table's sign-flip tests need before they can reach ALPHA (Holm included),
    or "" when every test can already."""
    tested = [s.comparison for s in ladder.steps if s.comparison is not None]
    blocked = [c for c in tested if not math.isnan(c.p_permutation) and not c.permutation_can_reach]
    if not blocked:
        return ""
    k = len(tested)
    alone, with_holm = pairs_to_reach(ALPHA), pairs_to_reach(ALPHA, k)
    which = "any change" if len(blocked) == k else f"{len(blocked)} of the {k} changes"
    after = f" after Holm across the {k} tests of this table" if k > 1 else ""
    before = f" ({_count(alone)} for p < {ALPHA:g} before Holm)" if k > 1 and alone != with_holm else ""
    return (
        f"With these seeds the permutation test cannot give {which} a p below {ALPHA:g}{after}: "
        f"it needs {_count(with_holm)} seeds shared by both rows{before}."
    )


def _count(n: float) -> str:
    return "more than 9999 resamples allow" if math.isinf(n) else str(int(n))


def test_label(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    return f"paired n={comparison.n}" if comparison.method == PAIRED else "Welch"


def _test_cells(c: Comparison | None) -> list[str]:
    if c is None:
        return ["", "", "", "", "", "", ""]
    return [
        fmt_ci(c),
        test_label(c),
        fmt_p(c.p_value),
        fmt_p(c.p_holm),
        fmt_permutation(c),
        fmt_seeds(c),
        "yes" if c.below_noise else "no",
    ]


def test_caption(ladder: Ladder) -> str:
    """Which test made each p-value, so a reader can check the table without the code."""
    if not ladder.tested:
        return "One seed per rung: no intervals or tests (list two or more seeds in the study to get them)."
    tested = [s.comparison for s in ladder.steps if s.comparison is not None]
    parts = []
    if PAIRED in ladder.methods:
        fewest = min(c.n for c in tested if c.method == PAIRED)
        holm_pairs = (
            f", below {ALPHA:g} after Holm across the {len(tested)} tests from "
            f"{_count(pairs_to_reach(ALPHA, len(tested)))}"
        )
        parts.append(
            'Test "paired": paired t-test over the n seeds both rows share (scipy.stats.ttest_rel); p (perm.) is the '
            "sign-flip permutation test of the same differences (scipy.stats.permutation_test; exact, every flip, "
            f"up to {EXACT_PAIRS} pairs), which makes no normality assumption but cannot fall below 2/2^n "
            f"({_fmt_floor(permutation_floor(fewest))} for n={fewest}): it can reach p < {ALPHA:g} from "
            f"{_count(pairs_to_reach(ALPHA))} pairs on{holm_pairs if len(tested) > 1 else ''}."
        )
    if WELCH in ladder.methods:
        parts.append(
            'Test "Welch": fewer than two seeds match, so Welch\'s unequal-variance t-test (scipy.stats.ttest_ind); '
            "its p (perm.) relabels the pooled seeds and cannot fall below 2 / (ways to split them into the two rows)."
        )
    if any(not math.isnan(c.p_permutation) and not c.permutation_can_reach for c in tested):
        parts.append(
            f'p (perm.) "n/a: min p x with n seeds": those seeds cannot give the test a p below {ALPHA:g} '
            '(", y after Holm": not after Holm across this table) whatever the change, so its p is no evidence '
            "either way."
        )
    unit = {frozenset({PAIRED}): "seed pairs", frozenset({WELCH}): "seeds per row"}.get(
        frozenset(ladder.methods), "seed pairs (paired) or seeds per row (Welch)"
    )
    parts.append(
        f"95% CI of the change from the same t distribution. p (Holm): Holm's step-down adjustment across the "
        f"{len(tested)} tests of this table; * marks a Δ with p (Holm) < 0.05. "
        f"Seeds for 80% power: {unit} a two-sided t-test at 0.05 would need to detect the observed change with 80% "
        "power at the observed spread (n/a: no spread). "
        "Δ < seed sd: the change is smaller than the seed-to-seed sd of mIoU of the two rows. "
        "Tests need two or more seeds on both rows."
    )
    return " ".join(parts)


def ladder_table(ladder: Ladder) -> Table:
    """Ladder: change per rung and cumulative; leave-one-out: change of each "minus trick" vs full."""
    with_ref = any(s.reference is not None for s in ladder.steps)
    stats_header = ["95% CI of Δ", "Test", "p", "p (Holm)", "p (perm.)", "Seeds for 80% power", "Δ < seed sd"]
    if ladder.is_loo:
        header = ["Rung", "Removed trick", "mIoU (%)", "n", "Δ vs full", *stats_header]
        align = "rlrrr" + "rlrrrrc"
    else:
        header = ["Rung", "Trick", "mIoU (%)", "n", "Δ prev.", "Δ cum.", *stats_header]
        align = "rlrrrr" + "rlrrrrc"
    if with_ref:
        header.append("Paper mIoU (%)")
        align += "r"
    body = []
    for step, label in zip(ladder.steps, ladder.step_labels):
        star = "*" if step.comparison is not None and step.comparison.significant else ""
        cells = [
            str(step.rung),
            label,
            fmt_mean_std(step.miou.mean, step.miou.std),
            str(step.miou.n),
            fmt(step.delta, signed=True) + star,
        ]
        if not ladder.is_loo:
            cells.append(fmt(step.cumulative, signed=True))
        cells += _test_cells(step.comparison)
        if with_ref:
            cells.append(fmt(step.reference))
        body.append(cells)
    if ladder.is_loo:
        what = (
            "Rung 0 is the full recipe, rung k the recipe without trick k; "
            "Δ vs full is the change of mean mIoU when that trick is removed (negative: the trick helps)."
        )
    else:
        what = (
            "Each rung adds one trick to all earlier ones; "
            "Δ prev. is the change of mean mIoU from the rung below, Δ cum. from rung 0."
        )
    title = f"{'Leave-one-out' if ladder.is_loo else 'Trick ladder'} ({ladder.experiment})"
    advice = permutation_advice(ladder)
    return Table(
        title,
        what + " " + test_caption(ladder),
        header,
        body,
        align,
        f"{ladder.kind}-{ladder.experiment}",
        notes=[advice] if advice else [],
    )


def paper_ladder(table: Table, ladder: Ladder, full: str) -> Table:
    """The ladder as a paper prints it, one column wide: each rung's mIoU, its change, the change's
    95% interval and p after Holm; the other tests and the seed budgets are in the `full` file."""
    change = "Δ vs full" if ladder.is_loo else "Δ prev."
    what = "when the trick is removed from the full recipe" if ladder.is_loo else "from the rung below"
    tests = sum(1 for s in ladder.steps if s.comparison is not None)
    caption = (
        f"{change}: change of mean mIoU (%) {what}; 95% CI of that change (t distribution, paired over shared "
        f"seeds, else Welch); p (Holm): adjusted across the {tests} tests of the table; * p (Holm) < {ALPHA:g}. "
        f"Tests, permutation p and seed budgets: {full}."
        if ladder.tested
        else f"{change}: change of mean mIoU (%) {what}; one seed per rung: no tests."
    )
    kind = "Leave-one-out" if ladder.is_loo else "Trick ladder"
    columns = ["Rung", "Trick", "Removed trick", "mIoU (%)", change, "95% CI of Δ", "p (Holm)"]
    narrow = table.select(columns, f"{kind}: the change each trick brings.", caption)
    return narrow.abbreviated("Removed trick" if ladder.is_loo else "Trick")


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _raw_p(value: float) -> str:
    """Six significant digits: a p-value of 3e-7 must not round to 0."""
    return "" if math.isnan(value) else f"{value:.6g}"


def _raw_seeds(c: Comparison | None) -> str:
    needed = c.seeds_needed if c is not None else None
    return "" if needed is None or math.isnan(needed) else ("inf" if math.isinf(needed) else str(int(needed)))


def _test_fields(c: Comparison | None) -> list[object]:
    """Unrounded test columns shared by the ladder and per-class CSVs."""
    if c is None:
        return ["", "", "", "", "", "", "", "", "", "", "", "", "", ""]
    return [
        c.method,
        c.n,
        raw_number(c.delta),
        raw_number(c.ci_low),
        raw_number(c.ci_high),
        _raw_p(c.p_value),
        _raw_p(c.p_holm),
        _raw_p(c.p_permutation),
        c.significant,
        _raw_seeds(c),
        raw_number(c.noise),
        c.below_noise,
        _raw_p(c.p_floor),
        c.permutation_can_reach if not math.isnan(c.p_permutation) else "",
    ]


_TEST_COLUMNS = [
    "test",
    "n_tested",
    "test_delta",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "p_permutation",
    "significant",
    "seeds_for_80_power",
    "seed_sd",
    "below_noise",
    "p_permutation_min",
    "permutation_can_reach",
]


def ladder_csv(ladder: Ladder) -> str:
    """`delta` is the difference of the rows' means; `test_delta` the mean over the seeds the test used."""
    rows = [
        [
            ladder.experiment,
            ladder.kind,
            s.rung,
            s.trick,
            s.name,
            raw_number(s.miou.mean),
            raw_number(s.miou.std),
            s.miou.n,
            " ".join("" if seed is None else str(seed) for seed in s.seeds),
            " ".join(raw_number(v) for v in s.values),
            raw_number(s.delta),
            raw_number(s.cumulative),
            *_test_fields(s.comparison),
            raw_number(s.reference),
        ]
        for s in ladder.steps
    ]
    header = [
        "experiment",
        "kind",
        "rung",
        "trick",
        "trial",
        "miou_mean",
        "miou_std",
        "n",
        "seeds",
        "values",
        "delta",
        "cumulative",
        *_TEST_COLUMNS,
        "reference_miou",
    ]
    return _csv(header, rows)


def class_delta_csv(ladder: Ladder) -> str:
    """Every rung x class change with its test; Holm runs across the classes of one rung."""
    rows = [
        [ladder.experiment, ladder.kind, s.rung, s.trick, name, raw_number(delta), *_test_fields(test)]
        for s in ladder.steps
        if s.rung != 0
        for name, delta, test in zip(ladder.classes, s.class_delta, s.class_tests)
    ]
    return _csv(["experiment", "kind", "rung", "trick", "class", "delta", *_TEST_COLUMNS], rows)


def _listed(effects: Sequence[tuple[str, float]]) -> str:
    """The largest effects by name; a dataset of many classes may have dozens, all in the CSV."""
    if not effects:
        return "none significant"
    text = ", ".join(f"{c} ({d:+.1f})" for c, d in effects[:MAX_LISTED])
    more = len(effects) - MAX_LISTED
    return text + (f" and {more} more (CSV)" if more > 0 else "")


def class_effects_table(ladder: Ladder) -> Table:
    """Per trick, the classes it helped and hurt (significant after Holm), or why none are listed."""
    rows = []
    for step in ladder.steps:
        if step.rung == 0:
            continue
        if not step.class_tested:
            if step.comparison is None:
                why = "not tested: fewer than two seeds to compare"
            elif not any(math.isfinite(d) for d in step.class_delta):
                why = "no per-class IoU logged"
            else:
                why = "not tested: no spread over seeds"
            rows.append([str(step.rung), step.trick, why, ""])
            continue
        helped, hurt = ladder.class_effects(step)
        rows.append([str(step.rung), step.trick, _listed(helped), _listed(hurt)])
    caption = (
        "Per-class IoU change of each trick, tested over seeds like the mIoU change (paired by seed where the rows "
        "share seeds, else Welch) and Holm-adjusted across the classes of the rung; a class is listed when "
        "p (Holm) < 0.05, with the change the trick brings"
        + (" (the negative of the change when it is removed)." if ladder.is_loo else ".")
    )
    title = f"Classes helped and hurt ({ladder.experiment})"
    return Table(
        title,
        caption,
        ["Rung", "Trick", "Classes helped", "Classes hurt"],
        rows,
        "rlll",
        f"classes-{ladder.kind}-{ladder.experiment}",
    )
