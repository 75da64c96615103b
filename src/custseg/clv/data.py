"""Purchase summaries for the CLV models, from the store's orders.

The models of :mod:`custseg.clv` see a customer as three numbers (Fader,
Hardie and Lee): ``x``, the number of repeat purchase days; ``t_x``, the time
from the first to the last purchase day; ``T``, the time from the first
purchase day to the end of the calibration period. All completed orders of one
day are one purchase (cancelled and returned orders are not purchases; see
[cleaning](../../docs/cleaning.md)). ``monetary_value`` is the mean value of
the repeat purchase days, the input of the Gamma-Gamma spend model.

Time units are explicit, never guessed: ``time_unit`` is ``"day"`` or
``"week"`` (7 days), and a model fitted in one unit records it, so predictions
convert horizons given in days.

The calibration period ends on ``calibration_end`` (inclusive); the data up to
then is what a model is fitted on. The customers summarised are those with a
completed purchase on or before ``calibration_end`` (optionally only those whose
first purchase falls in ``[cohort_start, cohort_end]``, as CDNOW's cohort of
first purchases in the first quarter of 1997).
"""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd

from custseg.features.build import as_date, build_features, default_as_of

#: Days per time unit.
TIME_UNITS: dict[str, float] = {"day": 1.0, "week": 7.0}


def unit_days(time_unit: str) -> float:
    """Days in one ``time_unit`` (``day`` or ``week``); anything else is an error."""
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise ValueError(f"time unit {time_unit!r} is not one of {', '.join(TIME_UNITS)}") from None


def last_order_day(store) -> dt.date:
    """The day of the last order in the store."""
    return default_as_of(store) - dt.timedelta(days=1)


def purchase_summary(
    store,
    calibration_end: dt.date | str | None = None,
    *,
    time_unit: str = "week",
    cohort_start: dt.date | str | None = None,
    cohort_end: dt.date | str | None = None,
) -> pd.DataFrame:
    """One row per customer: ``x``, ``t_x``, ``T`` and ``monetary_value`` as of ``calibration_end``.

    Parameters
    ----------
    store : Store or SparkSource
    calibration_end : date or str, default=the day of the last order
        Last day (inclusive) of the data summarised.
    time_unit : {"week", "day"}
        Unit of ``t_x`` and ``T``.
    cohort_start, cohort_end : date or str, optional
        Keep only customers whose first purchase day is in this range (inclusive).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``x`` (int), ``t_x``, ``T`` (float, in ``time_unit``),
        ``monetary_value`` (mean value of the repeat purchase days; NaN when ``x`` is 0)
        and ``first_purchase`` (date), sorted by ``customer_id``.
    """
    per = unit_days(time_unit)
    end = as_date(calibration_end) if calibration_end is not None else last_order_day(store)
    as_of = end + dt.timedelta(days=1)
    f = build_features(store, as_of, include=("clv",))
    f = f.filter(f.clv_x.notnull())
    first = ibis.date(end) - f.clv_T_days.cast("int64").as_interval("D")
    f = f.mutate(first_purchase=first)
    if cohort_start is not None:
        f = f.filter(f.first_purchase >= ibis.date(as_date(cohort_start)))
    if cohort_end is not None:
        f = f.filter(f.first_purchase <= ibis.date(as_date(cohort_end)))
    df = store.ibis.execute(f.select(
        "customer_id",
        x=f.clv_x.cast("int64"),
        t_x=f.clv_t_x_days / per,
        T=f.clv_T_days / per,
        monetary_value=f.clv_mean_repeat_value,
        first_purchase=f.first_purchase,
    ).order_by("customer_id"))
    df["first_purchase"] = pd.to_datetime(df["first_purchase"]).dt.date
    df["monetary_value"] = df["monetary_value"].astype("float64")
    df.attrs.update(calibration_end=end, time_unit=time_unit, as_of=as_of)
    return df.reset_index(drop=True)


def holdout_purchases(store, calibration_end: dt.date | str, holdout_end: dt.date | str | None = None) -> pd.DataFrame:
    """Purchase days of every customer after ``calibration_end`` up to ``holdout_end`` (inclusive).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and ``purchases`` (distinct purchase days), for customers with at least
        one; others made none.
    """
    from custseg.cleaning.clean import clean

    start = as_date(calibration_end) + dt.timedelta(days=1)
    end = as_date(holdout_end) if holdout_end is not None else last_order_day(store)
    if end < start:
        raise ValueError(f"holdout end {end} is before the day after the calibration end ({start})")
    o = clean(store).orders
    o = o.filter((o.status == "completed") & ~o.is_credit & o.customer_id.notnull()
                 & (o.order_date >= ibis.date(start)) & (o.order_date <= ibis.date(end)))
    out = o.group_by("customer_id").aggregate(purchases=o.order_date.nunique())
    df = store.ibis.execute(out.order_by("customer_id"))
    df.attrs.update(holdout_start=start, holdout_end=end)
    return df


def repeat_purchases_by_day(store, customers: pd.DataFrame, end: dt.date) -> pd.Series:
    """Repeat purchase days per calendar day of the given customers, up to ``end`` (inclusive).

    ``customers`` has ``customer_id`` and ``first_purchase``; a purchase day after the
    customer's first is a repeat purchase. Returns a Series indexed by date.
    """
    from custseg.cleaning.clean import clean

    o = clean(store).orders
    o = o.filter((o.status == "completed") & ~o.is_credit & o.customer_id.notnull()
                 & (o.order_date <= ibis.date(end)))
    days = o.group_by(["customer_id", "order_date"]).aggregate(n=o.count())
    ids = ibis.memtable(pd.DataFrame({"cid": customers.customer_id.astype(str),
                                      "first": pd.to_datetime(customers.first_purchase)}))
    j = days.join(ids, days.customer_id == ids.cid)
    j = j.filter(j.order_date > j["first"].date())
    per_day = j.group_by("order_date").aggregate(repeat=j.count())
    df = store.ibis.execute(per_day.order_by("order_date"))
    s = pd.Series(df["repeat"].to_numpy(np.int64), index=pd.to_datetime(df["order_date"]).dt.date)
    return s
