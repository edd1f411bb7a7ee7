"""The statistics across respondents: means with confidence intervals, tests between groups,
and key moments of an aggregate curve.

- Confidence interval: Student's t interval of a mean, ``mean +- t(0.975, n - 1) * sd / sqrt(n)``
  with the sample standard deviation (ddof 1); undefined (NaN) for n < 2. Not clipped to the
  metric's range: with few respondents near 0 or 1 it passes it, which tells that n is small.
- Two groups: Welch's t-test (Welch 1947, Biometrika 34:28-35; ``scipy.stats.ttest_ind`` with
  ``equal_var=False``), which does not assume equal variances.
- More than two groups: the Alexander-Govern test (Alexander & Govern 1994, Journal of
  Educational Statistics 19(2):91-101; ``scipy.stats.alexandergovern``): like Welch's ANOVA a
  one-way test of equal means that does not assume equal variances, and it is in SciPy
  (Welch's ANOVA would need statsmodels). With two groups we use Welch's t-test itself.
- Key moments: Realeyes' "Key Moments", the largest rises and falls of a second-by-second
  curve; measured here with a difference of adjacent moving averages (see :func:`key_moments`).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def interval_from_sums(n: np.ndarray, total: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean and 95% Student-t interval from running sums (any shape, element-wise).

    ``n``: count, ``total``: sum of values, ``squares``: sum of squared values. Returns
    ``(mean, ci_low, ci_high)`` float64; the mean is NaN where n = 0, the interval where n < 2.
    The variance ``(squares - total**2 / n) / (n - 1)`` is exact enough in float64 for values
    of order 1 (probabilities and their baselined differences); it is clipped at 0.
    """
    n = np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
        variance = np.where(n > 1, np.maximum(squares - total * mean, 0.0) / (n - 1), np.nan)
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, np.where(n > 1, n - 1, np.nan)) * np.sqrt(variance / n)
    return mean, mean - half, mean + half


def interval(values: np.ndarray) -> tuple[float, float, float, int]:
    """``(mean, ci_low, ci_high, n)`` of the non-NaN ``values`` ``(N,)`` (95% Student-t interval)."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    mean, low, high = interval_from_sums(np.array(len(values)), values.sum(), np.square(values).sum())
    return float(mean), float(low), float(high), len(values)


def between_groups_p(samples: list[np.ndarray]) -> float:
    """p-value of equal means across groups, each ``(N_i,)`` values (NaN ignored).

    Groups with fewer than 2 values are left out (no variance to weigh them by). Two groups
    left: Welch's t-test; more: the Alexander-Govern test; fewer, or no variance at all: NaN.
    """
    kept = [s[~np.isnan(s)] for s in (np.asarray(s, np.float64) for s in samples)]
    kept = [s for s in kept if len(s) >= 2]
    if len(kept) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant groups: SciPy warns and answers NaN, which we keep
        if len(kept) == 2:
            return float(stats.ttest_ind(kept[0], kept[1], equal_var=False).pvalue)
        return float(stats.alexandergovern(*kept).pvalue)


def boundary_changes(curve: np.ndarray, window: int) -> np.ndarray:
    """Change at each epoch boundary of ``curve`` ``(E,)``: the mean of the ``window`` epochs
    after the boundary minus the mean of the ``window`` epochs before it (fewer at the ends;
    NaN epochs skipped). Returns ``(E + 1,)`` float64; entry k is the boundary at the start of
    epoch k, NaN where a side has no value (always at 0 and E)."""
    curve = np.asarray(curve, np.float64)
    count = len(curve)
    valid = ~np.isnan(curve)
    sums = np.concatenate([[0.0], np.cumsum(np.where(valid, curve, 0.0))])
    counts = np.concatenate([[0], np.cumsum(valid)])
    k = np.arange(count + 1)
    after_end, before_start = np.minimum(k + window, count), np.maximum(k - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        after = (sums[after_end] - sums[k]) / (counts[after_end] - counts[k])
        before = (sums[k] - sums[before_start]) / (counts[k] - counts[before_start])
    return after - before


def key_moments(curve: np.ndarray, epoch_s: float, top: int, min_change: float,
                window_s: float = 3.0, separation_s: float = 5.0) -> list[tuple[float, float]]:
    """The largest rises and falls of an aggregate curve ``(E,)`` (one value per epoch, NaN where
    no respondent had a face): up to ``top`` rises and ``top`` falls, as ``(time_s, change)``
    sorted by time (``change`` signed, a rise positive).

    The change at each epoch boundary is the mean of the next ``window_s`` seconds of epochs
    minus the mean of the previous ``window_s`` seconds (a difference of adjacent moving
    averages: the averaging is the light smoothing, and for a clean step it peaks at the step
    with exactly its height). Peaks are kept largest first, at least ``separation_s`` apart
    (non-maximum suppression, so the shoulders of one change are not reported as others), and
    only when ``|change| >= min_change``. The time is refined between epoch boundaries by a
    parabola through the peak and its neighbours, so a step in the middle of an epoch is
    reported there, not at the epoch's start.
    """
    window = max(1, round(window_s / epoch_s))
    changes = boundary_changes(curve, window)
    moments = []
    for sign in (1.0, -1.0):
        signed = sign * changes
        for k in _peaks(signed, top, min_change, separation_s / epoch_s):
            moments.append(((k + _vertex_offset(signed, k)) * epoch_s, float(changes[k])))
    return sorted(moments)


def _peaks(signed: np.ndarray, top: int, min_change: float, separation: float) -> list[int]:
    """Indices of the ``top`` largest values >= ``min_change``, each at least ``separation`` indices
    from a larger one already kept (NaN never kept)."""
    order = np.argsort(-np.nan_to_num(signed, nan=-np.inf), kind="stable")
    kept: list[int] = []
    for k in order:
        if len(kept) >= top or not signed[k] >= min_change:
            break
        if all(abs(k - other) >= separation for other in kept):
            kept.append(int(k))
    return kept


def _vertex_offset(signed: np.ndarray, k: int) -> float:
    """Where, within half an epoch of k, a parabola through ``signed[k - 1 : k + 2]`` peaks (0 at the edges)."""
    if k == 0 or k == len(signed) - 1 or np.isnan(signed[k - 1]) or np.isnan(signed[k + 1]):
        return 0.0
    left, mid, right = signed[k - 1], signed[k], signed[k + 1]
    curvature = left - 2 * mid + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
