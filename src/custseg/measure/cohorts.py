"""The cohort retention matrix: customers by period of first order x periods since.

A customer's cohort is the month (or quarter) of their first completed order.
Cell ``(cohort, k)`` is the share of the cohort's customers with a completed
order ``k`` periods later (``k = 0`` is the first period, 100% by definition).
Cells after the store's last order are not observed and stay empty (NaN),
never 0. Only orders are needed, so the matrix works on any store (CDNOW too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.measure.periods import (
    check_freq,
    customer_periods,
    last_order_date,
    period_end,
    period_label,
)


@dataclass
class CohortMatrix:
    """Cohort retention matrix.

    Attributes
    ----------
    freq : str
        ``month`` or ``quarter``.
    sizes : Series
        Customers per cohort (index: cohort label such as ``2024-03``).
    active : DataFrame
        Cohorts (rows) x periods since the first order (columns 0, 1, ...):
        customers with a completed order; NaN where not observed.
    shares : DataFrame
        ``active`` divided by the cohort's size.
    cohort_start : Series
        First day of each cohort's period (same index as ``sizes``).
    notes : list of str
    """

    freq: str
    sizes: pd.Series
    active: pd.DataFrame
    shares: pd.DataFrame
    cohort_start: pd.Series
    notes: list[str] = field(default_factory=list)

    def long(self) -> pd.DataFrame:
        """``cohort, cohort_start, periods_since_first, customers, active, share``, observed cells only."""
        a = self.active.stack().rename("active").reset_index()
        a.columns = ["cohort", "periods_since_first", "active"]
        s = self.shares.stack().rename("share").reset_index()
        s.columns = ["cohort", "periods_since_first", "share"]
        out = a.merge(s, on=["cohort", "periods_since_first"])
        out.insert(1, "cohort_start", out["cohort"].map(self.cohort_start))
        out.insert(3, "customers", out["cohort"].map(self.sizes))
        out["active"] = out["active"].astype("int64")
        return out

    def to_dict(self) -> dict:
        return {"freq": self.freq, "notes": list(self.notes),
                "cohorts": [{"cohort": c, "customers": int(self.sizes[c]),
                             "shares": [None if pd.isna(v) else float(v) for v in self.shares.loc[c]]}
                            for c in self.sizes.index]}


def cohort_matrix(store, freq: str = "month") -> CohortMatrix:
    """Customers by period of their first completed order x periods since, and the share still buying.

    Parameters
    ----------
    store : Store
    freq : {"month", "quarter"}, default="month"

    Returns
    -------
    CohortMatrix

    Examples
    --------
    >>> from custseg import Store
    >>> from custseg.datasets import load_demo, make_store
    >>> store = Store(":memory:"); load_demo(store, make_store(1000, seed=1))
    >>> m = cohort_matrix(store, "quarter")
    >>> float(m.shares.iloc[0, 0])
    1.0
    """
    check_freq(freq)
    per = customer_periods(store, freq)
    per = per[per["orders"] > 0]
    if per.empty:
        raise ValueError(f"store {store.path} has no completed orders of known customers")
    first = per.groupby("customer_id")["period"].min().rename("cohort")
    per = per.join(first, on="customer_id")
    per["age"] = per["period"] - per["cohort"]
    last = int(per["period"].max())
    cohorts = np.arange(int(per["cohort"].min()), last + 1)
    ages = np.arange(0, last - cohorts[0] + 1)
    counts = per.groupby(["cohort", "age"]).size().unstack("age").reindex(index=cohorts, columns=ages)
    sizes = first.value_counts().reindex(cohorts).fillna(0).astype("int64")
    observed = (cohorts[:, None] + ages[None, :]) <= last
    active = counts.fillna(0).where(observed)
    keep = sizes > 0
    active, sizes = active[keep.to_numpy()], sizes[keep]
    shares = active.div(sizes, axis=0)
    labels = period_label(sizes.index.to_numpy(), freq)
    starts = pd.Series(pd.to_datetime([f"{lab}-01" if freq == "month" else _quarter_start(lab) for lab in labels]),
                       index=labels)
    active.index = shares.index = sizes.index = labels
    active.index.name = shares.index.name = sizes.index.name = "cohort"
    active.columns.name = shares.columns.name = "periods_since_first"
    notes = []
    end = last_order_date(store)
    if end is not None and period_end(last, freq) > end + pd.Timedelta(days=1):
        notes.append(f"the last {freq} ({period_label([last], freq)[0]}) is partial: orders end {end.date()}, "
                     "so the last diagonal of the matrix is understated")
    return CohortMatrix(freq, sizes.rename("customers"), active, shares, starts, notes)


def _quarter_start(label: str) -> str:
    year, q = label.split("-Q")
    return f"{year}-{3 * (int(q) - 1) + 1:02d}-01"
