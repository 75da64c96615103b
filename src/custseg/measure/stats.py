"""The statistics of campaign measurement: intervals, tests, corrections and sample sizes.

Every function works on plain numbers or numpy arrays (element by element), so
that one call covers every segment of a campaign. Definitions and references
are in docs/measure.md:

* :func:`wilson_interval`: Wilson (1927) score interval for one proportion.
* :func:`newcombe_interval`: Newcombe's (1998) hybrid score interval for a
  difference of two independent proportions (method 10 of his paper).
* :func:`two_proportion_ztest`: two-sided z-test with the pooled variance.
* :func:`ratio_interval`: Katz et al. (1978) log interval of a ratio of two
  proportions (the relative lift is the ratio minus 1).
* :func:`welch_interval`: Welch's t interval and p-value for a difference of
  means, with the Welch-Satterthwaite degrees of freedom;
  :func:`ratio_delta_interval` for their ratio (delta method).
* :func:`bootstrap_mean_difference`: seeded percentile bootstrap of the same.
* :func:`holm`: Holm's (1979) step-down adjustment of p-values.
* :func:`sample_size_two_proportions`, :func:`power_two_proportions`,
  :func:`minimum_detectable_lift`: the normal approximation with the pooled
  variance under the null (Fleiss, Tytun and Ury 1980, without continuity
  correction), for any treatment:control ratio.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

# Resampled means of a value set with at most this many distinct values are drawn
# from a multinomial (the same distribution as resampling rows, in O(values) time).
_MULTINOMIAL_MAX_VALUES = 64
_CHUNK_CELLS = 4_000_000  # resampled indices held in memory at once


@functools.lru_cache(maxsize=64)
def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} should be between 0 and 1")
    return float(stats.norm.ppf(1 - alpha / 2))


def _out(values):
    """A 0-d array as a float, anything else unchanged."""
    arr = np.asarray(values, dtype="float64")
    return float(arr) if arr.ndim == 0 else arr


def wilson_interval(successes, n, alpha: float = 0.05):
    """Wilson score interval for a proportion.

    Parameters
    ----------
    successes, n : int or array_like
        Successes and trials; ``n = 0`` gives NaN.
    alpha : float, default=0.05
        1 - confidence level (two-sided).

    Returns
    -------
    low, high : float or ndarray

    Notes
    -----
    ``(x + z²/2) / (n + z²) ± z / (n + z²) * sqrt(x (n - x) / n + z² / 4)``
    with ``z`` the ``1 - alpha/2`` normal quantile (Wilson 1927; Newcombe 1998,
    method 3 of the single-proportion paper).

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(81, 263)]
    [0.2553, 0.3662]
    """
    z = _z(alpha)
    x = np.asarray(successes, dtype="float64")
    m = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (x + z * z / 2) / (m + z * z)
        half = z / (m + z * z) * np.sqrt(np.maximum(x * (m - x) / m, 0.0) + z * z / 4)
        low = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return _out(low), _out(high)


def newcombe_interval(x1, n1, x2, n2, alpha: float = 0.05):
    """Newcombe's hybrid score interval for ``p1 - p2`` (independent samples).

    Parameters
    ----------
    x1, n1 : int or array_like
        Successes and trials of the first group (the treatment).
    x2, n2 : int or array_like
        Successes and trials of the second group (the control).
    alpha : float, default=0.05

    Returns
    -------
    difference, low, high : float or ndarray
        ``p1 - p2`` and its interval; NaN where a group is empty.

    Notes
    -----
    With ``(l1, u1)`` and ``(l2, u2)`` the Wilson intervals of the two
    proportions, ``low = d - sqrt((p1 - l1)² + (u2 - p2)²)`` and
    ``high = d + sqrt((u1 - p1)² + (p2 - l2)²)`` (Newcombe 1998, method 10).

    Examples
    --------
    >>> [round(v, 4) for v in newcombe_interval(56, 70, 48, 80)]
    [0.2, 0.0524, 0.3339]
    """
    a1, b1 = np.asarray(x1, dtype="float64"), np.asarray(n1, dtype="float64")
    a2, b2 = np.asarray(x2, dtype="float64"), np.asarray(n2, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.where(b1 > 0, a1 / b1, np.nan)
        p2 = np.where(b2 > 0, a2 / b2, np.nan)
    l1, u1 = wilson_interval(a1, b1, alpha)
    l2, u2 = wilson_interval(a2, b2, alpha)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return _out(d), _out(low), _out(high)


def two_proportion_ztest(x1, n1, x2, n2):
    """Two-sided z-test of ``p1 = p2`` with the pooled variance.

    Returns
    -------
    z, p_value : float or ndarray
        ``z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2))`` with ``p`` the pooled
        rate; NaN when a group is empty or the pooled rate is 0 or 1 (no
        variation, nothing to test).

    Examples
    --------
    >>> z, p = two_proportion_ztest(56, 70, 48, 80)
    >>> round(z, 4), round(p, 4)
    (2.6502, 0.008)
    """
    a1, b1 = np.asarray(x1, dtype="float64"), np.asarray(n1, dtype="float64")
    a2, b2 = np.asarray(x2, dtype="float64"), np.asarray(n2, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (a1 + a2) / (b1 + b2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / b1 + 1 / b2))
        z = np.where((b1 > 0) & (b2 > 0) & (se > 0), (a1 / b1 - a2 / b2) / se, np.nan)
    p = 2 * stats.norm.sf(np.abs(z))
    return _out(z), _out(p)


def ratio_interval(x1, n1, x2, n2, alpha: float = 0.05):
    """Ratio ``p1 / p2`` of two proportions with the Katz log interval.

    Returns
    -------
    ratio, low, high : float or ndarray
        ``exp(log(ratio) ± z * sqrt(1/x1 - 1/n1 + 1/x2 - 1/n2))``; NaN when
        either group has no success (the log ratio is not finite).

    Examples
    --------
    >>> [round(v, 4) for v in ratio_interval(56, 70, 48, 80)]
    [1.3333, 1.0766, 1.6512]
    """
    z = _z(alpha)
    a1, b1 = np.asarray(x1, dtype="float64"), np.asarray(n1, dtype="float64")
    a2, b2 = np.asarray(x2, dtype="float64"), np.asarray(n2, dtype="float64")
    ok = (a1 > 0) & (a2 > 0) & (b1 > 0) & (b2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((a2 > 0) & (b1 > 0) & (b2 > 0), (a1 / b1) / (a2 / b2), np.nan)
        se = np.sqrt(1 / a1 - 1 / b1 + 1 / a2 - 1 / b2)
        low = np.where(ok, ratio * np.exp(-z * se), np.nan)
        high = np.where(ok, ratio * np.exp(z * se), np.nan)
    return _out(ratio), _out(low), _out(high)


@dataclass(frozen=True)
class MeanDifference:
    """A difference of two means with its interval.

    Attributes
    ----------
    difference, low, high : float
        ``mean1 - mean2`` and its ``1 - alpha`` interval.
    p_value : float
        Two-sided p-value of Welch's t-test (also for the bootstrap interval).
    ratio, ratio_low, ratio_high : float
        ``mean1 / mean2`` and its interval (delta method on the log scale for
        Welch, percentiles of the resampled ratio for the bootstrap).
    method : str
        ``welch`` or ``bootstrap``.
    """

    difference: float
    low: float
    high: float
    p_value: float
    ratio: float
    ratio_low: float
    ratio_high: float
    method: str


def welch_interval(mean1, var1, n1, mean2, var2, n2, alpha: float = 0.05):
    """Welch's interval and p-value for ``mean1 - mean2`` from summary statistics.

    Parameters
    ----------
    mean1, var1, n1 : float or array_like
        Mean, sample variance (``ddof=1``) and size of the first group.
    mean2, var2, n2 : float or array_like
        The same of the second group.
    alpha : float, default=0.05

    Returns
    -------
    difference, low, high, p_value, df : float or ndarray
        ``d ± t(1 - alpha/2, df) * se`` with ``se = sqrt(v1/n1 + v2/n2)`` and
        ``df = se⁴ / ((v1/n1)²/(n1-1) + (v2/n2)²/(n2-1))``; NaN with fewer than
        two values in a group, or no variation in both.

    Examples
    --------
    >>> d, low, high, p, df = welch_interval(10.0, 100.0, 3, 5.0, 50.0, 4)
    >>> round(d, 4), round(df, 4), round(p, 4)
    (5.0, 3.4571, 0.5071)
    """
    _z(alpha)
    m1, v1, k1 = (np.asarray(v, dtype="float64") for v in (mean1, var1, n1))
    m2, v2, k2 = (np.asarray(v, dtype="float64") for v in (mean2, var2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, s2 = v1 / k1, v2 / k2
        se = np.sqrt(s1 + s2)
        df = (s1 + s2) ** 2 / (s1 ** 2 / (k1 - 1) + s2 ** 2 / (k2 - 1))
        ok = (k1 >= 2) & (k2 >= 2) & (se > 0)
        d = m1 - m2
        t = stats.t.ppf(1 - alpha / 2, np.where(ok, df, 1.0))
        low = np.where(ok, d - t * se, np.nan)
        high = np.where(ok, d + t * se, np.nan)
        p = np.where(ok, 2 * stats.t.sf(np.abs(d / se), np.where(ok, df, 1.0)), np.nan)
        df = np.where(ok, df, np.nan)
    return _out(d), _out(low), _out(high), _out(p), _out(df)


def welch_test(values1, values2, alpha: float = 0.05) -> MeanDifference:
    """Welch's interval of ``mean(values1) - mean(values2)`` and of their ratio.

    The ratio's interval is ``exp(log(r) ± z * sqrt(v1/(n1 m1²) + v2/(n2 m2²)))``
    (delta method); NaN unless both means are positive.

    Examples
    --------
    >>> r = welch_test([0.0, 10.0, 20.0], [0.0, 0.0, 5.0, 15.0])
    >>> round(r.difference, 2), round(r.low, 4), round(r.high, 4)
    (5.0, -15.0199, 25.0199)
    """
    a, b = _values(values1), _values(values2)
    m1, m2 = _mean(a), _mean(b)
    v1 = float(np.var(a, ddof=1)) if len(a) > 1 else math.nan
    v2 = float(np.var(b, ddof=1)) if len(b) > 1 else math.nan
    d, low, high, p, _df = welch_interval(m1, v1, len(a), m2, v2, len(b), alpha)
    ratio, rlow, rhigh = ratio_delta_interval(m1, v1, len(a), m2, v2, len(b), alpha)
    return MeanDifference(d, low, high, p, ratio, rlow, rhigh, "welch")


def ratio_delta_interval(mean1, var1, n1, mean2, var2, n2, alpha: float = 0.05):
    """Ratio ``mean1 / mean2`` with a delta-method interval on the log scale.

    ``exp(log(r) ± z * sqrt(v1 / (n1 m1²) + v2 / (n2 m2²)))``; NaN bounds unless
    both means are positive and both groups have two values or more.

    Returns
    -------
    ratio, low, high : float or ndarray
    """
    z = _z(alpha)
    m1, v1, k1 = (np.asarray(v, dtype="float64") for v in (mean1, var1, n1))
    m2, v2, k2 = (np.asarray(v, dtype="float64") for v in (mean2, var2, n2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(m2 > 0, m1 / m2, np.nan)
        ok = (m1 > 0) & (m2 > 0) & (k1 > 1) & (k2 > 1)
        se = np.sqrt(v1 / (k1 * m1 * m1) + v2 / (k2 * m2 * m2))
        low = np.where(ok, ratio * np.exp(-z * se), np.nan)
        high = np.where(ok, ratio * np.exp(z * se), np.nan)
    return _out(ratio), _out(low), _out(high)


def _values(values) -> np.ndarray:
    arr = np.asarray(values, dtype="float64").ravel()
    return arr[np.isfinite(arr)]


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if len(a) else math.nan


def seeded_rng(seed: int, key: str = "") -> np.random.Generator:
    """A generator for one named part of an analysis (a segment), stable for a given seed.

    The same ``seed`` and ``key`` always give the same stream, whatever other
    segments the analysis has or the order they come in.
    """
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))])


def resampled_means(values, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples (with replacement, same size) of ``values``.

    Values with few distinct levels (0/1 conversions, -1/0/1 changes) are
    resampled through multinomial counts of the levels, which is the same
    distribution as resampling the rows and takes no time for large groups.
    """
    a = _values(values)
    n = len(a)
    if n == 0:
        return np.full(n_resamples, np.nan)
    levels, counts = np.unique(a, return_counts=True)
    if len(levels) <= _MULTINOMIAL_MAX_VALUES:
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return draws @ levels / n
    out = np.empty(n_resamples)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, step):
        k = min(step, n_resamples - start)
        out[start:start + k] = a[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return out


def bootstrap_mean_difference(values1, values2, alpha: float = 0.05, n_resamples: int = 2000,
                              seed: int = 0, key: str = "") -> MeanDifference:
    """Percentile bootstrap interval of ``mean(values1) - mean(values2)`` and of their ratio.

    Each group is resampled on its own (the arms of a randomised test are
    fixed in size); the interval is the ``alpha/2`` and ``1 - alpha/2``
    percentiles of the resampled differences. The p-value is Welch's.

    Parameters
    ----------
    values1, values2 : array_like
        The values of the treatment and of the control (NaN dropped).
    alpha : float, default=0.05
    n_resamples : int, default=2000
    seed : int, default=0
        Seed; with ``key`` (such as the segment's name) it fixes the resamples.
    key : str, default=""
    """
    a, b = _values(values1), _values(values2)
    welch = welch_test(a, b, alpha)
    if len(a) < 2 or len(b) < 2:
        return MeanDifference(welch.difference, math.nan, math.nan, welch.p_value, welch.ratio,
                              math.nan, math.nan, "bootstrap")
    rng = seeded_rng(seed, key)
    ma, mb = resampled_means(a, n_resamples, rng), resampled_means(b, n_resamples, rng)
    q = [alpha / 2, 1 - alpha / 2]
    low, high = np.quantile(ma - mb, q)
    # A resample without any control revenue has an infinite ratio (0/0 is dropped); the
    # inverted-CDF percentile never interpolates towards it, so a bound is inf only when
    # more than alpha/2 of the resamples are.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(mb > 0, ma / mb, np.where(ma > 0, np.inf, np.nan))
    ratios = ratios[~np.isnan(ratios)]
    if welch.ratio == welch.ratio and len(ratios):
        rlow, rhigh = np.quantile(ratios, q, method="inverted_cdf")
    else:
        rlow = rhigh = math.nan
    return MeanDifference(welch.difference, float(low), float(high), welch.p_value, welch.ratio,
                          float(rlow), float(rhigh), "bootstrap")


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate).

    Sorted ascending, the ``i``-th of ``m`` p-values (``i`` from 1) becomes
    ``max over j <= i of min(1, (m - j + 1) p_(j))``. NaN p-values are left out
    of the family and stay NaN.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype="float64").ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


# -- sample size and power --------------------------------------------------------------

def _check_design(baseline: float, lift: float, alpha: float, power: float | None = None) -> None:
    if not 0 < baseline < 1:
        raise ValueError(f"baseline={baseline} should be a rate between 0 and 1")
    if not 0 < baseline + lift < 1 or lift == 0:
        raise ValueError(f"lift={lift} should be non-zero and keep baseline + lift={baseline + lift} "
                         "between 0 and 1")
    _z(alpha)
    if power is not None and not 0 < power < 1:
        raise ValueError(f"power={power} should be between 0 and 1")


def _ratio_from_share(control_share: float) -> float:
    if not 0 < control_share < 1:
        raise ValueError(f"control_share={control_share} should be between 0 and 1")
    return (1 - control_share) / control_share


@dataclass(frozen=True)
class SampleSize:
    """Customers needed per arm to detect a lift.

    Attributes
    ----------
    n_treatment, n_control, total : int
        Rounded up.
    baseline, lift, alpha, power, control_share : float
        The design.
    formula : str
    """

    n_treatment: int
    n_control: int
    total: int
    baseline: float
    lift: float
    alpha: float
    power: float
    control_share: float
    formula: str = "normal approximation, pooled variance under H0, two-sided (Fleiss, Tytun and Ury 1980, no CC)"


def sample_size_two_proportions(baseline: float, lift: float, alpha: float = 0.05, power: float = 0.8,
                                control_share: float = 0.5) -> SampleSize:
    """Customers per arm to detect an absolute ``lift`` over a ``baseline`` conversion rate.

    Parameters
    ----------
    baseline : float
        Conversion rate of the control, ``p_c``.
    lift : float
        Absolute lift to detect, ``p_t - p_c`` (percentage points as a fraction).
    alpha : float, default=0.05
        Two-sided significance level.
    power : float, default=0.8
    control_share : float, default=0.5
        Share of the customers in the control; 0.1 is a 9:1 treatment:control
        allocation (``k = n_t / n_c = 9``).

    Returns
    -------
    SampleSize

    Notes
    -----
    ``n_c = (z_a sqrt(pbar qbar (1 + 1/k)) + z_b sqrt(p_c q_c + p_t q_t / k))² / lift²``
    and ``n_t = k n_c``, with ``pbar = (p_c + k p_t) / (1 + k)``, ``z_a`` the
    ``1 - alpha/2`` and ``z_b`` the ``power`` normal quantiles.

    Examples
    --------
    >>> s = sample_size_two_proportions(0.10, 0.02)
    >>> s.n_treatment, s.n_control
    (3841, 3841)
    """
    _check_design(baseline, lift, alpha, power)
    k = _ratio_from_share(control_share)
    pc, pt = baseline, baseline + lift
    pbar = (pc + k * pt) / (1 + k)
    za, zb = _z(alpha), float(stats.norm.ppf(power))
    root = za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k)) + zb * math.sqrt(pc * (1 - pc) + pt * (1 - pt) / k)
    n_c = root * root / (lift * lift)
    n_t = k * n_c
    # Round up, after dropping floating noise such as 3841.0000000001.
    nc, nt = math.ceil(round(n_c, 6)), math.ceil(round(n_t, 6))
    return SampleSize(nt, nc, nt + nc, baseline, lift, alpha, power, control_share)


def power_two_proportions(baseline: float, lift: float, n_treatment: float, n_control: float,
                          alpha: float = 0.05) -> float:
    """Power of the two-sided pooled z-test to detect ``lift`` with the given group sizes.

    ``Phi((|lift| - z_a sqrt(pbar qbar (1/n_t + 1/n_c))) / sqrt(p_t q_t / n_t + p_c q_c / n_c))``,
    the formula :func:`sample_size_two_proportions` inverts (the far tail is ignored).
    """
    _check_design(baseline, lift, alpha)
    if n_treatment <= 0 or n_control <= 0:
        raise ValueError(f"group sizes should be positive, got {n_treatment} and {n_control}")
    pc, pt = baseline, baseline + lift
    pbar = (n_control * pc + n_treatment * pt) / (n_control + n_treatment)
    s0 = math.sqrt(pbar * (1 - pbar) * (1 / n_treatment + 1 / n_control))
    s1 = math.sqrt(pt * (1 - pt) / n_treatment + pc * (1 - pc) / n_control)
    return float(stats.norm.cdf((abs(lift) - _z(alpha) * s0) / s1))


def minimum_detectable_lift(baseline: float, n_treatment: float, n_control: float, alpha: float = 0.05,
                            power: float = 0.8) -> float:
    """The smallest positive absolute lift detected with the given power and group sizes.

    Solves :func:`power_two_proportions` ``= power`` for the lift (Brent's
    method); NaN when even a lift to a rate of 1 is not detectable.

    Examples
    --------
    >>> round(minimum_detectable_lift(0.10, 3841, 3841), 4)
    0.02
    """
    if not 0 < baseline < 1:
        raise ValueError(f"baseline={baseline} should be a rate between 0 and 1")
    if not 0 < power < 1:
        raise ValueError(f"power={power} should be between 0 and 1")
    hi = (1 - baseline) * (1 - 1e-9)
    lo = 1e-9

    def gap(lift: float) -> float:
        return power_two_proportions(baseline, lift, n_treatment, n_control, alpha) - power

    if gap(hi) < 0:
        return math.nan
    if gap(lo) >= 0:
        return lo
    return float(optimize.brentq(gap, lo, hi, xtol=1e-12))
