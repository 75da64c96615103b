"""Shared machinery of the CLV models: input checks, compression, maximum likelihood, uncertainty.

Every model here is fitted on the counts of *distinct* input tuples (for the
purchase models ``(x, t_x, T)``, for Gamma-Gamma ``(x, monetary_value)``), so
the cost of an iteration grows with the number of distinct tuples, not with the
number of customers. :func:`unique_rows` finds them by hashing each column and
combining the per-column codes into one integer key: exact (no binning) and
linear in the number of rows.

The maximum-likelihood fit works on the logarithms of the parameters: a
deterministic start (no random restarts), BFGS (analytic gradients where the
model provides them, forward differences otherwise), then Newton steps on a
finite-difference Hessian (five-point gradients for models without analytic
ones) until the Newton decrement is at rounding level: the estimates do not
depend on row order and are reproducible far beyond ``1e-6`` relative. The same
Hessian gives ``cov_``, the covariance of the log-parameters, ``se_`` (delta
method) and the parametric bootstrap of :meth:`ClvModel.sample_params` and
:meth:`ClvModel.interval`.

A fit that does not converge raises :class:`ClvFitError` (with what to try), so
a model returned by ``fit`` always has ``converged_ = True``; the attribute
matters for models restored with :meth:`ClvModel.from_dict`. Fewer than
:data:`MIN_CUSTOMERS` customers only warn (:class:`SmallSampleWarning`).
"""

from __future__ import annotations

import copy
import importlib
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize

#: Fewer customers than this in a fit gives a :class:`SmallSampleWarning`.
MIN_CUSTOMERS = 100
#: A log-parameter beyond +-this at the optimum means the likelihood has no interior maximum.
_LOG_PARAM_LIMIT = 20.0
_GRAD_TOL = 1e-6  # max |gradient| of the mean negative log-likelihood accepted as converged
_NEWTON_STEPS = 12
_MODULES = {"bgnbd": "custseg.clv.bgnbd", "paretonbd": "custseg.clv.paretonbd",
            "gammagamma": "custseg.clv.gammagamma"}
_FORMAT = 1


class ClvFitError(ValueError):
    """The data cannot be fitted; the message says why and what to check."""


class NotFittedError(ValueError, AttributeError):
    """A prediction was asked of a model that has not been fitted (same bases as scikit-learn's)."""


class SmallSampleWarning(UserWarning):
    """Fewer than :data:`MIN_CUSTOMERS` customers: the estimates will be very uncertain."""


# -- columns and compression -----------------------------------------------------------------
def as_column(name: str, values) -> np.ndarray:
    """``values`` (numpy, pandas, list) as a 1-d float64 array; pandas NA becomes NaN."""
    if hasattr(values, "to_numpy"):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ClvFitError(f"{name} must be one-dimensional, one value per customer (got shape {arr.shape})")
    return arr


def unique_rows(*columns: np.ndarray, return_inverse: bool = False):
    """Distinct rows of equal-length 1-d columns, in lexicographic order, exactly.

    Each column is hashed to integer codes (``pandas.factorize``, linear time),
    the codes are combined into one int64 key and the keys counted with
    ``np.bincount`` (small key range) or hashed again.

    Parameters
    ----------
    *columns : ndarray of shape (n,)
        Float columns without NaN (NaN is kept as a value of its own).
    return_inverse : bool, default=False
        Also return, for each row, the index of its distinct row.

    Returns
    -------
    uniques : list of ndarray of shape (m,)
    counts : ndarray of int64, shape (m,)
    inverse : ndarray of intp, shape (n,)
        Only when ``return_inverse``; ``uniques[j][inverse] == columns[j]``.

    Examples
    --------
    >>> (x, t), counts = unique_rows(np.array([1., 0., 1.]), np.array([2., 0., 2.]))
    >>> x.tolist(), t.tolist(), counts.tolist()
    ([0.0, 1.0], [0.0, 2.0], [1, 2])
    """
    n = len(columns[0])
    codes, levels = [], []
    for c in columns:
        k, u = pd.factorize(c, sort=True, use_na_sentinel=False)
        codes.append(k)
        levels.append(np.asarray(u, dtype=np.float64))
    key = codes[0].astype(np.int64, copy=True)
    size = len(levels[0])
    decodable = True
    for k, lv in zip(codes[1:], levels[1:]):
        if size * len(lv) >= 2**62:  # compact the key first; then rows are found by representative
            key, u = pd.factorize(key, sort=True)
            key, size, decodable = key.astype(np.int64), len(u), False
        key *= len(lv)
        key += k
        size *= len(lv)
    inverse = None
    if size <= max(1 << 24, n):
        counts_all = np.bincount(key, minlength=size)
        keys = np.flatnonzero(counts_all)
        counts = counts_all[keys]
        if return_inverse or not decodable:
            pos = np.zeros(size, dtype=np.intp)
            pos[keys] = np.arange(len(keys))
            inverse = pos[key]
    else:
        inverse, keys = pd.factorize(key, sort=True)
        counts = np.bincount(inverse, minlength=len(keys))
    if decodable:
        uniques = []
        rest = np.asarray(keys, dtype=np.int64)
        for lv in reversed(levels):
            rest, j = np.divmod(rest, len(lv))
            uniques.append(lv[j])
        uniques.reverse()
    else:
        rep = np.empty(len(counts), dtype=np.intp)
        rep[inverse] = np.arange(n)
        uniques = [c[rep] for c in columns]
    counts = counts.astype(np.int64)
    return (uniques, counts, inverse) if return_inverse else (uniques, counts)


class FitData:
    """Distinct tuples and their counts, with a way back to the caller's rows for error messages.

    Parameters
    ----------
    names : tuple of str
        Column names as the caller knows them (``x``, ``t_x``, ``T``).
    columns : tuple of ndarray
        The distinct tuples (or the caller's rows when they came with weights).
    counts : ndarray
        Customers per tuple.
    original : tuple of ndarray or None
        The caller's columns when they were compressed here; None when
        ``columns`` are the caller's rows.
    """

    def __init__(self, names, columns, counts, original=None, rows=None):
        self.names = tuple(names)
        self.columns = tuple(columns)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.original = original
        self.rows = rows  # caller's row of each tuple, when the tuples are (a subset of) the caller's rows
        self.n_customers = float(self.counts.sum())

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[self.names.index(name)]

    def example_row(self, j: int) -> int:
        """A row of the caller's input holding distinct tuple ``j``."""
        if self.original is None:
            return int(j if self.rows is None else self.rows[j])
        mask = np.ones(len(self.original[0]), dtype=bool)
        for o, u in zip(self.original, self.columns):
            v = u[j]
            mask &= (o == v) | (np.isnan(o) & np.isnan(v))
        return int(np.flatnonzero(mask)[0])

    def subset(self, keep: np.ndarray) -> FitData:
        """The tuples where ``keep`` holds (example rows still point at the caller's input)."""
        rows = None
        if self.original is None:
            rows = (np.arange(len(self.counts)) if self.rows is None else self.rows)[keep]
        return FitData(self.names, [c[keep] for c in self.columns], self.counts[keep], self.original, rows)

    def reject(self, bad: np.ndarray, message: Callable[[str, int], str]) -> None:
        """Raise :class:`ClvFitError` when any tuple is ``bad``; ``message(count, row)`` says why."""
        if not np.any(bad):
            return
        j = int(np.flatnonzero(bad)[0])
        raise ClvFitError(message(_count_text(self.counts[bad].sum()), j))


def _count_text(c: float) -> str:
    return str(int(c)) if float(c).is_integer() else f"{c:g}"


def gather_columns(named: Sequence[tuple[str, object]], weights=None) -> FitData:
    """Check lengths and finiteness of the caller's columns and compress them (or take ``weights``)."""
    cols = [as_column(name, v) for name, v in named]
    names = [name for name, _ in named]
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        got = ", ".join(f"{nm}={len(c)}" for nm, c in zip(names, cols))
        raise ClvFitError(f"{', '.join(names)} must have one value per customer, the same length (got {got})")
    if not cols[0].size:
        raise ClvFitError("no customers to fit: the input columns are empty")
    for name, c in zip(names, cols):
        _reject_nonfinite(name, c)
    if weights is None:
        uniques, counts = unique_rows(*cols)
        return FitData(names, uniques, counts, original=tuple(cols))
    w = as_column("weights", weights)
    if len(w) != len(cols[0]):
        raise ClvFitError(f"weights must have one count per row (got {len(w)} for {len(cols[0])} rows)")
    _reject_nonfinite("weights", w)
    if np.any(w < 0):
        i = int(np.flatnonzero(w < 0)[0])
        raise ClvFitError(f"weights are customer counts and cannot be negative, e.g. row {i}: weights={float(w[i])!r}")
    data = FitData(names, cols, w)
    if not np.any(w > 0):
        raise ClvFitError("no customers to fit: all weights are 0")
    return data if np.all(w > 0) else data.subset(w > 0)


def _reject_nonfinite(name: str, c: np.ndarray) -> None:
    ok = np.isfinite(c)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ClvFitError(f"{name} has {int((~ok).sum())} missing or infinite values, e.g. row {i}: "
                          f"{name}={float(c[i])!r}; drop or fill those customers before fitting")


def check_integer_counts(data: FitData, name: str) -> None:
    """Reject negative or fractional purchase counts."""
    x = data[name]
    data.reject(x < 0, lambda k, j: f"{name} counts repeat purchases and cannot be negative; {k} customers "
                f"have {name} < 0, e.g. row {data.example_row(j)}: {name}={float(x[j])!r}")
    data.reject(x != np.round(x), lambda k, j: f"{name} counts repeat purchases and must be a whole number; "
                f"{k} customers have a fractional {name}, e.g. row {data.example_row(j)}: {name}={float(x[j])!r}")


def warn_small(n: float, what: str, stacklevel: int = 3) -> None:
    """Warn (:class:`SmallSampleWarning`) when a fit sees fewer than :data:`MIN_CUSTOMERS` customers."""
    if n < MIN_CUSTOMERS:
        warnings.warn(f"only {_count_text(n)} {what}: the estimates will be very uncertain "
                      f"(at least {MIN_CUSTOMERS}, better a few thousand, are advisable)",
                      SmallSampleWarning, stacklevel=stacklevel)


# -- numerical helpers ----------------------------------------------------------------------
def log1mexp(d: np.ndarray) -> np.ndarray:
    """``log(1 - exp(d))`` for ``d <= 0``, accurate near 0 and for very negative ``d``."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(d > -math.log(2.0), np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def wdot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` without BLAS (whose threads cost milliseconds on a busy machine for 1e5 values)."""
    return float(np.einsum("i,i->", a, b))


def as_arrays(*values) -> list[np.ndarray]:
    """Prediction inputs as float arrays broadcast to one shape."""
    return np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))


def _fd_gradient(f: Callable, u: np.ndarray, f0: float | None = None) -> np.ndarray:
    """Five-point central differences (error ~1e-12), or forward ones from ``f0 = f(u)`` (~1e-7, cheap)."""
    g = np.empty_like(u)
    h = 1e-3 if f0 is None else 1e-7
    for i in range(len(u)):
        e = np.zeros_like(u)
        e[i] = h
        if f0 is None:
            g[i] = (8 * (f(u + e) - f(u - e)) - (f(u + 2 * e) - f(u - 2 * e))) / (12 * h)
        else:
            g[i] = (f(u + e) - f0) / h
    return g


def _hessian_from_gradient(fg: Callable, u: np.ndarray, h: float = 1e-5) -> np.ndarray:
    k = len(u)
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (fg(u + e)[1] - fg(u - e)[1]) / (2 * h)
    return (H + H.T) / 2


def _hessian_from_values(f: Callable, u: np.ndarray, h: float = 1e-3) -> np.ndarray:
    k = len(u)
    H = np.empty((k, k))
    f0 = f(u)
    step = np.eye(k) * h
    for i in range(k):
        H[i, i] = (f(u + step[i]) - 2 * f0 + f(u - step[i])) / h**2
        for j in range(i):
            v = (f(u + step[i] + step[j]) - f(u + step[i] - step[j])
                 - f(u - step[i] + step[j]) + f(u - step[i] - step[j])) / (4 * h**2)
            H[i, j] = H[j, i] = v
    return H


# -- the models' common base -----------------------------------------------------------------
class ClvModel:
    """Base of the CLV models: maximum likelihood on distinct tuples, uncertainty, serialisation.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty on the log-parameters: ``penalizer * sum((log θ - log θ_ref)**2)``
        is added to the mean negative log-likelihood per customer (lifetimes'
        per-customer scaling). ``θ_ref`` is 1 for shape parameters and the data's
        own scale for scale parameters (the longest ``T`` for ``alpha``/``beta``,
        the mean spend for ``gamma``), so the penalty means the same in days or
        weeks, dollars or cents. lifetimes penalises ``θ**2`` instead. With a
        penalty, ``cov_`` comes from the penalised objective.
    max_iter : int, default=500
        Iterations of the quasi-Newton (BFGS) stage.
    """

    param_names: tuple[str, ...] = ()
    #: Short name used by :meth:`to_dict` and the CLI (``bgnbd``, ``paretonbd``, ``gammagamma``).
    model_name: str = ""
    _has_gradient = True
    _convergence_hint = "check the input"

    def __init__(self, penalizer: float = 0.0, max_iter: int = 500):
        self.penalizer = penalizer
        self.max_iter = max_iter

    # -- subclass hooks ------------------------------------------------------------------
    def _prepare(self, data: FitData) -> object:
        """Per-fit precomputations on the distinct tuples (default: ``data`` itself)."""
        return data

    def _start(self, data: FitData) -> np.ndarray:  # pragma: no cover - abstract
        """Deterministic starting log-parameters."""
        raise NotImplementedError

    def _reference_log_params(self, data: FitData) -> np.ndarray:
        """Centre of the penalty (see the class doc)."""
        return np.zeros(len(self.param_names))

    def _loglik(self, theta: np.ndarray, prep, grad: bool):  # pragma: no cover - abstract
        """Total (count-weighted) log-likelihood and, if ``grad``, its gradient in log-parameters."""
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------------------
    def _fit_data(self, data: FitData) -> ClvModel:
        """Maximise the likelihood of ``data`` and set the fitted attributes."""
        if not self.penalizer >= 0 or not math.isfinite(self.penalizer):
            raise ValueError(f"penalizer={self.penalizer!r} must be a finite number >= 0")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter={self.max_iter!r} must be at least 1")
        prep = self._prepare(data)
        W = data.n_customers
        pen = float(self.penalizer)
        ref = self._reference_log_params(data)

        def f(u):
            with np.errstate(all="ignore"):
                ll = self._loglik(np.exp(u), prep, False)[0]
            d = u - ref
            val = -ll / W + pen * (d @ d)
            return val if np.isfinite(val) else np.inf

        def fg(u, fast=False):
            d = u - ref
            if self._has_gradient:
                with np.errstate(all="ignore"):
                    ll, g = self._loglik(np.exp(u), prep, True)
                val = -ll / W + pen * (d @ d)
                grad = -np.asarray(g) / W + 2 * pen * d
            else:
                val = f(u)
                grad = _fd_gradient(f, u, f0=val if fast else None)
            if not np.isfinite(val) or not np.all(np.isfinite(grad)):
                return np.inf, np.zeros_like(u)
            return val, grad

        def hess(u):
            return _hessian_from_gradient(fg, u) if self._has_gradient else _hessian_from_values(f, u)

        u, val, g, H, n_iter = _maximise(fg, hess, np.asarray(self._start(data), dtype=np.float64),
                                         int(self.max_iter))
        pd_ok = _positive_definite(H)
        converged = bool(np.isfinite(val) and np.max(np.abs(g)) < _GRAD_TOL and pd_ok
                         and np.all(np.abs(u) < _LOG_PARAM_LIMIT))
        if not converged:
            raise ClvFitError(self._convergence_message(u, n_iter, pd_ok, g))
        theta = np.exp(u)
        self.params_ = {n: float(v) for n, v in zip(self.param_names, theta)}
        self.cov_ = np.linalg.inv(H * W)
        self.cov_ = (self.cov_ + self.cov_.T) / 2
        self.se_ = self._se_from_cov(theta, self.cov_)
        self.log_likelihood_ = float(self._loglik(theta, prep, False)[0])
        self.n_customers_ = _number(W)
        self.n_unique_ = len(data.counts)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.meta_ = {}
        return self

    def _convergence_message(self, u, n_iter, pd_ok, g) -> str:
        name = type(self).__name__
        why = []
        far = [(n, math.exp(v)) for n, v in zip(self.param_names, u) if abs(v) >= _LOG_PARAM_LIMIT]
        if far:
            why.append(", ".join(f"{n} ran off to {v:.3g}" for n, v in far))
        elif not np.all(np.isfinite(u)) or not np.all(np.isfinite(g)):
            why.append("the likelihood is not finite at the estimate")
        elif not pd_ok:
            why.append("the likelihood is flat or not concave at the estimate")
        else:
            why.append(f"gradient {np.max(np.abs(g)):.2g} still above {_GRAD_TOL:g}")
        return (f"{name} did not converge after {n_iter} iterations ({'; '.join(why)}); try penalizer=0.001 "
                f"or more data / {self._convergence_hint}")

    def _se_from_cov(self, theta, cov) -> dict:
        """Delta method: ``se_i = theta_i * sqrt(cov_ii)`` (NaN where the variance is not finite)."""
        var = np.diag(np.asarray(cov, dtype=np.float64))
        return {n: float(t * math.sqrt(v)) if np.isfinite(v) and v >= 0 else float("nan")
                for n, t, v in zip(self.param_names, theta, var)}

    # -- fitted state ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(...) first "
                                 "or load a fitted one with from_dict")

    def _theta(self) -> tuple[float, ...]:
        self._check_fitted()
        return tuple(float(self.params_[n]) for n in self.param_names)

    def _with_params(self, theta) -> ClvModel:
        m = copy.copy(self)
        m.params_ = {n: float(v) for n, v in zip(self.param_names, theta)}
        return m

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, standard errors and a ``level`` interval (log-normal, from ``cov_``) per parameter."""
        theta = np.array(self._theta())
        zq = _normal_quantile(0.5 + level / 2)
        sd = np.sqrt(np.diag(self.cov_))
        return pd.DataFrame({"estimate": theta, "se": [self.se_[n] for n in self.param_names],
                             "lower": theta * np.exp(-zq * sd), "upper": theta * np.exp(zq * sd)},
                            index=pd.Index(self.param_names, name="parameter"))

    # -- uncertainty -----------------------------------------------------------------------
    def sample_params(self, n_draws: int, seed: int = 0) -> np.ndarray:
        """Parameter draws for a parametric bootstrap.

        The log-parameters are drawn from ``N(log θ̂, cov_)`` with
        ``numpy.random.default_rng(seed)``.

        Returns
        -------
        ndarray of shape (n_draws, len(param_names))
            On the natural scale, columns in ``param_names`` order.
        """
        theta = np.array(self._theta())
        if int(n_draws) < 1:
            raise ValueError(f"n_draws={n_draws!r} must be at least 1")
        cov = np.asarray(self.cov_, dtype=np.float64)
        if not np.all(np.isfinite(cov)):
            raise ValueError(f"this {type(self).__name__} has no finite covariance (cov_); cannot draw parameters")
        rng = np.random.default_rng(seed)
        z = rng.multivariate_normal(np.log(theta), cov, size=int(n_draws), method="cholesky")
        return np.exp(z)

    def interval(self, method_name: str, *args, n_draws: int = 200, level: float = 0.9, seed: int = 0, **kw):
        """A ``level`` interval of a prediction from a seeded parametric bootstrap.

        ``method_name`` (e.g. ``"p_alive"``) is evaluated once per parameter draw of
        :meth:`sample_params`, on the distinct rows of ``args`` only; the bounds are
        the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles across draws.

        Parameters
        ----------
        method_name : str
            A public prediction method of this model.
        *args : array_like
            Its positional arguments (broadcast to one shape).
        n_draws : int, default=200
        level : float, default=0.9
        seed : int, default=0
        **kw
            Passed to the method unchanged.

        Returns
        -------
        lower, upper : ndarray
            Of the broadcast shape of ``args``.

        Examples
        --------
        >>> lo, hi = model.interval("p_alive", x, t_x, T, n_draws=100, seed=1)  # doctest: +SKIP
        """
        self._check_fitted()
        if method_name.startswith("_") or not callable(getattr(self, method_name, None)) or method_name in (
                "interval", "sample_params", "fit", "to_dict", "from_dict", "summary"):
            raise ValueError(f"{method_name!r} is not a prediction method of {type(self).__name__}")
        if not 0 < level < 1:
            raise ValueError(f"level={level!r} must be between 0 and 1, e.g. 0.9")
        arrays = as_arrays(*args)
        shape = arrays[0].shape if arrays else ()
        flat = [a.ravel() for a in arrays]
        if flat and flat[0].size:
            uniq, _, inverse = unique_rows(*flat, return_inverse=True)
        else:
            uniq, inverse = flat, None
        draws = self.sample_params(n_draws, seed)
        values = np.stack([np.asarray(getattr(self._with_params(d), method_name)(*uniq, **kw), dtype=np.float64)
                           for d in draws])
        lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
        if inverse is not None:
            lo, hi = lo[inverse], hi[inverse]
        return lo.reshape(shape), hi.reshape(shape)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fitted model as plain JSON-serialisable data; :meth:`from_dict` restores it."""
        self._check_fitted()
        return {
            "model": self.model_name,
            "class": type(self).__name__,
            "format": _FORMAT,
            "params": {n: float(self.params_[n]) for n in self.param_names},
            "se": {n: float(self.se_[n]) for n in self.param_names},
            "cov": np.asarray(self.cov_, dtype=np.float64).tolist(),
            "log_likelihood": float(self.log_likelihood_),
            "n_customers": _number(self.n_customers_),
            "n_unique": int(self.n_unique_),
            "penalizer": float(self.penalizer),
            "max_iter": int(self.max_iter),
            "converged": bool(self.converged_),
            "n_iter": int(self.n_iter_),
            "meta": dict(getattr(self, "meta_", None) or {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ClvModel:
        """A fitted model from :meth:`to_dict` output; it predicts identically.

        Called on :class:`ClvModel` itself, the model class is chosen by ``d["model"]``.
        """
        name = d.get("model")
        target = cls
        if not cls.model_name:
            if name not in _MODULES:
                raise ValueError(f"unknown CLV model {name!r}; expected one of {', '.join(_MODULES)}")
            module = importlib.import_module(_MODULES[name])
            target = next(c for c in vars(module).values()
                          if isinstance(c, type) and issubclass(c, ClvModel) and c.model_name == name)
        elif name not in (cls.model_name, cls.__name__):
            raise ValueError(f"these are the parameters of a {name!r} model, not of {cls.model_name!r}")
        params = d.get("params") or {}
        missing = [n for n in target.param_names if n not in params]
        if missing:
            raise ValueError(f"the {target.model_name} parameters lack {', '.join(missing)}")
        m = target(penalizer=float(d.get("penalizer", 0.0)), max_iter=int(d.get("max_iter", 500)))
        m.params_ = {n: float(params[n]) for n in target.param_names}
        k = len(target.param_names)
        cov = np.asarray(d.get("cov", np.full((k, k), np.nan)), dtype=np.float64)
        if cov.shape != (k, k):
            raise ValueError(f"cov must be {k} x {k} (got shape {cov.shape})")
        m.cov_ = cov
        m.se_ = m._se_from_cov(np.array([m.params_[n] for n in target.param_names]), cov)
        m.log_likelihood_ = float(d.get("log_likelihood", float("nan")))
        m.n_customers_ = _number(d.get("n_customers", 0))
        m.n_unique_ = int(d.get("n_unique", 0))
        m.converged_ = bool(d.get("converged", True))
        m.n_iter_ = int(d.get("n_iter", 0))
        m.meta_ = dict(d.get("meta") or {})
        return m

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            ps = ", ".join(f"{n}={self.params_[n]:.4g}" for n in self.param_names)
            return f"{type(self).__name__}({ps}; fitted on {self.n_customers_} customers)"
        return f"{type(self).__name__}(penalizer={self.penalizer!r}, max_iter={self.max_iter!r})"


def _maximise(fg: Callable, hess: Callable, u: np.ndarray, max_iter: int):
    """Minimise ``fg(u) -> (value, gradient)``: BFGS, then Newton steps on a finite-difference Hessian.

    BFGS (on cheaper forward-difference gradients when the model has no analytic
    ones) gets close; Newton steps with the Hessian ``hess(u)``, recomputed only
    after a move of more than 1e-3, then converge quadratically (or nearly so)
    until the Newton decrement is at rounding level. Returns ``(u, value,
    gradient, Hessian at u, iterations)``.
    """
    res = optimize.minimize(lambda v: fg(v, fast=True), u, jac=True, method="BFGS",
                            options={"gtol": 1e-6, "maxiter": max_iter})
    u, n_iter = res.x, int(res.nit)
    val, g = fg(u)
    H, u_H = hess(u), u.copy()
    for _ in range(_NEWTON_STEPS):
        step = _newton_step(H, g)
        if step is None:
            break
        decrement = -float(g @ step)
        t, moved = 1.0, False
        for _ in range(30):  # backtracking, in case the start was far or the Hessian stale
            v_new, g_new = fg(u + t * step)
            if v_new <= val + 1e-13 * abs(val):
                u, val, g, moved = u + t * step, v_new, g_new, True
                break
            t /= 2
        if not moved:
            break
        n_iter += 1
        if np.max(np.abs(u - u_H)) > 1e-3:
            H, u_H = hess(u), u.copy()
        if decrement < 1e-15 * max(1.0, abs(val)) or np.max(np.abs(t * step)) < 1e-10:
            break
    if np.max(np.abs(u - u_H)) > 1e-6:
        H = hess(u)
    return u, val, g, H, n_iter


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(g))) or not _positive_definite(H):
        return None
    step = -np.linalg.solve(H, g)
    return step if np.all(np.isfinite(step)) else None


def _positive_definite(H: np.ndarray) -> bool:
    if not np.all(np.isfinite(H)):
        return False
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    return True


def _number(v):
    v = float(v)
    return int(v) if v.is_integer() else v


def _normal_quantile(p: float) -> float:
    from scipy.special import ndtri
    return float(ndtri(p))


# -- the purchase models' common fit ---------------------------------------------------------
class PurchaseModel(ClvModel):
    """Base of BG/NBD and Pareto/NBD: fit on ``(x, t_x, T)`` and the shared checks."""

    #: Label used in error messages.
    label = "the model"
    _convergence_hint = "check time unit (x, t_x and T must share one unit, e.g. weeks)"

    def fit(self, x, t_x, T, weights=None) -> PurchaseModel:
        """Fit by maximum likelihood.

        Parameters
        ----------
        x : array_like of shape (n,)
            Repeat purchases per customer in the calibration period (whole numbers).
        t_x : array_like of shape (n,)
            Time from the first to the last purchase (0 when ``x == 0``).
        T : array_like of shape (n,)
            Time from the first purchase to the end of the calibration period, in the
            same unit as ``t_x``; the parameters ``alpha`` (and ``beta``) are in that unit.
        weights : array_like of shape (n,), optional
            Customers per row, when the rows already are distinct ``(x, t_x, T)``
            tuples with their counts. Without it the rows are compressed here.

        Returns
        -------
        self

        Raises
        ------
        ClvFitError
            Invalid data (missing, negative, fractional ``x``, ``T < t_x``, ``t_x > 0`` with
            ``x == 0``), no repeat buyer at all, or no convergence.

        Warns
        -----
        SmallSampleWarning
            Fewer than :data:`MIN_CUSTOMERS` customers.
        """
        data = gather_columns((("x", x), ("t_x", t_x), ("T", T)), weights)
        check_purchase_history(data, self.label)
        return self._fit_data(data)

    def _reference_log_params(self, data: FitData) -> np.ndarray:
        ref = np.zeros(len(self.param_names))
        scale = math.log(max(float(np.max(data["T"])), 1e-12))
        for i, n in enumerate(self.param_names):
            if n in ("alpha", "beta"):
                ref[i] = scale
        return ref

    def expected_time_to_next(self, x, t_x, T) -> np.ndarray:
        """Expected time to the next purchase of a customer who is alive.

        The posterior mean of the mean inter-purchase time ``1/lambda`` given the
        customer is alive: lambda | alive, history ~ Gamma(r + x, alpha + T), so
        ``E[1/lambda] = (alpha + T) / (r + x - 1)`` (infinite where ``r + x <= 1``).
        It is conditional on being alive (weigh it with :meth:`p_alive` for the
        dropout risk) and does not depend on ``t_x``: it answers "if they are
        still a customer, how long until they buy again".

        Returns
        -------
        ndarray
            In the time unit of the fit.
        """
        theta = self._theta()
        r, alpha = theta[0], theta[1]
        x, t_x, T = as_arrays(x, t_x, T)
        den = r + x - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (alpha + T) / np.where(den > 0, den, 1.0), np.inf)


def check_purchase_history(data: FitData, label: str) -> None:
    """Reject ``(x, t_x, T)`` that are no purchase history; warn on small samples."""
    x, t_x, T = data["x"], data["t_x"], data["T"]
    row = data.example_row
    check_integer_counts(data, "x")
    for name, v in (("t_x", t_x), ("T", T)):
        data.reject(v < 0, lambda k, j, name=name, v=v: (
            f"{name} is negative for {k} customers, e.g. row {row(j)}: {name}={float(v[j])!r}; times are measured "
            "from each customer's first purchase and cannot be negative"))
    data.reject(T < t_x, lambda k, j: (
        f"T shorter than t_x for {k} customers, e.g. row {row(j)}: t_x={float(t_x[j])!r} > T={float(T[j])!r}; "
        "T must be measured from the first purchase to the end of the calibration period"))
    data.reject((x == 0) & (t_x != 0), lambda k, j: (
        f"t_x must be 0 when x == 0 (no repeat purchase); {k} customers have x=0 but t_x != 0, e.g. row "
        f"{row(j)}: t_x={float(t_x[j])!r}; t_x is the time of the last repeat purchase since the first purchase"))
    if not np.any(x > 0):
        raise ClvFitError(
            f"no customer made a repeat purchase: {label} cannot separate purchase rate from dropout; need "
            "customers with x >= 1 (x counts repeat purchases after the first one: check the summary, "
            "or use a longer calibration period)")
    warn_small(data.n_customers, "customers", stacklevel=4)
