"""BG/NBD: the beta-geometric / negative binomial purchase model.

Fader, Hardie and Lee (2005), "'Counting Your Customers' the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.

While alive, a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)``
(``alpha`` in the time unit of the data); after every repeat purchase they drop
out with probability ``p ~ Beta(a, b)``. A customer is summarised by ``x``
(repeat purchases), ``t_x`` (time of the last one since the first purchase) and
``T`` (time from the first purchase to the end of the calibration period).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from custseg.clv._fit import FitData, PurchaseModel, as_arrays, wdot


class BetaGeoModel(PurchaseModel):
    """BG/NBD model fitted by maximum likelihood on distinct ``(x, t_x, T)`` tuples.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty on the log-parameters (see :class:`~custseg.clv._fit.ClvModel`).
    max_iter : int, default=500
        Iterations of the quasi-Newton stage.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``a``, ``b``.
    se_ : dict
        Standard errors (delta method from ``cov_``).
    cov_ : ndarray of shape (4, 4)
        Covariance of the log-parameters, in ``param_names`` order.
    log_likelihood_ : float
        Total log-likelihood at the estimate (eq. 6 of the paper, summed over customers).
    n_customers_, n_unique_ : int
        Customers fitted and their distinct ``(x, t_x, T)`` tuples.
    converged_ : bool
    n_iter_ : int
    meta_ : dict
        Free-form metadata kept by :meth:`to_dict` (empty after ``fit``).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.read_csv("tests/data/cdnow_sample_summary.csv")  # doctest: +SKIP
    >>> m = BetaGeoModel().fit(d["x"], d["t_x"], d["T"])  # doctest: +SKIP
    >>> round(m.params_["r"], 3), round(m.log_likelihood_, 1)  # doctest: +SKIP
    (0.243, -9582.4)
    """

    param_names = ("r", "alpha", "a", "b")
    model_name = "bgnbd"
    label = "BG/NBD"

    # -- likelihood ----------------------------------------------------------------------------
    def _prepare(self, data: FitData):
        # Everything that does not depend on the parameters, grouped so that an evaluation
        # touches each distinct T, t_x and x once and only the repeat buyers' tuples elementwise.
        x, t_x, T, w = data["x"], data["t_x"], data["T"], data.counts
        uT, iT = np.unique(T, return_inverse=True)
        ux, xi = np.unique(x, return_inverse=True)
        rep = x > 0
        utx, itx = np.unique(t_x[rep], return_inverse=True)
        return {
            "W": float(w.sum()), "ux": ux, "cx": np.bincount(xi, weights=w, minlength=len(ux)),
            "uT": uT, "cT": np.bincount(iT, weights=w, minlength=len(uT)),
            "cxT": np.bincount(iT, weights=w * x, minlength=len(uT)),
            "utx": utx, "x_r": x[rep], "w_r": w[rep], "iT_r": iT[rep], "itx_r": itx, "xi_r": xi[rep],
        }

    def _start(self, data: FitData) -> np.ndarray:
        w = data.counts
        rate = wdot(w, data["x"]) / max(wdot(w, data["T"]), 1e-12)  # purchases per unit time
        return np.log([1.0, 1.0 / max(rate, 1e-12), 1.0, 1.0])

    def _loglik(self, theta, d, grad: bool):
        # log L = A1 + A2 + A3 + softplus(v): A3 = -(r+x) log(alpha+T) is the "alive at T" branch and
        # v = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x)) the log-odds of "dropped out after
        # the last purchase" (x > 0 only); exp and log only, which numpy vectorises.
        r, alpha, a, b = theta
        ux, cx, uT, cT, cxT, W = d["ux"], d["cx"], d["uT"], d["cT"], d["cxT"], d["W"]
        x_r, w_r, iT_r, itx_r, xi_r = d["x_r"], d["w_r"], d["iT_r"], d["itx_r"], d["xi_r"]
        lat = np.log(alpha + uT)
        ltx = np.log(alpha + d["utx"])
        b_x1 = b + np.maximum(ux, 1.0) - 1.0  # b + x - 1, used where x > 0
        per_x = gammaln(r + ux) - gammaln(r) + betaln(a, b + ux) - betaln(a, b)
        rx = r + x_r
        dl = lat[iT_r] - ltx[itx_r]
        v = (np.log(a) - np.log(b_x1))[xi_r] + rx * dl
        softplus = np.maximum(v, 0.0) + np.log(1.0 + np.exp(-np.abs(v)))
        total = wdot(cx, per_x) + W * r * np.log(alpha) - wdot(r * cT + cxT, lat) + wdot(w_r, softplus)
        if not grad:
            return total, None
        ws = w_r / (1.0 + np.exp(-v))  # customers times P(dropped out | data)
        dr_x = digamma(r + ux) - digamma(r)
        da_x = digamma(a + b) - digamma(a + b + ux)
        db_x = digamma(b + ux) - digamma(a + b + ux) - digamma(b) + digamma(a + b)
        inv_T = 1.0 / (alpha + uT)
        inv_tx = 1.0 / (alpha + d["utx"])
        g_r = wdot(cx, dr_x) + W * np.log(alpha) - wdot(cT, lat) + wdot(ws, dl)
        g_alpha = W * r / alpha - wdot(r * cT + cxT, inv_T) + wdot(ws, rx * (inv_T[iT_r] - inv_tx[itx_r]))
        g_a = wdot(cx, da_x) + ws.sum() / a
        g_b = wdot(cx, db_x) - wdot(np.bincount(xi_r, weights=ws, minlength=len(ux)), 1.0 / b_x1)
        return total, np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])

    # -- predictions ---------------------------------------------------------------------------
    def p_alive(self, x, t_x, T) -> np.ndarray:
        """Probability that a customer with history ``(x, t_x, T)`` is still alive at ``T``.

        ``1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))**(r + x))`` for ``x > 0``
        and 1 for ``x == 0`` (in BG/NBD nobody drops out before a repeat purchase).
        """
        r, alpha, a, b = self._theta()
        x, t_x, T = as_arrays(x, t_x, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)) + np.log(a) - np.log(
                b + np.maximum(x, 1.0) - 1.0)
        return np.where(x > 0, expit(-log_odds), 1.0)

    def _one_minus_hyp(self, t, x, T) -> np.ndarray:
        """``1 - ((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))``.

        Computed after Euler's transformation, ``(1-z)**(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)``,
        whose series stays bounded for large ``x`` (the original 2F1 overflows there).
        """
        r, alpha, a, b = self._theta()
        z = t / (alpha + T + t)
        return 1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]`` of a customer with history ``(x, t_x, T)``.

        Equation (10) of the paper. ``t`` is in the time unit of the fit. (At ``a == 1``
        exactly the formula is 0/0; the model is continuous there but this is not special-cased.)
        """
        _, _, a, b = self._theta()
        t, x, t_x, T = as_arrays(t, x, t_x, T)
        return (a + b + x - 1.0) / (a - 1.0) * self._one_minus_hyp(t, x, T) * self.p_alive(x, t_x, T)

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a new customer, ``E[X(t)]`` (equation 9)."""
        _, _, a, b = self._theta()
        (t,) = as_arrays(t)
        zero = np.zeros_like(t)
        return (a + b - 1.0) / (a - 1.0) * self._one_minus_hyp(t, zero, zero)
