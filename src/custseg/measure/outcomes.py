"""From the store to one row per customer of a campaign: arm, and what they did around it.

A campaign is measured on the customers of ``campaign_assignments`` (its arms,
``treatment`` and ``control``) and on their cleaned orders
(:func:`custseg.cleaning.clean.clean`): guests never count, and an order
belongs to a customer through its id or, failing that, its email.

The periods (docs/measure.md), in whole days of ``order_date``:

* **window**: from the day of the campaign's ``start_time`` for
  ``window_days`` days (default: up to its ``end_time``, else 28 days);
* **pre-period**: the same number of days just before the window;
* **follow-up**: the ``followup_days`` days just after the window.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd

from custseg.cleaning.clean import clean

DEFAULT_WINDOW_DAYS = 28
DEFAULT_FOLLOWUP_DAYS = 90
ARMS = ("treatment", "control")
# Per-customer outcome columns that analyze_frame reads (the email ones are optional).
OUTCOME_COLUMNS = ("customer_id", "arm", "converted", "orders", "revenue")
OPTIONAL_COLUMNS = ("pre_converted", "followup_converted", "sent", "bounced", "opened", "clicked", "unsubscribed")
EMAIL_TYPES = ("sent", "bounce", "open", "click", "unsubscribe")


@dataclass(frozen=True)
class CampaignWindow:
    """The days a campaign is measured over (ends exclusive).

    Attributes
    ----------
    start, end : date
        The window: ``start <= order_date < end``.
    pre_start : date
        Start of the pre-period ``[pre_start, start)``, as long as the window.
    followup_end : date
        End of the follow-up ``[end, followup_end)``.
    days, followup_days : int
    data_end : date or None
        The last order day in the store; a follow-up past it is incomplete.
    """

    start: dt.date
    end: dt.date
    pre_start: dt.date
    followup_end: dt.date
    days: int
    followup_days: int
    data_end: dt.date | None = None

    @classmethod
    def from_start(cls, start: dt.date, days: int, followup_days: int = DEFAULT_FOLLOWUP_DAYS,
                   data_end: dt.date | None = None) -> CampaignWindow:
        if days < 1:
            raise ValueError(f"window_days={days} should be at least 1")
        if followup_days < 0:
            raise ValueError(f"followup_days={followup_days} should not be negative")
        end = start + dt.timedelta(days=days)
        return cls(start, end, start - dt.timedelta(days=days), end + dt.timedelta(days=followup_days),
                   days, followup_days, data_end)

    @property
    def followup_complete(self) -> bool:
        """True when the store has orders up to the end of the follow-up."""
        return self.data_end is not None and self.data_end >= self.followup_end - dt.timedelta(days=1)

    def to_dict(self) -> dict:
        return {"start": str(self.start), "end": str(self.end), "pre_start": str(self.pre_start),
                "followup_end": str(self.followup_end), "days": self.days, "followup_days": self.followup_days,
                "data_end": None if self.data_end is None else str(self.data_end),
                "followup_complete": self.followup_complete}


def as_date(value) -> dt.date | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def campaign_info(store, campaign_id: str) -> dict:
    """The campaign's row of ``campaigns`` (name, channel, start and end), or a clear error.

    A campaign with assignments but no row in ``campaigns`` gets its start from
    the earliest ``assigned_at``.
    """
    rows = store.con.execute(
        "SELECT campaign_id, name, channel, start_time, end_time, description FROM campaigns "
        "WHERE campaign_id = ?", [campaign_id]).fetchall()
    if rows:
        cid, name, channel, start, end, description = rows[0]
        info = {"campaign_id": cid, "name": name, "channel": channel, "start_time": start, "end_time": end,
                "description": description}
    else:
        info = {"campaign_id": campaign_id, "name": None, "channel": None, "start_time": None, "end_time": None,
                "description": None}
    assigned = store.con.execute(
        "SELECT count(*), min(assigned_at) FROM campaign_assignments WHERE campaign_id = ?",
        [campaign_id]).fetchall()[0]
    if not rows and not assigned[0]:
        known = [r[0] for r in store.con.execute(
            "SELECT DISTINCT campaign_id FROM campaign_assignments ORDER BY 1 LIMIT 10").fetchall()]
        hint = f"; campaigns with assignments: {', '.join(known)}" if known else "; the store has no assignments"
        raise ValueError(f"no campaign {campaign_id!r}{hint}")
    info["assigned"] = int(assigned[0])
    info["first_assigned_at"] = assigned[1]
    return info


def campaign_window(store, info: dict, window_days: int | None = None,
                    followup_days: int = DEFAULT_FOLLOWUP_DAYS) -> CampaignWindow:
    """The window of a campaign: from the day of ``start_time`` (else of the first assignment).

    ``window_days`` defaults to the whole days from that day to ``end_time``
    (rounded up), else :data:`DEFAULT_WINDOW_DAYS`.
    """
    start_time = info.get("start_time") or info.get("first_assigned_at")
    start = as_date(start_time)
    if start is None:
        raise ValueError(f"campaign {info['campaign_id']!r} has no start_time and no assigned_at; "
                         "pass window_days and fill campaigns.start_time")
    if window_days is None:
        end_time = info.get("end_time")
        if end_time is not None and not pd.isna(end_time):
            seconds = (pd.Timestamp(end_time) - pd.Timestamp(start)).total_seconds()
            window_days = max(1, math.ceil(seconds / 86400))
        else:
            window_days = DEFAULT_WINDOW_DAYS
    data_end = as_date(store.con.execute("SELECT max(order_time) FROM orders").fetchall()[0][0])
    return CampaignWindow.from_start(start, int(window_days), int(followup_days), data_end)


def assignments(store, campaign_id: str) -> tuple[pd.DataFrame, list[str]]:
    """``customer_id, arm`` of a campaign (one row per customer) and notes on dropped rows.

    Arms are compared lower-cased; a customer with rows in both arms, or an
    arm other than treatment and control, is left out with a note.
    """
    df = store.con.execute(
        "SELECT customer_id, lower(trim(arm)) AS arm FROM campaign_assignments "
        "WHERE campaign_id = ? AND customer_id IS NOT NULL", [campaign_id]).df()
    notes = []
    other = ~df["arm"].isin(ARMS)
    if other.any():
        notes.append(f"{int(other.sum()):,} assignments with an arm other than treatment/control left out "
                     f"({', '.join(sorted(map(str, df.loc[other, 'arm'].dropna().unique()))[:5])})")
        df = df[~other]
    df = df.drop_duplicates()
    both = df["customer_id"].duplicated(keep=False)
    if both.any():
        notes.append(f"{int(both.sum()) // 2:,} customers assigned to both arms left out")
        df = df[~both]
    if df.empty:
        raise ValueError(f"campaign {campaign_id!r} has no customers in a treatment or control arm")
    return df.reset_index(drop=True), notes


def _flag(cond: ir.BooleanValue) -> ir.IntegerValue:
    """1 where ``cond`` holds, else 0."""
    return ibis.ifelse(cond, 1, 0)


def campaign_outcomes(store, campaign_id: str, window: CampaignWindow,
                      statuses: tuple[str, ...] = ("completed",)) -> tuple[pd.DataFrame, list[str]]:
    """One row per assigned customer: arm and outcomes in the window, pre-period and follow-up.

    Columns: ``customer_id, arm, converted`` (an order with a status in
    ``statuses`` inside the window, 0/1), ``orders`` (completed orders in the
    window), ``revenue`` (sum of ``net_amount`` of the window's orders:
    completed totals, credit notes negative), ``pre_converted``,
    ``followup_converted`` (the same test as ``converted`` in the pre-period
    and the follow-up), and from the campaign's email events ``sent, bounced,
    opened, clicked, unsubscribed`` (0/1 per customer).
    """
    arms, notes = assignments(store, campaign_id)
    tables = clean(store)
    o = tables.orders
    a = ibis.memtable(arms[["customer_id"]].rename(columns={"customer_id": "a_customer_id"}))
    o = o.inner_join(a, o.customer_id == a.a_customer_id)
    d = o.order_date.cast("date")
    counts = o.status.isin(list(statuses))
    in_window = (d >= window.start) & (d < window.end)
    in_pre = (d >= window.pre_start) & (d < window.start)
    in_followup = (d >= window.end) & (d < window.followup_end)
    per_customer = o.group_by(customer_id=o.customer_id).aggregate(
        converted=_flag(in_window & counts).max(),
        orders=_flag(in_window & (o.status == "completed")).sum(),
        revenue=ibis.ifelse(in_window, o.net_amount.cast("float64"), 0.0).sum(),
        pre_converted=_flag(in_pre & counts).max(),
        followup_converted=_flag(in_followup & counts).max(),
    )
    orders = store.ibis.execute(per_customer)

    e = tables.email_events
    e = e.filter((e.campaign_id == campaign_id) & e.customer_id.notnull())
    kinds = e.event_type.lower()
    email = store.ibis.execute(e.group_by(customer_id=e.customer_id).aggregate(
        **{name: _flag(kinds == typ).max() for name, typ in zip(
            ("sent", "bounced", "opened", "clicked", "unsubscribed"), EMAIL_TYPES, strict=True)}))

    df = arms.merge(orders, on="customer_id", how="left").merge(email, on="customer_id", how="left")
    for col in ("converted", "orders", "pre_converted", "followup_converted", "sent", "bounced", "opened",
                "clicked", "unsubscribed"):
        df[col] = df[col].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0).astype("float64")
    emailed_control = int(((df["arm"] == "control") & (df["sent"] > 0)).sum())
    if emailed_control:
        notes.append(f"{emailed_control:,} control customers have a 'sent' event of this campaign: "
                     "the holdout was contacted, so the lift is understated")
    if email.empty and (df["arm"] == "treatment").any():
        notes.append("no email events of this campaign: open and click rates are not available")
    return df.sort_values("customer_id").reset_index(drop=True), notes
