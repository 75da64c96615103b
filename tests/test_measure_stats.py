"""The statistics of measurement against published and hand-computed values.

References:
- Newcombe RG (1998a). Two-sided confidence intervals for the single proportion:
  comparison of seven methods. Stat Med 17:857-872. Table I, method 3 (Wilson).
- Newcombe RG (1998b). Interval estimation for the difference between independent
  proportions: comparison of eleven methods. Stat Med 17:873-890. Table II, method 10.
- Fleiss JL, Tytun A, Ury HK (1980). A simple approximation for calculating sample
  sizes for comparing independent proportions. Biometrics 36:343-346.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from custseg.measure import stats


@pytest.mark.parametrize("x, n, low, high", [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_against_newcombe_1998a(x, n, low, high):
    lo, hi = stats.wilson_interval(x, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


@pytest.mark.parametrize("x1, n1, x2, n2, low, high", [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (0, 10, 0, 10, -0.2775, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
    (10, 10, 0, 10, 0.6075, 1.0000),
])
def test_newcombe_against_newcombe_1998b_table_ii(x1, n1, x2, n2, low, high):
    d, lo, hi = stats.newcombe_interval(x1, n1, x2, n2)
    assert d == pytest.approx(x1 / n1 - x2 / n2)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_intervals_are_vectorised_and_empty_groups_are_nan():
    d, lo, hi = stats.newcombe_interval([56, 9, 1], [70, 10, 0], [48, 3, 1], [80, 10, 5])
    assert np.round(lo[:2], 4).tolist() == [0.0524, 0.1705]
    assert math.isnan(d[2]) and math.isnan(lo[2]) and math.isnan(hi[2])
    lo, hi = stats.wilson_interval(np.array([0, 5]), np.array([0, 10]))
    assert math.isnan(lo[0]) and lo[1] < 0.5 < hi[1]


def test_two_proportion_ztest_by_hand():
    # pooled p = 104/150; se = sqrt(p (1-p) (1/70 + 1/80)); z = 0.2 / se
    p = 104 / 150
    z_hand = 0.2 / math.sqrt(p * (1 - p) * (1 / 70 + 1 / 80))
    z, pv = stats.two_proportion_ztest(56, 70, 48, 80)
    assert z == pytest.approx(z_hand) and z == pytest.approx(2.650172, abs=1e-6)
    assert pv == pytest.approx(2 * sps.norm.sf(z_hand))
    # equal to the chi-square test without continuity correction
    chi2 = sps.chi2_contingency([[56, 14], [48, 32]], correction=False)
    assert pv == pytest.approx(chi2.pvalue)
    z, pv = stats.two_proportion_ztest(0, 10, 0, 20)
    assert math.isnan(z) and math.isnan(pv)


def test_ratio_interval_katz():
    r, lo, hi = stats.ratio_interval(56, 70, 48, 80)
    se = math.sqrt(1 / 56 - 1 / 70 + 1 / 48 - 1 / 80)
    assert r == pytest.approx(0.8 / 0.6)
    assert (lo, hi) == pytest.approx((r * math.exp(-1.959964 * se), r * math.exp(1.959964 * se)), rel=1e-6)
    assert all(math.isnan(v) for v in stats.ratio_interval(0, 10, 3, 10)[1:])


def test_welch_by_hand_and_against_scipy():
    # a = [0, 10, 20]: mean 10, var 100; b = [0, 0, 5, 15]: mean 5, var 50
    # se² = 100/3 + 50/4 = 45.8333; df = 45.8333² / ((100/3)²/2 + (50/4)²/3) = 3.457143
    d, lo, hi, p, df = stats.welch_interval(10.0, 100.0, 3, 5.0, 50.0, 4)
    assert df == pytest.approx(45.8333333 ** 2 / ((100 / 3) ** 2 / 2 + 12.5 ** 2 / 3))
    assert df == pytest.approx(3.457143, abs=1e-6)
    t = sps.t.ppf(0.975, df)
    assert (lo, hi) == pytest.approx((5 - t * math.sqrt(45.8333333), 5 + t * math.sqrt(45.8333333)))
    ref = sps.ttest_ind([0, 10, 20], [0, 0, 5, 15], equal_var=False)
    assert p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval()
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    r = stats.welch_test([0, 10, 20], [0, 0, 5, 15])
    assert (r.difference, r.low, r.high, r.p_value) == pytest.approx((d, lo, hi, p))
    assert r.ratio == pytest.approx(2.0) and r.method == "welch"
    assert math.isnan(stats.welch_test([1.0], [1.0, 2.0]).low)


def test_bootstrap_is_seeded_and_agrees_with_welch_on_large_samples():
    rng = np.random.default_rng(0)
    a = np.where(rng.random(4000) < 0.1, rng.gamma(2.0, 30.0, 4000), 0.0)
    b = np.where(rng.random(3000) < 0.08, rng.gamma(2.0, 30.0, 3000), 0.0)
    one = stats.bootstrap_mean_difference(a, b, n_resamples=1000, seed=1)
    two = stats.bootstrap_mean_difference(a, b, n_resamples=1000, seed=1)
    other = stats.bootstrap_mean_difference(a, b, n_resamples=1000, seed=2)
    assert one == two and one.low != other.low
    welch = stats.welch_test(a, b)
    assert one.difference == pytest.approx(welch.difference)
    assert one.low == pytest.approx(welch.low, abs=0.25) and one.high == pytest.approx(welch.high, abs=0.25)
    assert one.ratio_low < one.ratio < one.ratio_high


def test_resampled_means_of_few_levels_match_row_resampling():
    # multinomial draws of 0/1 levels: same distribution as resampling rows
    values = np.r_[np.ones(30), np.zeros(270)]
    means = stats.resampled_means(values, 20000, np.random.default_rng(5))
    assert means.mean() == pytest.approx(0.1, abs=0.002)
    assert means.std() == pytest.approx(math.sqrt(0.1 * 0.9 / 300), rel=0.03)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert stats.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.2, float("nan"), 0.6])
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1]) and out[2] == pytest.approx(0.6)
    assert stats.holm([0.9, 0.8]).tolist() == [1.0, 1.0]
    assert stats.holm([]).size == 0


def test_sample_size_equal_arms_pooled_formula():
    # 0.10 vs 0.12, alpha 0.05 two-sided, power 0.8: pbar = 0.11,
    # n = (1.959964 sqrt(2 * 0.11 * 0.89) + 0.841621 sqrt(0.09 + 0.1056))² / 0.02² = 3840.8
    s = stats.sample_size_two_proportions(0.10, 0.02, control_share=0.5)
    assert (s.n_treatment, s.n_control, s.total) == (3841, 3841, 7682)
    assert "pooled" in s.formula


def test_sample_size_nine_to_one():
    # k = 9: pbar = (0.05 + 9 * 0.06) / 10 = 0.059
    # n_c = (z_a sqrt(0.059 * 0.941 * (1 + 1/9)) + z_b sqrt(0.05 * 0.95 + 0.06 * 0.94 / 9))² / 0.01²
    za, zb = sps.norm.ppf(0.975), sps.norm.ppf(0.8)
    n_c = (za * math.sqrt(0.059 * 0.941 * 10 / 9) + zb * math.sqrt(0.0475 + 0.0564 / 9)) ** 2 / 1e-4
    s = stats.sample_size_two_proportions(0.05, 0.01, control_share=0.1)
    assert s.n_control == math.ceil(n_c) == 4651
    assert s.n_treatment == math.ceil(9 * n_c) == 41855


def test_power_and_minimum_detectable_lift_invert_the_sample_size():
    s = stats.sample_size_two_proportions(0.05, 0.01, control_share=0.1)
    assert stats.power_two_proportions(0.05, 0.01, s.n_treatment, s.n_control) == pytest.approx(0.8, abs=2e-4)
    assert stats.minimum_detectable_lift(0.10, 3841, 3841) == pytest.approx(0.02, abs=1e-5)
    assert stats.minimum_detectable_lift(0.05, s.n_treatment, s.n_control) == pytest.approx(0.01, abs=2e-5)
    assert math.isnan(stats.minimum_detectable_lift(0.5, 2, 1))


@pytest.mark.parametrize("kwargs, message", [
    ({"baseline": 0.0, "lift": 0.01}, "baseline=0.0"),
    ({"baseline": 0.95, "lift": 0.06}, "between 0 and 1"),
    ({"baseline": 0.1, "lift": 0.0}, "non-zero"),
    ({"baseline": 0.1, "lift": 0.01, "power": 1.0}, "power=1.0"),
    ({"baseline": 0.1, "lift": 0.01, "control_share": 0.0}, "control_share=0.0"),
    ({"baseline": 0.1, "lift": 0.01, "alpha": 1.5}, "alpha=1.5"),
])
def test_sample_size_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stats.sample_size_two_proportions(**kwargs)
