"""BG/NBD, Pareto/NBD and Gamma-Gamma: published CDNOW estimates, lifetimes' predictions, the fit machinery."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA
from scipy import integrate, special

from custseg.clv._fit import (
    ClvFitError,
    ClvModel,
    NotFittedError,
    SmallSampleWarning,
    unique_rows,
)
from custseg.clv.bgnbd import BetaGeoModel
from custseg.clv.gammagamma import GammaGammaModel
from custseg.clv.paretonbd import ParetoNBDModel

# Published estimates on the CDNOW sample, weeks 1-39 (Fader, Hardie & Lee 2005a; Fader & Hardie's
# Pareto/NBD note; Fader, Hardie & Lee 2005b for Gamma-Gamma on the 946 repeat buyers).
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
MODELS = {"bgnbd": (BetaGeoModel, BGNBD), "paretonbd": (ParetoNBDModel, PARETO)}


def three_figures(v: float) -> float:
    return float(f"{v:.3g}")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(TEST_DATA / "cdnow_sample_summary.csv")


@pytest.fixture(scope="module")
def fitted(cdnow) -> dict[str, ClvModel]:
    repeat = cdnow[cdnow.x > 0]
    return {
        "bgnbd": BetaGeoModel().fit(cdnow.x, cdnow.t_x, cdnow["T"]),
        "paretonbd": ParetoNBDModel().fit(cdnow.x, cdnow.t_x, cdnow["T"]),
        "gammagamma": GammaGammaModel().fit(repeat.x, repeat.zbar),
    }


def xtT(df: pd.DataFrame):
    return df.x.to_numpy(float), df.t_x.to_numpy(float), df["T"].to_numpy(float)


def simulate_bgnbd(T, r, alpha, a, b, seed):
    """BG/NBD purchase histories: Poisson purchases at rate lambda, dropout with prob. p after each repeat one."""
    rng = np.random.default_rng(seed)
    T = np.asarray(T, dtype=float)
    n = len(T)
    lam, p = rng.gamma(r, 1.0 / alpha, n), rng.beta(a, b, n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        active = active[now[active] <= T[active]]
        x[active] += 1
        t_x[active] = now[active]
        active = active[rng.random(active.size) >= p[active]]
    return x, t_x, T


# -- published numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bgnbd", "paretonbd"])
def test_purchase_models_reproduce_the_published_cdnow_estimates(fitted, name):
    m = fitted[name]
    published = MODELS[name][1]
    assert {k: three_figures(v) for k, v in m.params_.items()} == {k: three_figures(v) for k, v in published.items()}
    assert m.log_likelihood_ == pytest.approx({"bgnbd": -9582.4, "paretonbd": -9595.0}[name], abs=0.05)
    assert m.n_customers_ == 2357 and m.converged_ and m.n_unique_ < 2357


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(fitted):
    m = fitted["gammagamma"]
    assert m.n_customers_ == 946
    assert {k: three_figures(v) for k, v in m.params_.items()} == {k: three_figures(v) for k, v in GAMMA.items()}


def test_unrounded_cdnow_times_also_give_the_published_estimates():
    # The summary CSV rounds t_x and T to 2 decimals; the exact day counts / 7 from the raw
    # transactions give beta = 11.6687 (published 11.669) where the CSV gives 11.6679.
    raw = pd.read_csv(TEST_DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "id", "date", "quantity", "amount"])
    raw["date"] = pd.to_datetime(raw["date"].astype(str))
    end = pd.Timestamp("1997-09-30")
    days = raw[raw["date"] <= end].groupby("id")["date"]
    first, last = days.min(), days.max()
    x, t_x, T = days.nunique() - 1, (last - first).dt.days / 7, (end - first).dt.days / 7
    pareto = ParetoNBDModel().fit(x, t_x, T)
    assert pareto.params_["beta"] == pytest.approx(11.669, abs=5e-4)
    assert {k: three_figures(v) for k, v in pareto.params_.items()} == {k: three_figures(v) for k, v in PARETO.items()}
    bg = BetaGeoModel().fit(x, t_x, T)
    assert {k: three_figures(v) for k, v in bg.params_.items()} == {k: three_figures(v) for k, v in BGNBD.items()}


def test_standard_errors(fitted):
    bg = fitted["bgnbd"]
    assert 0.01 < bg.se_["r"] < 0.03
    for m in fitted.values():
        theta = np.array([m.params_[k] for k in m.param_names])
        assert np.all(np.isfinite(m.cov_)) and np.allclose(m.cov_, m.cov_.T)
        np.testing.assert_allclose([m.se_[k] for k in m.param_names], theta * np.sqrt(np.diag(m.cov_)), rtol=1e-12)
        assert all(0 < m.se_[k] < m.params_[k] for k in m.param_names)


def test_standard_errors_agree_with_lifetimes(fitted, cdnow):
    lifetimes = pytest.importorskip("lifetimes")
    lt = lifetimes.BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow["T"])
    bg = fitted["bgnbd"]
    for k in bg.param_names:
        assert bg.se_[k] == pytest.approx(lt.standard_errors_[k], rel=2e-3)
    repeat = cdnow[cdnow.x > 0]
    lg = lifetimes.GammaGammaFitter().fit(repeat.x, repeat.zbar)
    gg = fitted["gammagamma"]
    for k, lk in zip(gg.param_names, ("p", "q", "v")):
        assert gg.se_[k] == pytest.approx(lg.standard_errors_[lk], rel=2e-3)


# -- predictions against lifetimes 0.11.3 ------------------------------------------------------------
@pytest.fixture(scope="module")
def lifetimes_pair():
    """The same published parameters in a custseg model and a lifetimes fitter, per model."""
    lifetimes = pytest.importorskip("lifetimes")

    def pair(name):
        if name == "gammagamma":
            ours = GammaGammaModel.from_dict({"model": "gammagamma", "params": GAMMA})
            theirs = lifetimes.GammaGammaFitter()
            theirs.params_ = pd.Series({"p": GAMMA["p"], "q": GAMMA["q"], "v": GAMMA["gamma"]})
            return ours, theirs
        cls, params = MODELS[name]
        theirs = {"bgnbd": lifetimes.BetaGeoFitter, "paretonbd": lifetimes.ParetoNBDFitter}[name]()
        theirs.params_ = pd.Series(params)
        return cls.from_dict({"model": name, "params": params}), theirs

    return pair


@pytest.mark.parametrize("name", ["bgnbd", "paretonbd"])
def test_purchase_predictions_equal_lifetimes(lifetimes_pair, cdnow, name):
    ours, theirs = lifetimes_pair(name)
    x, t_x, T = xtT(cdnow)
    np.testing.assert_allclose(ours.p_alive(x, t_x, T), theirs.conditional_probability_alive(x, t_x, T),
                               rtol=1e-6)
    for t in (1.0, 39.0, 104.0):
        np.testing.assert_allclose(
            ours.expected_purchases(t, x, t_x, T),
            theirs.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T), rtol=1e-6)
    t = np.array([0.5, 1.0, 10.0, 39.0, 78.0, 520.0])
    np.testing.assert_allclose(ours.expected_purchases_new(t), theirs.expected_number_of_purchases_up_to_time(t),
                               rtol=1e-6)


def test_log_likelihoods_equal_lifetimes(lifetimes_pair, fitted, cdnow):
    lifetimes = pytest.importorskip("lifetimes")
    x, t_x, T = xtT(cdnow)
    for name, (_, params) in MODELS.items():
        m = fitted[name]._with_params(list(params.values()))
        ours = m._loglik(np.array(list(params.values())), m._prepare(_data(x, t_x, T)), False)[0]
        if name == "bgnbd":
            theirs = -lifetimes.BetaGeoFitter._negative_log_likelihood(
                np.log(list(params.values())), x, t_x, T, np.ones_like(x), 0.0) * len(x)
        else:
            theirs = lifetimes.ParetoNBDFitter._conditional_log_likelihood(list(params.values()), x, t_x, T).sum()
        assert ours == pytest.approx(theirs, rel=1e-10)


def _data(x, t_x, T):
    from custseg.clv._fit import gather_columns
    return gather_columns((("x", x), ("t_x", t_x), ("T", T)))


def test_gamma_gamma_spend_equals_lifetimes(lifetimes_pair, cdnow):
    ours, theirs = lifetimes_pair("gammagamma")
    x, z = cdnow.x.to_numpy(float), cdnow.zbar.to_numpy(float)
    np.testing.assert_allclose(ours.conditional_expected_spend(x, z), theirs.conditional_expected_average_profit(x, z),
                               rtol=1e-6)
    p, q, g = GAMMA.values()
    assert ours.conditional_expected_spend(0, 123.0) == pytest.approx(p * g / (q - 1))


# -- numerical stability beyond CDNOW --------------------------------------------------------------
def test_bgnbd_expected_purchases_match_direct_integration_for_large_x_and_T():
    # E[Y(t)] = P(alive) * E[(1 - exp(-lambda p t)) / p | alive], lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x)
    m = BetaGeoModel.from_dict({"model": "bgnbd", "params": BGNBD})
    r, alpha, a, b = BGNBD.values()
    for x, t_x, T, t in [(0, 0, 500, 52), (3, 20, 39, 39), (80, 400, 520, 52), (250, 980, 1000, 365), (40, 30, 3000, 10)]:
        def integrand(p, x=x, t=t, T=T):  # times the Beta(a, b + x) kernel p**(a-1) (1-p)**(b+x-1) (quad's weight)
            if p == 0:
                return (r + x) * t / (alpha + T) / special.beta(a, b + x)
            return -np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p / special.beta(a, b + x)
        ref = integrate.quad(integrand, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-12)[0]
        ref *= m.p_alive(x, t_x, T)
        assert m.expected_purchases(t, x, t_x, T) == pytest.approx(ref, rel=1e-7)


@pytest.mark.parametrize("params", [PARETO, {"r": 0.8, "alpha": 2.0, "s": 1.5, "beta": 40.0},
                                    {"r": 2.0, "alpha": 60.0, "s": 0.3, "beta": 0.5}])
def test_pareto_p_alive_matches_direct_integration(params):
    # odds(dead) = s * int_{t_x}^T ((alpha+T)/(alpha+u))^(r+x) ((beta+T)/(beta+u))^s / (beta+u) du
    m = ParetoNBDModel.from_dict({"model": "paretonbd", "params": params})
    r, alpha, s, beta = params.values()
    for x, t_x, T in [(0, 0, 39), (2, 30, 39), (30, 100, 150), (150, 5, 800), (1, 0.5, 900)]:
        def f(u, x=x, t_x=t_x):
            return np.exp((r + x) * np.log((alpha + t_x) / (alpha + u)) + s * np.log((beta + t_x) / (beta + u))) / (beta + u)
        log_odds = (np.log(s) + (r + x) * np.log((alpha + T) / (alpha + t_x)) + s * np.log((beta + T) / (beta + t_x))
                    + np.log(integrate.quad(f, t_x, T, epsabs=0, epsrel=1e-12, limit=200)[0]))
        assert m.p_alive(x, t_x, T) == pytest.approx(special.expit(-log_odds), rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("name", ["bgnbd", "paretonbd"])
def test_p_alive_is_a_probability_and_falls_with_time_since_last_purchase(fitted, name):
    m = fitted[name]
    T = np.linspace(10, 2000, 200)
    for x, t_x in [(1, 5.0), (5, 9.0), (60, 10.0)]:
        p = m.p_alive(x, t_x, T)
        assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) < 0)
    assert np.all(m.p_alive(0, 0, T) <= 1)
    e = m.expected_purchases(np.array([1.0, 10, 100]), 3, 20, 39)
    assert np.all(np.diff(e) > 0) and np.all(np.isfinite(e))


def test_bgnbd_nobody_without_repeat_purchase_has_dropped_out(fitted):
    assert np.all(fitted["bgnbd"].p_alive(np.zeros(3), np.zeros(3), [1.0, 39.0, 1e4]) == 1.0)


@pytest.mark.parametrize("name", ["bgnbd", "paretonbd"])
def test_expected_time_to_next_is_the_posterior_mean_gap(fitted, name):
    m = fitted[name]
    r, alpha = m.params_["r"], m.params_["alpha"]
    got = m.expected_time_to_next([0, 1, 4], [0, 10, 30], [39, 39, 39])
    assert got[0] == np.inf  # r < 1: E[1/lambda] is infinite for a customer without repeat purchases
    np.testing.assert_allclose(got[1:], [(alpha + 39) / r, (alpha + 39) / (r + 3)])


# -- compression and determinism ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bgnbd", "paretonbd"])
def test_weights_give_the_fit_of_the_repeated_rows(cdnow, fitted, name):
    x, t_x, T = xtT(cdnow)
    (ux, utx, uT), counts = unique_rows(x, t_x, T)
    cls = MODELS[name][0]
    m = cls().fit(ux, utx, uT, weights=counts)
    ref = fitted[name]
    for k in ref.param_names:
        assert m.params_[k] == pytest.approx(ref.params_[k], rel=1e-7)
        assert m.se_[k] == pytest.approx(ref.se_[k], rel=1e-4)
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-12)
    assert (m.n_customers_, m.n_unique_) == (2357, len(counts))
    order = np.random.default_rng(3).permutation(len(x))  # row order does not matter, to the last bit
    shuffled = cls().fit(x[order], t_x[order], T[order])
    assert shuffled.params_ == ref.params_


def test_gamma_gamma_weights_and_ignored_non_buyers(cdnow, fitted):
    ref = fitted["gammagamma"]
    x, z = cdnow.x.to_numpy(float), cdnow.zbar.to_numpy(float)
    z_nan = np.where(x == 0, np.nan, z)  # the spend of non-repeat buyers is never looked at
    assert GammaGammaModel().fit(x, z_nan).params_ == pytest.approx(ref.params_, rel=1e-9)
    (ux, uz), counts = unique_rows(x, z)
    m = GammaGammaModel().fit(ux, uz, weights=counts)
    assert m.params_ == pytest.approx(ref.params_, rel=1e-7) and m.n_customers_ == 946


def test_unique_rows_is_exact_on_every_path():
    rng = np.random.default_rng(0)
    n = 3000
    cases = {
        "grid": [rng.integers(0, 5, n) * 1.0, rng.integers(0, 40, n) / 7, np.round(rng.uniform(0, 3, n), 2)],
        "hashed key": [rng.integers(0, 3, n) * 1.0, rng.normal(size=n).round(1), rng.uniform(size=n)],
        "compacted key": [rng.integers(0, 2000, n) / 3.0 for _ in range(6)],
    }
    for cols in cases.values():
        uniq, counts, inverse = unique_rows(*cols, return_inverse=True)
        ref, ref_counts = np.unique(np.column_stack(cols), axis=0, return_counts=True)
        np.testing.assert_array_equal(np.column_stack(uniq), ref)
        np.testing.assert_array_equal(counts, ref_counts)
        for u, c in zip(uniq, cols):
            np.testing.assert_array_equal(u[inverse], c)


def test_analytic_gradients_equal_finite_differences(cdnow):
    from custseg.clv._fit import gather_columns
    x, t_x, T = xtT(cdnow)
    cases = [(BetaGeoModel(), gather_columns((("x", x), ("t_x", t_x), ("T", T))), [0.3, 5.0, 1.2, 3.0]),
             (GammaGammaModel(), gather_columns((("frequency", x[x > 0]), ("monetary_value", cdnow.zbar[x > 0]))),
              [4.0, 2.5, 20.0])]
    for m, data, theta in cases:
        prep = m._prepare(data)
        u = np.log(theta)
        _, g = m._loglik(np.exp(u), prep, True)
        h = 1e-6
        fd = [(m._loglik(np.exp(u + h * e), prep, False)[0] - m._loglik(np.exp(u - h * e), prep, False)[0]) / (2 * h)
              for e in np.eye(len(u))]
        np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_simulated_bgnbd_parameters_are_recovered():
    truth = {"r": 0.5, "alpha": 8.0, "a": 0.6, "b": 2.5}
    x, t_x, T = simulate_bgnbd(np.full(20_000, 52.0), *truth.values(), seed=11)
    m = BetaGeoModel().fit(x, t_x, T)
    for k, v in truth.items():
        assert abs(m.params_[k] - v) < 3 * m.se_[k], (k, m.params_[k], m.se_[k])
    assert m.n_customers_ == 20_000


def test_units_do_not_change_the_fit(cdnow):
    x, t_x, T = xtT(cdnow)
    weeks, days = BetaGeoModel().fit(x, t_x, T), BetaGeoModel().fit(x, t_x * 7, T * 7)
    assert days.params_["alpha"] == pytest.approx(7 * weeks.params_["alpha"], rel=1e-7)
    assert days.params_["b"] == pytest.approx(weeks.params_["b"], rel=1e-7)


# -- uncertainty -------------------------------------------------------------------------------------
def test_sample_params_is_seeded_and_centred(fitted):
    m = fitted["bgnbd"]
    d = m.sample_params(4000, seed=1)
    assert d.shape == (4000, 4) and np.all(d > 0)
    np.testing.assert_array_equal(d, m.sample_params(4000, seed=1))
    assert not np.array_equal(d, m.sample_params(4000, seed=2))
    sample_cov = np.cov(np.log(d), rowvar=False)
    np.testing.assert_allclose(np.diag(sample_cov), np.diag(m.cov_), rtol=0.1)
    sd = np.sqrt(np.diag(m.cov_))
    np.testing.assert_allclose(sample_cov / np.outer(sd, sd), m.cov_ / np.outer(sd, sd), atol=0.06)
    np.testing.assert_allclose(np.median(d, axis=0), list(m.params_.values()), rtol=0.02)


@pytest.mark.parametrize("name", ["bgnbd", "paretonbd"])
def test_bootstrap_interval_contains_the_estimate_and_is_seeded(fitted, cdnow, name):
    m = fitted[name]
    x, t_x, T = xtT(cdnow)
    lo, hi = m.interval("p_alive", x, t_x, T, n_draws=100, seed=0)
    p = m.p_alive(x, t_x, T)
    assert lo.shape == x.shape and np.all(lo <= p + 1e-12) and np.all(p <= hi + 1e-12)
    assert np.mean(hi - lo) > 0.01
    lo2, hi2 = m.interval("p_alive", x, t_x, T, n_draws=100, seed=0)
    np.testing.assert_array_equal(lo, lo2)
    np.testing.assert_array_equal(hi, hi2)
    lo3, _ = m.interval("p_alive", x, t_x, T, n_draws=100, seed=1)
    assert not np.array_equal(lo, lo3)
    elo, ehi = m.interval("expected_purchases", 39.0, x, t_x, T, n_draws=50, level=0.8)
    e = m.expected_purchases(39.0, x, t_x, T)
    assert np.all(elo <= e) and np.all(e <= ehi)


def test_interval_evaluates_distinct_rows_only(fitted, monkeypatch):
    m = fitted["bgnbd"]
    seen = []
    real = BetaGeoModel.p_alive

    def spy(self, x, t_x, T):
        seen.append(len(x))
        return real(self, x, t_x, T)

    monkeypatch.setattr(BetaGeoModel, "p_alive", spy)
    x = np.tile([0.0, 1, 2], 10_000)
    lo, hi = m.interval("p_alive", x, x * 3, np.full_like(x, 39.0), n_draws=20)
    assert seen == [3] * 20 and lo.shape == hi.shape == x.shape
    np.testing.assert_array_equal(lo[:3], lo[3:6])
    lo2, _ = m.interval("p_alive", x.reshape(100, 300), (x * 3).reshape(100, 300), 39.0, n_draws=20)
    assert lo2.shape == (100, 300)


def test_gamma_gamma_interval(fitted):
    m = fitted["gammagamma"]
    lo, hi = m.interval("conditional_expected_spend", [0, 1, 5], [0.0, 30.0, 30.0], n_draws=200, seed=4)
    point = m.conditional_expected_spend([0, 1, 5], [0.0, 30.0, 30.0])
    assert np.all(lo < point) and np.all(point < hi)
    assert (hi - lo)[2] < (hi - lo)[1]  # more purchases, less shrinkage, narrower interval


def test_interval_rejects_non_predictions(fitted):
    with pytest.raises(ValueError, match="not a prediction method"):
        fitted["bgnbd"].interval("fit", [1], [1], [2])
    with pytest.raises(ValueError, match="level"):
        fitted["bgnbd"].interval("p_alive", [1], [1], [2], level=1.5)


# -- serialisation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bgnbd", "paretonbd", "gammagamma"])
def test_from_dict_of_to_dict_predicts_identically(fitted, cdnow, name):
    m = fitted[name]
    m.meta_ = {"time_unit": "week", "calibration_end": "1997-09-30"}
    d = json.loads(json.dumps(m.to_dict()))
    assert d["model"] == name and d["n_customers"] == m.n_customers_ and d["meta"]["time_unit"] == "week"
    for again in (type(m).from_dict(d), ClvModel.from_dict(d)):
        assert type(again) is type(m) and again.params_ == m.params_ and again.se_ == m.se_
        np.testing.assert_array_equal(again.cov_, m.cov_)
        assert (again.log_likelihood_, again.n_unique_, again.n_iter_, again.meta_) == (
            m.log_likelihood_, m.n_unique_, m.n_iter_, m.meta_)
        if name == "gammagamma":
            args = (cdnow.x, cdnow.zbar)
            np.testing.assert_array_equal(again.conditional_expected_spend(*args), m.conditional_expected_spend(*args))
        else:
            x, t_x, T = xtT(cdnow)
            np.testing.assert_array_equal(again.p_alive(x, t_x, T), m.p_alive(x, t_x, T))
            np.testing.assert_array_equal(again.expected_purchases(52, x, t_x, T), m.expected_purchases(52, x, t_x, T))
        np.testing.assert_array_equal(again.sample_params(5, 0), m.sample_params(5, 0))
    m.meta_ = {}


def test_from_dict_refuses_another_models_parameters(fitted):
    with pytest.raises(ValueError, match="paretonbd"):
        BetaGeoModel.from_dict(fitted["paretonbd"].to_dict())
    with pytest.raises(ValueError, match="lack"):
        BetaGeoModel.from_dict({"model": "bgnbd", "params": {"r": 1.0}})


def test_unfitted_models_refuse_to_predict():
    for call in (lambda: BetaGeoModel().p_alive(1, 1, 2), lambda: ParetoNBDModel().expected_purchases_new(1),
                 lambda: GammaGammaModel().conditional_expected_spend(1, 2.0), lambda: BetaGeoModel().to_dict(),
                 lambda: BetaGeoModel().sample_params(3)):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


# -- errors with hints -------------------------------------------------------------------------------
PURCHASE_ERRORS = [
    ({"x": [0.0, 0, 0], "t_x": [0, 0, 0], "T": [5, 6, 7]}, "no customer made a repeat purchase"),
    ({"x": [1.0, 2, 1], "t_x": [1, 5, 3], "T": [5, 4, 7]},
     r"T shorter than t_x for 1 customers, e\.g\. row 1: t_x=5\.0 > T=4\.0; T must be measured from the first"),
    ({"x": [1.0, np.nan, 1], "t_x": [1, 1, 1], "T": [5, 5, 5]}, r"x has 1 missing or infinite values, e\.g\. row 1"),
    ({"x": [1.0, 1, 1], "t_x": [1, np.inf, 1], "T": [5, 5, 5]}, "t_x has 1 missing or infinite"),
    ({"x": [1.0, 1.5, 1], "t_x": [1, 1, 1], "T": [5, 5, 5]}, r"whole number.*row 1: x=1\.5"),
    ({"x": [1.0, -1, 1], "t_x": [1, 1, 1], "T": [5, 5, 5]}, "cannot be negative"),
    ({"x": [1.0, 1, 1], "t_x": [1, -1, 1], "T": [5, 5, 5]}, r"t_x is negative for 1 customers, e\.g\. row 1"),
    ({"x": [1.0, 0, 0], "t_x": [1, 0, 2], "T": [5, 5, 5]}, r"t_x must be 0 when x == 0.*row 2: t_x=2\.0"),
    ({"x": [1.0, 1], "t_x": [1, 1, 1], "T": [5, 5, 5]}, "same length"),
    ({"x": [], "t_x": [], "T": []}, "no customers"),
]


@pytest.mark.parametrize("cls", [BetaGeoModel, ParetoNBDModel])
@pytest.mark.parametrize("columns, message", PURCHASE_ERRORS)
def test_purchase_models_reject_bad_data_with_a_hint(cls, columns, message):
    with pytest.raises(ClvFitError, match=message):
        cls().fit(columns["x"], columns["t_x"], columns["T"])


def test_error_rows_point_at_the_callers_rows_after_compression():
    x = np.ones(1000)
    T = np.full(1000, 10.0)
    t_x = np.full(1000, 4.0)
    t_x[[700, 800]] = 12.0
    with pytest.raises(ClvFitError, match=r"for 2 customers, e\.g\. row 700: t_x=12\.0 > T=10\.0"):
        BetaGeoModel().fit(pd.Series(x), pd.Series(t_x), pd.Series(T))
    with pytest.raises(ClvFitError, match=r"e\.g\. row 2: weights=-1\.0"):
        BetaGeoModel().fit([1, 2, 3], [1, 1, 1], [5, 5, 5], weights=[1, 1, -1])


def test_gamma_gamma_rejects_bad_spend_with_a_hint():
    with pytest.raises(ClvFitError, match=r"zero or negative spend, e\.g\. row 2: monetary_value=-5\.0"):
        GammaGammaModel().fit([1, 0, 2], [10.0, -3.0, -5.0])
    with pytest.raises(ClvFitError, match="no repeat buyer"):
        GammaGammaModel().fit([0, 0], [10.0, 12.0])
    with pytest.raises(ClvFitError, match="monetary_value has 1 missing"):
        GammaGammaModel().fit([1, 2], [10.0, np.nan])


def test_non_convergence_says_what_to_try():
    # Everybody bought at the very end: no sign of dropout, the likelihood has no interior maximum.
    x, T = np.tile([1.0, 2, 3], 100), np.full(300, 10.0)
    with pytest.raises(ClvFitError, match=r"did not converge after \d+ iterations.*try penalizer=0\.001"):
        BetaGeoModel().fit(x, T, T)
    m = BetaGeoModel(penalizer=0.01).fit(x, T, T)
    assert m.converged_ and m.penalizer == 0.01
    with pytest.raises(ClvFitError, match="did not converge.*mean spend"):
        GammaGammaModel().fit(np.full(300, 2.0), np.full(300, 10.0))


def test_few_customers_warn(cdnow):
    small = cdnow.iloc[:80]
    with pytest.warns(SmallSampleWarning, match="only 80 customers"):
        BetaGeoModel().fit(small.x, small.t_x, small["T"])
    repeat = cdnow[cdnow.x > 0].iloc[:80]
    with pytest.warns(SmallSampleWarning, match="only 80 repeat buyers"):
        GammaGammaModel().fit(repeat.x, repeat.zbar)


def test_penalizer_shrinks_and_is_validated(cdnow, fitted):
    x, t_x, T = xtT(cdnow)
    m = BetaGeoModel(penalizer=0.1).fit(x, t_x, T)
    ref = fitted["bgnbd"]
    assert m.log_likelihood_ < ref.log_likelihood_
    assert abs(np.log(m.params_["b"])) < abs(np.log(ref.params_["b"]))
    with pytest.raises(ValueError, match="penalizer"):
        BetaGeoModel(penalizer=-1).fit(x, t_x, T)


def test_gamma_gamma_infinite_mean_spend_is_an_error():
    m = GammaGammaModel.from_dict({"model": "gammagamma", "params": {"p": 2.0, "q": 0.8, "gamma": 10.0}})
    assert m.conditional_expected_spend(3, 20.0) == pytest.approx((2 * 10 + 2 * 3 * 20) / (2 * 3 + 0.8 - 1))
    with pytest.raises(ValueError, match="infinite"):
        m.conditional_expected_spend([0, 3], [0.0, 20.0])


def test_summary_table(fitted):
    s = fitted["bgnbd"].summary()
    assert list(s.index) == ["r", "alpha", "a", "b"]
    assert np.all(s["lower"] < s["estimate"]) and np.all(s["estimate"] < s["upper"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repr(fitted["bgnbd"])
