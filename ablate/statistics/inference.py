"""Statistics for few-seed ablations: summaries, paired and unpaired tests, Holm, seed budgets, Pareto.

Seeds are few (often 2-5) and differ by up to several mIoU points on one config, so a delta
means little without its noise. Two runs that share a seed share the data order and the
initialisation, so their difference cancels most of that noise: comparisons are paired by seed
whenever at least two seeds match, and fall back to Welch's test otherwise. Every function
accepts tiny samples and says "unknown" (None or NaN) rather than inventing precision.
scipy is imported inside the functions: every `ablate` command imports this package.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

PAIRED = "paired"
WELCH = "welch"
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8
MAX_SEEDS = 1000  # seed budgets above this are reported as "more than"
_RESAMPLES = 9999  # the permutation test is exact while the relabelings are at most this many
EXACT_PAIRS = int(math.log2(_RESAMPLES))  # sign flips of up to this many pairs are all enumerated

# Per-seed metrics: lists from the tracking store, or arrays once cleaned.
Values = Sequence[float] | npt.NDArray[np.floating]


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1, None below two values) and n of one group of seeds."""

    mean: float
    std: float | None
    n: int


def mean_of(values: Sequence[float | None]) -> float:
    """The mean of the known values (None and NaN left out); NaN when none is known."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summarize(values: Sequence[float | None]) -> Summary:
    """NaNs are dropped first: a missing value is not a measured zero."""
    arr = _clean([v for v in values if v is not None])
    if arr.size == 0:
        return Summary(float("nan"), None, 0)
    std = float(np.std(arr, ddof=1)) if arr.size >= 2 else None
    return Summary(float(np.mean(arr)), std, int(arr.size))


@dataclass(frozen=True)
class Comparison:
    """`b - a` with its 95% interval and tests, and what it would take to detect it.

    `delta` is the mean over matched seeds for a paired comparison, so it can differ from the
    difference of the two groups' means when some seeds ran on one side only. `effect_sd` is
    the sd the power calculation divides by (of the paired differences, or pooled for Welch);
    `noise` is the sd of the per-seed values themselves, pooled over both groups.
    `p_holm` is the p-value adjusted across the comparisons of one table (itself, alone).
    """

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    n: int
    effect_sd: float
    noise: float | None
    p_permutation: float = float("nan")
    p_holm: float = float("nan")
    sizes: tuple[int, int] = (0, 0)
    p_floor: float = float("nan")
    holm_floor: float = float("nan")

    @property
    def paired(self) -> bool:
        return self.method == PAIRED

    @property
    def permutation_can_reach(self) -> bool:
        """Whether some data could make the permutation test say p < ALPHA with these seeds, also after
        Holm across the table (`holm_floor`, when set): a p that cannot is no evidence either way."""
        return not (self.p_floor >= ALPHA or self.holm_floor >= ALPHA)  # NaN: unknown, not refused

    @property
    def significant(self) -> bool:
        """After the table's multiple-comparison correction, not before."""
        return not math.isnan(self.p_holm) and self.p_holm < ALPHA

    @property
    def below_noise(self) -> bool:
        """The change is smaller than how much one config moves between seeds."""
        return self.noise is not None and abs(self.delta) < self.noise

    @property
    def seeds_needed(self) -> float | None:
        """Seeds (pairs, or per group for Welch) for 80% power at 0.05 to detect this delta."""
        if self.effect_sd == 0 or math.isnan(self.effect_sd):
            return None
        return seeds_for_power(abs(self.delta) / self.effect_sd, paired=self.paired)


def _clean(values: Values) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    return arr[~np.isnan(arr)]


def _no_spread(values: np.ndarray) -> bool:
    """Rounding leaves ~1e-15 of "spread" on identical repeats; a t statistic on that is noise."""
    return values.size < 2 or float(np.ptp(values)) <= 1e-9 * max(1.0, float(np.max(np.abs(values))))


def _noise(a: np.ndarray, b: np.ndarray) -> float | None:
    variances = [float(np.var(x, ddof=1)) for x in (a, b) if x.size >= 2]
    return math.sqrt(sum(variances) / len(variances)) if variances else None


def permutation_p(a: Values, b: Values, paired: bool = False) -> float:
    """Two-sided p of mean(b - a): random sign flips of the pair differences when `paired`,
    random relabeling of the pooled values otherwise. Exact (every flip or relabeling) for small n."""
    from scipy import stats as sps

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        diffs = y - x
        diffs = diffs[~np.isnan(diffs)]
        result = sps.permutation_test(
            (diffs,), np.mean, permutation_type="samples", vectorized=True, n_resamples=_RESAMPLES, rng=0
        )
    else:
        result = sps.permutation_test(
            (_clean(y), _clean(x)),
            lambda u, v, axis: np.mean(u, axis=axis) - np.mean(v, axis=axis),
            permutation_type="independent",
            vectorized=True,
            n_resamples=_RESAMPLES,
            rng=0,
        )
    return float(result.pvalue)


def permutation_floor(n_a: int, n_b: int | None = None) -> float:
    """The smallest two-sided p `permutation_p` can return: sign flips of `n_a` pairs, or relabelings of
    `n_a` and `n_b` seeds. Only the observed labeling (and, two-sided, its mirror) is as extreme as
    itself, so p >= 2 / (number of labelings); past `_RESAMPLES` labelings scipy samples them and
    counts the observed one too, so p >= 2 / (_RESAMPLES + 1)."""
    if n_a < 1 or (n_b is not None and n_b < 1):
        return 1.0
    labelings = 2**n_a if n_b is None else math.comb(n_a + n_b, n_a)
    return min(1.0, 2 / (labelings if labelings <= _RESAMPLES else _RESAMPLES + 1))


def pairs_to_reach(alpha: float = ALPHA, tests: int = 1) -> float:
    """Fewest seed pairs whose sign-flip test can give p < alpha / tests: below 0.05 alone, and with
    `tests` > 1 below Holm's first threshold across a table of that many tests (the smallest p is
    multiplied by their number). inf when the sampled test (past EXACT_PAIRS) cannot get there."""
    for n in range(1, EXACT_PAIRS + 2):
        if permutation_floor(n) < alpha / max(tests, 1):
            return float(n)
    return math.inf


def paired_t(a: Sequence[float], b: Sequence[float], permutation: bool = True) -> Comparison:
    """Paired t-test of b - a over aligned seeds (pairs with a NaN are dropped)."""
    from scipy import stats as sps

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    diffs = y - x
    delta = float(diffs.mean())
    perm = permutation_p(x, y, paired=True) if permutation else float("nan")
    noise = _noise(x, y)
    n = int(diffs.size)
    sizes, p_floor = (n, n), permutation_floor(n)
    if _no_spread(diffs):  # every seed moved by the same amount: the t-test is undefined
        return Comparison(delta, delta, delta, float("nan"), PAIRED, n, 0.0, noise, perm, sizes=sizes, p_floor=p_floor)
    sd = float(np.std(diffs, ddof=1))
    result = sps.ttest_rel(y, x)
    ci = result.confidence_interval(CONFIDENCE)
    p = float(result.pvalue)
    return Comparison(
        delta, float(ci.low), float(ci.high), p, PAIRED, n, sd, noise, perm, p, sizes=sizes, p_floor=p_floor
    )


def welch(a: Sequence[float], b: Sequence[float], permutation: bool = True) -> Comparison:
    """Welch's unequal-variance t-test of mean(b) - mean(a), with its Welch-Satterthwaite interval."""
    from scipy import stats as sps

    x, y = _clean(a), _clean(b)
    delta = float(y.mean() - x.mean())
    perm = permutation_p(x, y) if permutation else float("nan")
    pooled = math.sqrt((float(np.var(x, ddof=1)) + float(np.var(y, ddof=1))) / 2)
    n = int(min(x.size, y.size))
    noise = _noise(x, y)
    sizes, p_floor = (int(x.size), int(y.size)), permutation_floor(int(x.size), int(y.size))
    if _no_spread(x) and _no_spread(y):  # identical repeats on both sides: nothing to test against
        return Comparison(delta, delta, delta, float("nan"), WELCH, n, 0.0, noise, perm, sizes=sizes, p_floor=p_floor)
    with warnings.catch_warnings():  # one group without spread makes scipy warn; the formula still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sps.ttest_ind(y, x, equal_var=False)
        ci = result.confidence_interval(CONFIDENCE)
    p = float(result.pvalue)
    return Comparison(
        delta, float(ci.low), float(ci.high), p, WELCH, n, pooled, noise, perm, p, sizes=sizes, p_floor=p_floor
    )


def compare(
    a: Sequence[float],
    b: Sequence[float],
    seeds_a: Sequence[int | None] | None = None,
    seeds_b: Sequence[int | None] | None = None,
    permutation: bool = True,
) -> Comparison | None:
    """Paired over the seeds both groups share when at least two match, else Welch; None when
    neither is possible (fewer than two finite values on a side: no spread, no interval)."""
    if seeds_a is not None and seeds_b is not None:
        by_seed = {s: v for s, v in zip(seeds_b, b) if s is not None and not math.isnan(v)}
        matched = [(v, by_seed[s]) for s, v in zip(seeds_a, a) if s in by_seed and not math.isnan(v)]
        if len(matched) >= 2:
            return paired_t([m[0] for m in matched], [m[1] for m in matched], permutation)
    if _clean(a).size < 2 or _clean(b).size < 2:
        return None
    return welch(a, b, permutation)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest of m p-values times (m - k + 1), made
    monotone and capped at 1. NaN (untested) entries stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    if tested.size:
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = p[order] * (tested.size - np.arange(tested.size))
        out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(v) for v in out]


def adjust(comparisons: Sequence[Comparison | None]) -> list[Comparison | None]:
    """The same comparisons with `p_holm` set across them as one family, and `holm_floor`: the
    smallest p Holm could leave to any of their permutation tests (the family's smallest floor
    times its size; no test passes Holm unless the smallest p does)."""
    adjusted = holm([c.p_value if c is not None else float("nan") for c in comparisons])
    tested = [c for c in comparisons if c is not None]
    floor = min((c.p_floor for c in tested), default=float("nan")) * len(tested)
    return [
        replace(c, p_holm=p, holm_floor=min(1.0, floor)) if c is not None else None
        for c, p in zip(comparisons, adjusted)
    ]


def power(effect: float, n: int | np.ndarray, paired: bool = True, alpha: float = ALPHA) -> np.ndarray:
    """Power of the two-sided t-test for a standardised effect (|delta| / sd), from the noncentral t.

    Paired: n pairs, one-sample test of the differences. Unpaired: n seeds in each group.
    """
    from scipy import stats as sps

    n = np.asarray(n, dtype=float)
    df = n - 1 if paired else 2 * n - 2
    shift = effect * (np.sqrt(n) if paired else np.sqrt(n / 2))
    critical = sps.t.ppf(1 - alpha / 2, df)
    return sps.nct.sf(critical, df, shift) + sps.nct.cdf(-critical, df, shift)


def seeds_for_power(effect: float, paired: bool = True, target: float = POWER, alpha: float = ALPHA) -> float:
    """Smallest n (>= 2) whose power reaches `target`; inf when even MAX_SEEDS would not."""
    if math.isnan(effect):
        return math.nan
    if effect <= 0:
        return math.inf
    n = np.arange(2, MAX_SEEDS + 1)
    reached = np.flatnonzero(power(effect, n, paired, alpha) >= target)
    return float(n[reached[0]]) if reached.size else math.inf


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Labels of (label, cost, score) points no other point beats: cheaper-or-equal and better-or-equal,
    strictly in one. Ordered by cost; NaN points never enter."""
    valid = [(label, c, s) for label, c, s in points if not (math.isnan(c) or math.isnan(s))]
    front = []
    for label, cost, score in valid:
        dominated = any(c2 <= cost and s2 >= score and (c2 < cost or s2 > score) for _, c2, s2 in valid)
        if not dominated:
            front.append((cost, -score, label))
    return [label for _, _, label in sorted(front)]
