"""Gamma-Gamma: the spend model of Fader, Hardie and Lee (2005), "RFM and CLV".

Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer
Base Analysis", Journal of Marketing Research 42(4), 415-430; the likelihood as
in Fader and Hardie's note "The Gamma-Gamma Model of Monetary Value" (2013).

The value of each repeat purchase of a customer is ``Gamma(p, nu)``, and
``nu ~ Gamma(q, gamma)`` across customers, independent of the purchase process.
A customer is summarised by ``x`` (repeat purchases) and ``monetary_value``
(their mean value, ``zbar``); only repeat buyers (``x > 0``) carry information.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln

from custseg.clv._fit import (
    ClvFitError,
    ClvModel,
    FitData,
    as_arrays,
    check_integer_counts,
    gather_columns,
    warn_small,
    wdot,
)


class GammaGammaModel(ClvModel):
    """Gamma-Gamma spend model fitted by maximum likelihood on distinct ``(x, monetary_value)`` pairs.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty on the log-parameters (see :class:`~custseg.clv._fit.ClvModel`).
    max_iter : int, default=500
        Iterations of the quasi-Newton stage.

    Attributes
    ----------
    params_ : dict
        ``p``, ``q``, ``gamma`` (``gamma`` in the currency of ``monetary_value``).
    n_customers_ : int
        Repeat buyers (``x > 0``) the model was fitted on; other customers are ignored.
    se_, cov_, log_likelihood_, n_unique_, converged_, n_iter_, meta_
        As for :class:`~custseg.clv.bgnbd.BetaGeoModel`.

    Examples
    --------
    >>> m = GammaGammaModel().fit([1, 3, 2, 0], [20.0, 35.5, 12.0, 0.0])  # doctest: +SKIP
    """

    param_names = ("p", "q", "gamma")
    model_name = "gammagamma"
    _convergence_hint = "check that monetary_value is each customer's mean spend per repeat purchase"

    def fit(self, frequency, monetary_value, weights=None) -> GammaGammaModel:
        """Fit on the repeat buyers.

        Parameters
        ----------
        frequency : array_like of shape (n,)
            Repeat purchases ``x`` (whole numbers); rows with ``x == 0`` are ignored.
        monetary_value : array_like of shape (n,)
            Mean value of the repeat purchases; must be positive where ``x > 0`` (any
            value, even NaN, where ``x == 0``).
        weights : array_like of shape (n,), optional
            Customers per row, when the rows already are distinct pairs.

        Returns
        -------
        self

        Raises
        ------
        ClvFitError
            Invalid ``frequency``, non-positive or missing spend of a repeat buyer, no
            repeat buyer, or no convergence.
        """
        x = np.asarray(_column(frequency), dtype=np.float64)
        m = np.asarray(_column(monetary_value), dtype=np.float64)
        if x.ndim == 1 and m.ndim == 1 and len(x) == len(m):
            m = np.where(x == 0, 0.0, m)  # spend of non-repeat buyers is not used: do not check it
        data = gather_columns((("frequency", x), ("monetary_value", m)), weights)
        check_integer_counts(data, "frequency")
        data = data.subset(data["frequency"] > 0)
        if not len(data.counts):
            raise ClvFitError("no repeat buyer (frequency > 0): the Gamma-Gamma model learns spend from the "
                              "repeat purchases; need customers with frequency >= 1")
        mv = data["monetary_value"]
        data.reject(mv <= 0, lambda k, j: (
            f"monetary_value must be positive for repeat buyers; {k} repeat buyers have zero or negative spend, "
            f"e.g. row {data.example_row(j)}: monetary_value={float(mv[j])!r}; drop customers whose returns cancel their "
            "purchases, or net out refunds per order before averaging"))
        warn_small(data.n_customers, "repeat buyers")
        return self._fit_data(data)

    # -- likelihood ----------------------------------------------------------------------------
    def _prepare(self, data: FitData):
        x, m = data["frequency"], data["monetary_value"]
        ux, xi = np.unique(x, return_inverse=True)
        w = data.counts
        lm, lx = np.log(m), np.log(x)
        return {"x": x, "m": m, "w": w, "ux": ux, "cx": np.bincount(xi, weights=w, minlength=len(ux)),
                "c_lm": wdot(w, lm), "c_xl": wdot(w, x * (lm + lx)), "W": float(w.sum())}

    def _start(self, data: FitData) -> np.ndarray:
        mean_m = wdot(data.counts, data["monetary_value"]) / data.n_customers
        return np.log([1.0, 2.0, mean_m])  # population mean spend p * gamma / (q - 1) = the observed mean

    def _reference_log_params(self, data: FitData) -> np.ndarray:
        mean_m = wdot(data.counts, data["monetary_value"]) / data.n_customers
        return np.array([0.0, 0.0, math.log(mean_m)])

    def _loglik(self, theta, d, grad: bool):
        p, q, g = theta
        x, m, w, ux, cx = d["x"], d["m"], d["w"], d["ux"], d["cx"]
        pux = p * ux
        lgm = np.log(g + x * m)
        per_x = gammaln(pux + q) - gammaln(pux)
        total = (wdot(cx, per_x) - d["W"] * (gammaln(q) - q * np.log(g)) + p * d["c_xl"] - d["c_lm"]
                 - wdot(w, (p * x + q) * lgm))
        if not grad:
            return total, None
        psi = digamma(pux + q)
        g_p = wdot(cx, ux * (psi - digamma(pux))) + d["c_xl"] - wdot(w, x * lgm)
        g_q = wdot(cx, psi) - d["W"] * (digamma(q) - np.log(g)) - wdot(w, lgm)
        g_g = d["W"] * q / g - wdot(w, (p * x + q) / (g + x * m))
        return total, np.array([g_p * p, g_q * q, g_g * g])

    # -- predictions ---------------------------------------------------------------------------
    def conditional_expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """Expected value of a customer's future purchases given ``x`` and their mean spend so far.

        ``(p * gamma + p * x * zbar) / (p * x + q - 1)``: a weighted mean of the
        population mean ``p * gamma / (q - 1)`` and the customer's own mean. For
        ``x == 0`` it is the population mean (``monetary_value`` is ignored there).

        Raises
        ------
        ValueError
            When the mean is infinite: ``q <= 1`` and some ``x == 0`` (more generally
            ``p * x + q <= 1``).
        """
        p, q, g = self._theta()
        x, m = as_arrays(frequency, monetary_value)
        den = p * x + q - 1.0
        if np.any(den <= 0):
            raise ValueError(
                f"the expected spend is infinite: q={q:.4g} (p={p:.4g}) makes p * x + q - 1 <= 0 for "
                f"{int(np.sum(den <= 0))} customers (with x == 0 the population mean p*gamma/(q-1) needs q > 1); "
                "the spend distribution is too heavy-tailed: fit with a penalizer or trim extreme spend")
        return np.where(x > 0, (p * g + p * x * np.where(x > 0, m, 0.0)) / den, p * g / den)


def _column(values):
    return values.to_numpy(dtype=np.float64, na_value=np.nan) if hasattr(values, "to_numpy") else values
