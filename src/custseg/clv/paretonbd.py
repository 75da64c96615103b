"""Pareto/NBD: the Pareto / negative binomial purchase model.

Schmittlein, Morrison and Colombo (1987); likelihood and expressions from Fader
and Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related
Expressions" (http://brucehardie.com/notes/009/).

While alive, a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)``; the
lifetime is exponential with rate ``mu ~ Gamma(s, beta)``. ``alpha`` and ``beta``
are in the time unit of the data.

The likelihood needs ``A_0`` (equations 19 and 20 of the note), a difference of
two Gauss hypergeometric terms. Each term is computed after Euler's
transformation, as ``F(1, b; r+s+x+1; z)`` with ``b = r + x`` (``alpha >= beta``) or
``b = s + 1`` (``alpha < beta``): bounded where the note's ``2F1`` overflows (large
``x``, ``z`` near 1), so it stays finite in log space. The terms depend on
``(x, t_x)`` and ``(x, T)`` only, so a fit evaluates them once per distinct pair.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln, hyp2f1

from custseg.clv._fit import (
    FitData,
    PurchaseModel,
    as_arrays,
    log1mexp,
    unique_rows,
    wdot,
)


def _log_term(theta, x, tau) -> np.ndarray:
    """Log of ``2F1(r+s+x, c; r+s+x+1; |alpha-beta| / (max+tau)) / (max+tau)**(r+s+x)`` (note, eq. 19/20)."""
    r, alpha, s, beta = theta
    c = r + s + x + 1.0
    if alpha >= beta:
        z = (alpha - beta) / (alpha + tau)
        return -(r + x) * np.log(alpha + tau) - s * np.log(beta + tau) + np.log(hyp2f1(1.0, r + x, c, z))
    z = (beta - alpha) / (beta + tau)
    return -(r + x - 1.0) * np.log(alpha + tau) - (s + 1.0) * np.log(beta + tau) + np.log(hyp2f1(1.0, s + 1.0, c, z))


def _log_terms(theta, x, t_x, T):
    """``log`` of (the likelihood over ``Gamma(r+x)alpha^r beta^s / Gamma(r)``)'s two parts.

    ``first``: alive at ``T``; ``second``: died between ``t_x`` and ``T`` (``s/(r+s+x) * A_0``).
    """
    r, alpha, s, beta = theta
    first = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    lt_tx = _log_term(theta, x, t_x)
    lt_T = _log_term(theta, x, T)
    return first, _second(theta, x, lt_tx, lt_T)


def _second(theta, x, lt_tx, lt_T):
    r, _, s, _ = theta
    # A_0 = term(t_x) - term(T) >= 0; rounding can make it a hair negative when t_x ~ T: then it is 0.
    log_a0 = lt_tx + log1mexp(np.minimum(lt_T - lt_tx, 0.0))
    return np.log(s) - np.log(r + s + x) + log_a0


def _log1mexp_fast(d: np.ndarray) -> np.ndarray:
    """:func:`~custseg.clv._fit.log1mexp` with numpy's vectorised exp/log, exact only where it must be."""
    with np.errstate(divide="ignore"):
        out = np.log(1.0 - np.exp(d))
        near = d > -0.693
        if near.any():
            out[near] = np.log(-np.expm1(d[near]))
    return out


def _g(s, u) -> np.ndarray:
    """``(1 - (1 + u)**-(s - 1)) / (s - 1)``, equal to ``log1p(u)`` at ``s == 1``."""
    if abs(s - 1.0) < 1e-12:
        return np.log1p(u)
    return -np.expm1(-(s - 1.0) * np.log1p(u)) / (s - 1.0)


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD model fitted by maximum likelihood on distinct ``(x, t_x, T)`` tuples.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty on the log-parameters (see :class:`~custseg.clv._fit.ClvModel`).
    max_iter : int, default=500
        Iterations of the quasi-Newton stage.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``s``, ``beta``.
    se_, cov_, log_likelihood_, n_customers_, n_unique_, converged_, n_iter_, meta_
        As for :class:`~custseg.clv.bgnbd.BetaGeoModel`.

    Notes
    -----
    The gradient is by central differences (the likelihood's hypergeometric terms
    have no handy derivatives in ``r`` and ``s``); the terms are evaluated once per
    distinct ``(x, t_x)`` and ``(x, T)`` pair, far fewer than the distinct tuples.
    """

    param_names = ("r", "alpha", "s", "beta")
    model_name = "paretonbd"
    label = "Pareto/NBD"
    _has_gradient = False

    # -- likelihood ----------------------------------------------------------------------------
    def _prepare(self, data: FitData):
        # The hypergeometric terms and the "alive at T" term depend on (x, t_x) or (x, T) only:
        # they are evaluated once per distinct pair and gathered per tuple.
        x, t_x, T, w = data["x"], data["t_x"], data["T"], data.counts
        n = len(x)
        (px, ptau), _, inv = unique_rows(np.concatenate([x, x]), np.concatenate([t_x, T]), return_inverse=True)
        ux, xi = np.unique(x, return_inverse=True)
        i_T = inv[n:]
        return {"w": w, "W": float(w.sum()), "px": px, "ptau": ptau, "i_tx": inv[:n], "i_T": i_T,
                "ux": ux, "xi": xi, "cx": np.bincount(xi, weights=w, minlength=len(ux)),
                "c_pair_T": np.bincount(i_T, weights=w, minlength=len(px))}

    def _start(self, data: FitData) -> np.ndarray:
        w = data.counts
        rate = wdot(w, data["x"]) / max(wdot(w, data["T"]), 1e-12)
        mean_T = wdot(w, data["T"]) / data.n_customers
        return np.log([1.0, 1.0 / max(rate, 1e-12), 1.0, max(mean_T, 1e-12)])

    def _loglik(self, theta, d, grad: bool):
        # log L = log Gamma(r+x)/Gamma(r) + r log alpha + s log beta - q + softplus(v), where
        # q = (r+x) log(alpha+T) + s log(beta+T) ("alive at T") and v = log(s/(r+s+x) A_0) + q.
        r, alpha, s, beta = theta
        px, ptau, i_tx, i_T, w = d["px"], d["ptau"], d["i_tx"], d["i_T"], d["w"]
        ux = d["ux"]
        lt = _log_term(theta, px, ptau)
        q = (r + px) * np.log(alpha + ptau) + s * np.log(beta + ptau)  # meaningful for the (x, T) pairs
        lt_tx = lt[i_tx]
        v = (np.log(s) - np.log(r + s + ux))[d["xi"]] + lt_tx + _log1mexp_fast(np.minimum(lt[i_T] - lt_tx, 0.0)) \
            + q[i_T]
        softplus = np.maximum(v, 0.0) + np.log(1.0 + np.exp(-np.abs(v)))
        total = (wdot(d["cx"], gammaln(r + ux) - gammaln(r)) + d["W"] * (r * np.log(alpha) + s * np.log(beta))
                 - wdot(d["c_pair_T"], q) + wdot(w, softplus))
        return total, None

    # -- predictions ---------------------------------------------------------------------------
    def p_alive(self, x, t_x, T) -> np.ndarray:
        """Probability that a customer with history ``(x, t_x, T)`` is still alive at ``T`` (note, eq. 37)."""
        theta = self._theta()
        x, t_x, T = as_arrays(x, t_x, T)
        with np.errstate(divide="ignore"):
            first, second = _log_terms(theta, x, t_x, T)
        return expit(first - second)

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        """Expected purchases in ``(T, T + t]`` of a customer with history ``(x, t_x, T)`` (note, eq. 41)."""
        r, alpha, s, beta = self._theta()
        t, x, t_x, T = as_arrays(t, x, t_x, T)
        return self.p_alive(x, t_x, T) * (r + x) / (alpha + T) * (beta + T) * _g(s, t / (beta + T))

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected purchases in ``(0, t]`` of a new customer, ``E[X(t)]`` (note, eq. 27)."""
        r, alpha, s, beta = self._theta()
        (t,) = as_arrays(t)
        return r / alpha * beta * _g(s, t / beta)
