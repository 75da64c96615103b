"""Calendar periods (months, quarters) as integer indexes, and orders per customer and period.

A period index counts months (or quarters) since year 0, so that "the previous
period" is ``index - 1`` and "periods since the first order" is a subtraction.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from custseg.cleaning.clean import clean

FREQS = ("month", "quarter")
_PER_YEAR = {"month": 12, "quarter": 4}


def check_freq(freq: str) -> str:
    if freq not in FREQS:
        raise ValueError(f"freq={freq!r} should be one of {FREQS}")
    return freq


def period_index(date: ir.DateValue | ir.TimestampValue, freq: str) -> ir.IntegerValue:
    """The period index of a date column, as an Ibis expression (any engine)."""
    if check_freq(freq) == "month":
        return (date.year() * 12 + date.month() - 1).cast("int64")
    return (date.year() * 4 + (date.month() - 1) // 3).cast("int64")


def period_start(index, freq: str) -> pd.DatetimeIndex:
    """First day of each period index."""
    idx = np.asarray(index, dtype="int64")
    per_year = _PER_YEAR[check_freq(freq)]
    years, within = np.divmod(idx, per_year)
    months = within * (12 // per_year) + 1
    return pd.to_datetime(pd.DataFrame({"year": years, "month": months, "day": 1}))


def period_label(index, freq: str) -> list[str]:
    """``2024-03`` or ``2024-Q1``."""
    idx = np.asarray(index, dtype="int64")
    if check_freq(freq) == "month":
        return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in idx]
    return [f"{i // 4:04d}-Q{i % 4 + 1}" for i in idx]


def customer_periods(store, freq: str) -> pd.DataFrame:
    """Cleaned orders of known customers per customer and period.

    Columns ``customer_id, period`` (index), ``orders`` (completed orders),
    ``revenue`` (sum of ``net_amount``: completed totals, credit notes
    negative). A row with ``orders = 0`` has only cancelled or returned orders.
    """
    o = clean(store).orders
    o = o.filter(o.customer_id.notnull())
    o = o.mutate(period=period_index(o.order_date.cast("date"), freq))
    agg = o.group_by(["customer_id", "period"]).aggregate(
        orders=ibis.ifelse(o.status == "completed", 1, 0).sum(),
        revenue=o.net_amount.cast("float64").sum(),
    )
    df = store.ibis.execute(agg)
    df["orders"] = df["orders"].astype("int64")
    df["period"] = df["period"].astype("int64")
    df["revenue"] = df["revenue"].astype("float64")
    return df


def last_order_date(store):
    """The day of the last order in the store (None when there is none)."""
    value = store.con.execute("SELECT max(order_time) FROM orders").fetchall()[0][0]
    return None if value is None else pd.Timestamp(value).normalize()


def period_end(index: int, freq: str) -> pd.Timestamp:
    """The day after the last day of a period."""
    return period_start([int(index) + 1], freq)[0]
