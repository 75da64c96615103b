"""Fit CLV models on a store, keep them, and score every customer.

* :func:`fit_model` summarises the store's orders up to a calibration end
  (:func:`~custseg.clv.data.purchase_summary`) and fits BG/NBD, Pareto/NBD or
  Gamma-Gamma; the data window and time unit are recorded with the model
  (``meta_``).
* :func:`save_model` / :func:`load_model` keep fitted models in the store's
  ``clv_models`` table, so that new data is scored without refitting.
* :func:`predict` scores every customer as of a date: probability alive,
  expected purchases over a horizon, expected spend per order, CLV, expected
  days to the next purchase, with intervals from a seeded parametric bootstrap
  of the parameters; :func:`save_predictions` writes them to ``clv_predictions``.

Time units: horizons are given in **days**; a model fitted in weeks converts
them (``horizon_days / 7``). The discount rate is **annual**.

CLV over a horizon ``H`` with annual discount rate ``d`` and margin ``m``
(Fader, Hardie and Lee's discrete approximation, as in lifetimes): the horizon is
cut into steps of ``step_days`` (default one month, 30.4375 days; the last step
ends at ``H``), the expected purchases in each step ``k`` (ending ``t_k`` days
from now) are discounted by ``(1 + d) ** (t_k / 365.25)``:

    CLV = m * E[spend per order] * sum_k (E[X(t_k)] - E[X(t_{k-1})]) / (1 + d) ** (t_k / 365.25)

where ``E[X(t)]`` is the customer's conditional expected number of purchases in
the next ``t`` days.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
import warnings

import numpy as np
import pandas as pd

from custseg.clv._fit import SmallSampleWarning
from custseg.clv.data import TIME_UNITS, purchase_summary, unit_days
from custseg.features.build import as_date

PURCHASE_MODELS = ("bgnbd", "paretonbd")
MODELS = PURCHASE_MODELS + ("gammagamma",)
MONTH_DAYS = 30.4375
#: Penalties tried, smallest first, when plain maximum likelihood does not converge (see fit_model).
FALLBACK_PENALIZERS = (1e-4, 1e-3, 1e-2)
YEAR_DAYS = 365.25


def model_class(name: str):
    """The class of model ``name`` (``bgnbd``, ``paretonbd`` or ``gammagamma``)."""
    if name == "bgnbd":
        from custseg.clv.bgnbd import BetaGeoModel
        return BetaGeoModel
    if name == "paretonbd":
        from custseg.clv.paretonbd import ParetoNBDModel
        return ParetoNBDModel
    if name == "gammagamma":
        from custseg.clv.gammagamma import GammaGammaModel
        return GammaGammaModel
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def fit_model(
    store,
    model: str = "bgnbd",
    *,
    calibration_end: dt.date | str | None = None,
    time_unit: str = "week",
    cohort_start: dt.date | str | None = None,
    cohort_end: dt.date | str | None = None,
    penalizer: float | None = None,
    summary: pd.DataFrame | None = None,
):
    """Fit ``model`` on the store's purchases up to ``calibration_end`` (inclusive).

    ``penalizer=None`` (the default) fits by plain maximum likelihood and, only if that does
    not converge (the likelihood keeps rising towards a boundary, such as BG/NBD's ``a`` and
    ``b`` growing together when dropout is the same for everyone), refits with the smallest
    penalty of :data:`FALLBACK_PENALIZERS` that converges; ``meta_["penalizer"]`` and
    ``meta_["penalizer_reason"]`` say so. A number fits with exactly that penalty.

    Returns the fitted model with ``meta_`` holding ``model``, ``calibration_start``
    (first purchase day seen), ``calibration_end``, ``time_unit``, the cohort bounds and the
    penalizer used.
    """
    from custseg.clv._fit import ClvFitError

    model_class(model)  # an unknown model name fails before any work
    if summary is None:
        summary = purchase_summary(store, calibration_end, time_unit=time_unit,
                                   cohort_start=cohort_start, cohort_end=cohort_end)
    if penalizer is None:
        try:
            return fit_model(store, model, calibration_end=calibration_end, time_unit=time_unit,
                             cohort_start=cohort_start, cohort_end=cohort_end, penalizer=0.0, summary=summary)
        except ClvFitError as exc:
            if "did not converge" not in str(exc):
                raise
            first = exc
        for pen in FALLBACK_PENALIZERS:
            try:
                m = fit_model(store, model, calibration_end=calibration_end, time_unit=time_unit,
                              cohort_start=cohort_start, cohort_end=cohort_end, penalizer=pen, summary=summary)
            except ClvFitError:
                continue
            m.meta_["penalizer_reason"] = (f"plain maximum likelihood did not converge ({str(first).split(';')[0]}); "
                                           f"fitted with penalizer={pen:g}")
            return m
        raise first
    cls = model_class(model)
    if summary.empty:
        raise ValueError("no customer has a completed purchase on or before the calibration end "
                         f"{calibration_end or '(last order)'}; ingest orders or move --calibration-end")
    m = cls(penalizer=penalizer)
    excluded = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallSampleWarning)
        excluded = _fit_on(m, model, summary)
    notes = [str(w.message) for w in caught if issubclass(w.category, SmallSampleWarning)]
    for w in caught:
        if not issubclass(w.category, SmallSampleWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    m.meta_ = {
        "model": model,
        "calibration_start": str(min(summary["first_purchase"])),
        "calibration_end": str(summary.attrs.get("calibration_end", calibration_end)),
        "time_unit": time_unit,
        "cohort_start": None if cohort_start is None else str(as_date(cohort_start)),
        "cohort_end": None if cohort_end is None else str(as_date(cohort_end)),
        "notes": notes,
    }
    m.meta_["penalizer"] = float(penalizer)
    if model == "gammagamma":
        m.meta_["excluded_nonpositive_spend"] = excluded
    return m


def _fit_on(m, model: str, summary: pd.DataFrame) -> int:
    """Fit ``m`` on the summary; return the repeat buyers left out (Gamma-Gamma, non-positive spend)."""
    excluded = 0
    if model == "gammagamma":
        # Gamma-Gamma models positive spend: repeat buyers whose repeat purchases net to zero or
        # less (refunds, free orders) are left out of the fit, and counted.
        repeat = summary["x"] > 0
        bad = repeat & ~(summary["monetary_value"] > 0)
        excluded = int(bad.sum())
        use = summary[repeat & ~bad]
        if use.empty:
            raise ValueError("no repeat buyer with positive spend: Gamma-Gamma needs customers with at least "
                             "one repeat purchase of positive value")
        m.fit(use["x"].to_numpy(), use["monetary_value"].to_numpy())
    else:
        m.fit(summary["x"].to_numpy(), summary["t_x"].to_numpy(), summary["T"].to_numpy())
    return excluded


def new_model_id(model: str) -> str:
    return f"clv-{model}-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def save_model(store, model) -> str:
    """Keep a fitted model in ``clv_models``; return its id."""
    meta = model.meta_
    model_id = new_model_id(meta["model"])
    with store.transaction() as con:
        con.execute(
            "INSERT INTO clv_models (model_id, model, created_at, calibration_start, calibration_end, time_unit, "
            "n_customers, log_likelihood, parameters) VALUES (?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
            [model_id, meta["model"], meta["calibration_start"], meta["calibration_end"], meta["time_unit"],
             int(model.n_customers_), float(model.log_likelihood_), json.dumps(model.to_dict())],
        )
    model.meta_ = {**meta, "model_id": model_id}
    return model_id


def list_models(store) -> pd.DataFrame:
    """The stored models, newest first (without their parameters' JSON)."""
    return store.con.execute(
        "SELECT model_id, model, created_at, calibration_start, calibration_end, time_unit, n_customers, "
        "log_likelihood FROM clv_models ORDER BY created_at DESC, model_id DESC").df()


def load_model(store, model_id: str | None = None, *, kind: str | tuple[str, ...] | None = None):
    """A stored model by id, or the newest of ``kind`` (a model name or a tuple of names)."""
    if model_id is not None:
        rows = store.con.execute("SELECT model, parameters, model_id FROM clv_models WHERE model_id = ?",
                                 [model_id]).fetchall()
        if not rows:
            raise ValueError(f"no CLV model {model_id!r}; see `custseg clv models`")
    else:
        kinds = (kind,) if isinstance(kind, str) else tuple(kind or MODELS)
        marks = ", ".join("?" for _ in kinds)
        rows = store.con.execute(
            f"SELECT model, parameters, model_id FROM clv_models WHERE model IN ({marks}) "
            "ORDER BY created_at DESC, model_id DESC LIMIT 1", list(kinds)).fetchall()
        if not rows:
            raise ValueError(f"no fitted {' or '.join(kinds)} model in the store; run `custseg clv fit "
                             f"--model {kinds[0]}` first")
    name, params, mid = rows[0]
    m = model_class(name).from_dict(json.loads(params))
    m.meta_ = {**(m.meta_ or {}), "model": name, "model_id": mid}
    return m


# -- scoring ------------------------------------------------------------------------------------
def _steps(horizon_days: float, step_days: float) -> np.ndarray:
    n = int(np.ceil(horizon_days / step_days - 1e-9))
    t = np.minimum(np.arange(1, n + 1) * step_days, horizon_days)
    return t


def discounted_purchases(model, x, t_x, T, horizon_days: float, *, per: float, discount_rate: float,
                         step_days: float = MONTH_DAYS) -> np.ndarray:
    """Sum over steps of expected purchases in each step, discounted to today (see the module doc)."""
    t_days = _steps(horizon_days, step_days)
    total = np.zeros(len(x))
    before = np.zeros(len(x))
    for td in t_days:
        cum = np.asarray(model.expected_purchases(td / per, x, t_x, T), dtype=float)
        total += (cum - before) / (1.0 + discount_rate) ** (td / YEAR_DAYS)
        before = cum
    return total


def _unique(*cols):
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in cols])
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return [uniq[:, i] for i in range(uniq.shape[1])], inverse.ravel()


def _with_params(model, values) -> object:
    m = copy.copy(model)
    m.params_ = dict(zip(model.param_names, (float(v) for v in values)))
    return m


def predict(
    store,
    model,
    spend_model=None,
    *,
    horizon_days: float = 365.0,
    as_of: dt.date | str | None = None,
    discount_rate: float = 0.1,
    margin: float = 1.0,
    step_days: float = MONTH_DAYS,
    intervals: bool = True,
    n_draws: int = 100,
    level: float = 0.9,
    seed: int = 0,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score every customer with a purchase before ``as_of`` (default: the day after the last order).

    Parameters
    ----------
    model : fitted BetaGeoModel or ParetoNBDModel
        Its ``meta_["time_unit"]`` says the unit of its parameters.
    spend_model : fitted GammaGammaModel, optional
        Without it, ``expected_spend`` is each customer's mean order value so far
        (mean repeat value, else the first order's) and CLV uses that.
    horizon_days, discount_rate, margin, step_days
        See the module documentation; the discount rate is annual.
    intervals : bool
        Bootstrap intervals (``*_low``/``*_high``) at ``level`` from ``n_draws`` seeded draws of
        the parameters (both models'); NaN when False.

    Returns
    -------
    pandas.DataFrame
        The columns of ``clv_predictions`` except ``prediction_id``.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon must be positive (got {horizon_days} days)")
    if not 0 <= discount_rate < 10:
        raise ValueError(f"annual discount rate {discount_rate} should be a fraction such as 0.1 (10%)")
    if not 0 < level < 1:
        raise ValueError(f"interval level {level} must be between 0 and 1, e.g. 0.9")
    time_unit = (model.meta_ or {}).get("time_unit")
    if time_unit not in TIME_UNITS:
        raise ValueError("the model does not record its time unit (meta_['time_unit']); fit it with fit_model")
    per = unit_days(time_unit)
    if summary is None:
        end = None if as_of is None else as_date(as_of) - dt.timedelta(days=1)
        summary = purchase_summary(store, end, time_unit=time_unit)
    as_of_date = summary.attrs.get("as_of") or as_date(as_of)
    x = summary["x"].to_numpy(np.float64)
    t_x = summary["t_x"].to_numpy(np.float64)
    T = summary["T"].to_numpy(np.float64)
    (ux, utx, uT), inv = _unique(x, t_x, T)
    h = horizon_days / per

    def point(m):
        return (np.asarray(m.p_alive(ux, utx, uT), float),
                np.asarray(m.expected_purchases(h, ux, utx, uT), float),
                discounted_purchases(m, ux, utx, uT, horizon_days, per=per, discount_rate=discount_rate,
                                     step_days=step_days))

    p_alive, expected, disc = point(model)
    monetary = summary["monetary_value"].to_numpy(np.float64)
    if spend_model is not None:
        spend = np.asarray(spend_model.conditional_expected_spend(x, np.nan_to_num(monetary)), float)
    else:
        spend = _observed_spend(store, summary)
    out = pd.DataFrame({
        "customer_id": summary["customer_id"].astype(str).to_numpy(),
        "model_id": (model.meta_ or {}).get("model_id"),
        "spend_model_id": None if spend_model is None else (spend_model.meta_ or {}).get("model_id"),
        "as_of": as_of_date,
        "horizon_days": float(horizon_days),
        "x": summary["x"].to_numpy(np.int64),
        "t_x": t_x,
        "T": T,
        "p_alive": p_alive[inv],
        "expected_purchases": expected[inv],
        "expected_spend": spend,
        "clv": margin * spend * disc[inv],
        "expected_days_to_next": np.asarray(model.expected_time_to_next(ux, utx, uT), float)[inv] * per,
    })
    for col in ("p_alive", "expected_purchases", "clv"):
        out[f"{col}_low"] = np.nan
        out[f"{col}_high"] = np.nan
    if intervals and n_draws > 0:
        draws = model.sample_params(n_draws, seed)
        sdraws = _finite_spend_draws(spend_model, n_draws, seed + 1) if spend_model is not None else None
        pa_d = np.empty((n_draws, len(ux)))
        ex_d = np.empty((n_draws, len(ux)))
        clv_d = np.empty((n_draws, len(x)))
        for i in range(n_draws):
            pa_i, ex_i, disc_i = point(_with_params(model, draws[i]))
            pa_d[i], ex_d[i] = pa_i, ex_i
            sp = spend if sdraws is None else np.asarray(
                _with_params(spend_model, sdraws[i]).conditional_expected_spend(x, np.nan_to_num(monetary)), float)
            clv_d[i] = margin * sp * disc_i[inv]
        lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
        for col, d, idx in (("p_alive", pa_d, inv), ("expected_purchases", ex_d, inv), ("clv", clv_d, None)):
            q = np.quantile(d, [lo, hi], axis=0)
            out[f"{col}_low"] = q[0][idx] if idx is not None else q[0]
            out[f"{col}_high"] = q[1][idx] if idx is not None else q[1]
    cols = ["customer_id", "model_id", "spend_model_id", "as_of", "horizon_days", "x", "t_x", "T",
            "p_alive", "p_alive_low", "p_alive_high", "expected_purchases", "expected_purchases_low",
            "expected_purchases_high", "expected_spend", "clv", "clv_low", "clv_high", "expected_days_to_next"]
    out = out[cols]
    out.attrs.update(time_unit=time_unit, discount_rate=discount_rate, margin=margin, level=level,
                     n_draws=n_draws if intervals else 0, seed=seed)
    return out


def _finite_spend_draws(spend_model, n_draws: int, seed: int) -> np.ndarray:
    """Gamma-Gamma parameter draws with a finite mean spend (``q > 1``).

    A draw with ``q <= 1`` says the population's mean spend is infinite, which no prediction
    can use: such draws are redrawn (the bootstrap is then conditional on a finite mean). When
    most draws are like that, the spend model is too uncertain for intervals and it says so.
    """
    q = list(spend_model.param_names).index("q")
    draws = spend_model.sample_params(n_draws, seed)
    ok = draws[draws[:, q] > 1.0 + 1e-9]
    if len(ok) < n_draws / 2:
        raise ValueError(f"{n_draws - len(ok)} of {n_draws} Gamma-Gamma parameter draws have q <= 1 (infinite mean "
                         "spend): the spend model is too uncertain for intervals on this data; use --no-intervals "
                         "or more customers")
    extra = 1
    while len(ok) < n_draws:
        more = spend_model.sample_params(n_draws, seed + 1000 * extra)
        ok = np.vstack([ok, more[more[:, q] > 1.0 + 1e-9]])
        extra += 1
    return ok[:n_draws]


def _observed_spend(store, summary: pd.DataFrame) -> np.ndarray:
    """Mean repeat value, else the value of the first purchase day (no spend model)."""
    from custseg.features.build import build_features

    as_of = summary.attrs.get("as_of")
    f = build_features(store, as_of, include=("orders",))
    aov = store.ibis.execute(f.select("customer_id", "aov"))
    m = summary[["customer_id"]].merge(aov, on="customer_id", how="left")
    return np.where(summary["x"].to_numpy() > 0, summary["monetary_value"].to_numpy(np.float64),
                    m["aov"].to_numpy(np.float64))


def new_prediction_id() -> str:
    return f"clv-predict-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def save_predictions(store, predictions: pd.DataFrame) -> str:
    """Write predictions to ``clv_predictions`` under a new prediction id; return it."""
    pid = new_prediction_id()
    df = predictions.copy()
    df.insert(0, "prediction_id", pid)
    df["as_of"] = pd.to_datetime(df["as_of"]).dt.date
    with store.transaction() as con:
        con.register("_clv_pred_src", df)
        cols = ", ".join(f'"{c}"' for c in df.columns)
        con.execute(f"INSERT INTO clv_predictions ({cols}) SELECT {cols} FROM _clv_pred_src")
        con.unregister("_clv_pred_src")
    return pid


def load_predictions(store, prediction_id: str | None = None) -> pd.DataFrame:
    """The predictions of one run (default: the newest)."""
    if prediction_id is None:
        rows = store.con.execute(
            "SELECT prediction_id FROM clv_predictions ORDER BY prediction_id DESC LIMIT 1").fetchall()
        if not rows:
            raise ValueError("no CLV predictions in the store; run `custseg clv predict` first")
        prediction_id = rows[0][0]
    df = store.con.execute("SELECT * FROM clv_predictions WHERE prediction_id = ? ORDER BY customer_id",
                           [prediction_id]).df()
    if df.empty:
        raise ValueError(f"no CLV predictions {prediction_id!r}")
    return df
