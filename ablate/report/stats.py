"""Small statistics for few-seed ablations: summaries, delta intervals, tests, the Pareto front.

Seeds are few (often 2-5), so every function accepts tiny samples and says "unknown" (None or
NaN) rather than inventing precision. scipy is optional: without it the p-value comes from an
exact (or sampled) permutation test and the interval from a bootstrap, both in numpy.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

WELCH = "welch"
PERMUTATION = "permutation"
CONFIDENCE = 0.95
_RESAMPLES = 10_000


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1, None below two values) and n of one group of seeds."""

    mean: float
    std: Optional[float]
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """NaNs are dropped first: a missing value is not a measured zero."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return Summary(float("nan"), None, 0)
    std = float(np.std(arr, ddof=1)) if arr.size >= 2 else None
    return Summary(float(np.mean(arr)), std, int(arr.size))


@dataclass(frozen=True)
class Comparison:
    """`b - a` with a 95% interval and a two-sided p-value, and the method that produced them."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str

    @property
    def significant(self) -> bool:
        return not math.isnan(self.p_value) and self.p_value < 1 - CONFIDENCE


def have_scipy() -> bool:
    try:
        import scipy.stats  # noqa: F401
    except ImportError:
        return False
    return True


def default_method() -> str:
    """Welch's t-test when scipy is importable, else the numpy permutation test."""
    return WELCH if have_scipy() else PERMUTATION


def _clean(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[~np.isnan(arr)]


def welch(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Welch's unequal-variance t-test of mean(b) - mean(a), with its Welch-Satterthwaite CI."""
    from scipy import stats as sps

    x, y = _clean(a), _clean(b)
    delta = float(y.mean() - x.mean())
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    if se == 0.0:  # identical repeats: the test is undefined, the interval collapses
        return Comparison(delta, delta, delta, float("nan"), WELCH)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    with warnings.catch_warnings():  # one group without spread makes scipy warn; the formula still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(sps.ttest_ind(y, x, equal_var=False).pvalue)
    return Comparison(delta, delta - half, delta + half, p_value, WELCH)


def permutation_p(a: Sequence[float], b: Sequence[float], resamples: int = _RESAMPLES, seed: int = 0) -> float:
    """Two-sided p of |mean(b) - mean(a)|: exact over all relabelings when they are few."""
    x, y = _clean(a), _clean(b)
    pooled = np.concatenate([x, y])
    n, k = pooled.size, x.size
    observed = abs(y.mean() - x.mean())
    tolerance = 1e-12 * max(1.0, observed)
    if math.comb(n, k) <= resamples:
        hits = total = 0
        for chosen in itertools.combinations(range(n), k):
            mask = np.zeros(n, dtype=bool)
            mask[list(chosen)] = True
            diff = abs(pooled[~mask].mean() - pooled[mask].mean())
            hits += diff >= observed - tolerance
            total += 1
        return hits / total
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((resamples, n)), axis=1)
    shuffled = pooled[perms]
    diffs = np.abs(shuffled[:, k:].mean(axis=1) - shuffled[:, :k].mean(axis=1))
    # the observed labeling counts as one of the resamples, so p is never exactly 0
    return float((np.sum(diffs >= observed - tolerance) + 1) / (resamples + 1))


def bootstrap_ci(a: Sequence[float], b: Sequence[float], resamples: int = _RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean(b) - mean(a), each group resampled on its own."""
    x, y = _clean(a), _clean(b)
    rng = np.random.default_rng(seed)
    mx = x[rng.integers(0, x.size, (resamples, x.size))].mean(axis=1)
    my = y[rng.integers(0, y.size, (resamples, y.size))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(my - mx, [tail, 100 - tail])
    return float(low), float(high)


def permutation(a: Sequence[float], b: Sequence[float]) -> Comparison:
    x, y = _clean(a), _clean(b)
    low, high = bootstrap_ci(x, y)
    return Comparison(float(y.mean() - x.mean()), low, high, permutation_p(x, y), PERMUTATION)


def compare(a: Sequence[float], b: Sequence[float], method: Optional[str] = None) -> Optional[Comparison]:
    """None unless both groups have at least two finite values (no spread, no interval)."""
    if _clean(a).size < 2 or _clean(b).size < 2:
        return None
    method = method or default_method()
    if method == WELCH:
        return welch(a, b)
    if method == PERMUTATION:
        return permutation(a, b)
    raise ValueError(f"unknown test {method!r} (use {WELCH} or {PERMUTATION})")


def method_caption(method: str) -> str:
    """One sentence for table captions, so a reader knows which test made the p-values."""
    if method == WELCH:
        return "95% CI and p-value from Welch's unequal-variance t-test (scipy)"
    return (
        "p-value from a two-sided permutation test of the mean difference (exact when there are at most "
        f"{_RESAMPLES:,} relabelings, else {_RESAMPLES:,} random ones) and 95% CI from a percentile bootstrap "
        "(numpy; scipy not installed)"
    )


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Labels of (label, cost, score) points no other point beats: cheaper-or-equal and better-or-equal,
    strictly in one. Ordered by cost; NaN points never enter."""
    valid = [(label, c, s) for label, c, s in points if not (math.isnan(c) or math.isnan(s))]
    front = []
    for label, cost, score in valid:
        dominated = any(
            c2 <= cost and s2 >= score and (c2 < cost or s2 > score) for _, c2, s2 in valid
        )
        if not dominated:
            front.append((cost, -score, label))
    return [label for _, _, label in sorted(front)]
