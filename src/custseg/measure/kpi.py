"""KPIs of every segment over time, and the cohort retention matrix.

Segment membership is the run's snapshot (``segment_memberships`` of one run)
applied to the whole history: a customer counts in the segment the run put
them in, in every period, including periods before the run. The KPIs describe
how today's segments behaved over time, not how segment membership changed
(see ``custseg compare`` for that).

Definitions (docs/measure.md), per segment and period, over completed orders
of the cleaned store:

* **active customers**: customers with at least one completed order in the period;
* **retention**: share of the customers active in the previous period who are
  active again in this one; **churn** = 1 - retention;
* **repeat purchase rate**: share of the period's active customers who had
  ordered in an earlier period (returning customers);
* **revenue** (sum of ``net_amount``), **orders** (completed), **AOV** = revenue / orders;
* **open and click rates**: emails sent in the period (one per customer and
  campaign, dated by the ``sent`` event) that were opened / clicked;
* **NPS** = 100 x (share of 9-10 answers - share of 0-6 answers) and mean
  **satisfaction** of the period's survey answers;
* **mean CLV and P(alive)** of the segment's customers in the newest
  ``clv_predictions``: a snapshot, the same in every period.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.cleaning.clean import clean
from custseg.measure.periods import (
    check_freq,
    customer_periods,
    last_order_date,
    period_end,
    period_index,
    period_label,
    period_start,
)
from custseg.profiles.base import ALL, frame_records

KPI_COLUMNS = (
    "segment", "period", "period_label", "customers", "active_customers", "active_share", "new_customers",
    "orders", "revenue", "aov", "retention", "churn", "repeat_purchase_rate", "emails_sent", "open_rate",
    "click_rate", "survey_responses", "nps", "satisfaction", "mean_clv", "mean_p_alive",
)


@dataclass
class SegmentKPIs:
    """KPIs per segment and period.

    Attributes
    ----------
    table : DataFrame
        One row per segment and period (columns :data:`KPI_COLUMNS`; ``period``
        is the first day of the period), ``(all customers)`` first.
    run_id : str or None
        The run whose memberships define the segments (None: all customers only).
    freq : str
        ``month`` or ``quarter``.
    prediction_id : str or None
        The CLV predictions behind ``mean_clv`` and ``mean_p_alive``.
    notes : list of str
    """

    table: pd.DataFrame
    run_id: str | None
    freq: str
    prediction_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def segments(self) -> list[str]:
        return list(dict.fromkeys(self.table["segment"]))

    def latest(self) -> pd.DataFrame:
        """The last period's row of every segment."""
        last = self.table["period"].max()
        return self.table[self.table["period"] == last].reset_index(drop=True)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "freq": self.freq, "prediction_id": self.prediction_id,
                "notes": list(self.notes), "kpis": frame_records(self.table)}


def _run_members(store, run_id) -> tuple[str | None, pd.DataFrame]:
    """``(run_id, customer_id/segment frame)``; no run gives an empty frame."""
    if run_id is False:
        return None, pd.DataFrame(columns=["customer_id", "segment"])
    if run_id is None:
        rows = store.con.execute(
            "SELECT run_id FROM segment_runs ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchall()
        if not rows:
            return None, pd.DataFrame(columns=["customer_id", "segment"])
        run_id = rows[0][0]
    from custseg.profiles.base import run_info

    run_info(store, run_id)
    m = store.con.execute("SELECT DISTINCT customer_id, segment FROM segment_memberships WHERE run_id = ?",
                          [run_id]).df()
    return run_id, m


def _all_customers(store, per: pd.DataFrame) -> pd.Series:
    known = store.con.execute("SELECT DISTINCT customer_id FROM customers WHERE customer_id IS NOT NULL").df()
    return pd.Series(sorted(set(known["customer_id"]) | set(per["customer_id"])), dtype="object")


def _newest_prediction(store) -> str | None:
    rows = store.con.execute(
        "SELECT prediction_id FROM clv_predictions ORDER BY prediction_id DESC LIMIT 1").fetchall()
    return rows[0][0] if rows else None


def _email_per_period(store, freq: str) -> pd.DataFrame:
    """``customer_id, period, emails_sent, emails_opened, emails_clicked`` (per customer and campaign)."""
    e = clean(store).email_events
    e = e.filter(e.customer_id.notnull())
    kind = e.event_type.lower()
    per_email = e.group_by(["customer_id", "campaign_id"]).aggregate(
        sent_time=e.event_time.min(where=kind == "sent"),
        opened=(kind == "open").any(), clicked=(kind == "click").any())
    per_email = per_email.filter(per_email.sent_time.notnull())
    per_email = per_email.mutate(period=period_index(per_email.sent_time.date(), freq))
    df = store.ibis.execute(per_email.group_by(["customer_id", "period"]).aggregate(
        emails_sent=per_email.count(), emails_opened=per_email.opened.sum(),
        emails_clicked=per_email.clicked.sum()))
    return df


def _surveys_per_period(store, freq: str) -> pd.DataFrame:
    s = clean(store).survey_responses
    s = s.filter(s.customer_id.notnull())
    s = s.mutate(period=period_index(s.response_time.date(), freq))
    return store.ibis.execute(s.select("customer_id", "period", "nps", "satisfaction"))


def _grid(segments: list[str], periods: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"segment": np.repeat(segments, len(periods)),
                         "period": np.tile(periods, len(segments))})


def segment_kpis(store, run_id: str | None = None, freq: str = "month") -> SegmentKPIs:
    """KPIs of every segment of a run, per month or quarter.

    Parameters
    ----------
    store : Store
    run_id : str, False or None, default=None
        The run whose memberships define the segments; None for the newest run
        (all customers only when the store has none); False for all customers only.
    freq : {"month", "quarter"}, default="month"

    Returns
    -------
    SegmentKPIs

    Examples
    --------
    >>> from custseg import Store
    >>> from custseg.datasets import load_demo, make_store
    >>> store = Store(":memory:"); load_demo(store, make_store(1000, seed=1))
    >>> k = segment_kpis(store, freq="quarter")
    >>> k.table.loc[0, "segment"]
    '(all customers)'
    """
    check_freq(freq)
    per = customer_periods(store, freq)
    run_id, members = _run_members(store, run_id)
    base = members["customer_id"].drop_duplicates() if run_id else _all_customers(store, per)
    members = pd.concat([pd.DataFrame({"customer_id": base.to_numpy(), "segment": ALL}),
                         members[["customer_id", "segment"]]], ignore_index=True)
    sizes = members.groupby("segment", sort=False).size()
    order = [ALL] + sorted((s for s in sizes.index if s != ALL), key=lambda s: (-sizes[s], s))
    notes = []
    if run_id:
        notes.append(f"segments of run {run_id} (a snapshot) applied to the whole history: a customer counts "
                     "in their segment of the run in every period")
    if per.empty:
        raise ValueError(f"store {store.path} has no orders of known customers; ingest orders first")

    active = per[per["orders"] > 0]
    first = active.groupby("customer_id")["period"].min().rename("first_period")
    per = per.join(first, on="customer_id")
    per["active"] = (per["orders"] > 0).astype("int64")
    per["new"] = (per["active"].astype(bool) & (per["period"] == per["first_period"])).astype("int64")
    per["returning"] = (per["active"].astype(bool) & (per["period"] > per["first_period"])).astype("int64")
    prev = pd.MultiIndex.from_frame(active[["customer_id", "period"]])
    key = pd.MultiIndex.from_arrays([per["customer_id"], per["period"] - 1])
    per["retained"] = (per["active"].astype(bool) & key.isin(prev)).astype("int64")

    periods = np.arange(int(per["period"].min()), int(per["period"].max()) + 1)
    joined = members.merge(per, on="customer_id", how="inner")
    agg = joined.groupby(["segment", "period"]).agg(
        active_customers=("active", "sum"), new_customers=("new", "sum"), returning=("returning", "sum"),
        retained=("retained", "sum"), orders=("orders", "sum"), revenue=("revenue", "sum"))
    out = _grid(order, periods).merge(agg.reset_index(), on=["segment", "period"], how="left")
    counts = ["active_customers", "new_customers", "returning", "retained", "orders"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["customers"] = out["segment"].map(sizes).astype("int64")
    out["active_share"] = out["active_customers"] / out["customers"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["aov"] = np.where(out["orders"] > 0, out["revenue"] / out["orders"].clip(lower=1), np.nan)
        prev_active = out.groupby("segment", sort=False)["active_customers"].shift(1)
        out["retention"] = np.where(prev_active > 0, out["retained"] / prev_active, np.nan)
        out["churn"] = 1 - out["retention"]
        out["repeat_purchase_rate"] = np.where(out["active_customers"] > 0,
                                               out["returning"] / out["active_customers"], np.nan)

    out = _with_email(store, freq, members, out, notes)
    out = _with_surveys(store, freq, members, out)
    prediction_id = _newest_prediction(store)
    out = _with_clv(store, prediction_id, members, out, notes)

    out["period_label"] = period_label(out["period"], freq)
    out["period"] = period_start(out["period"], freq).to_numpy()
    end = last_order_date(store)
    if end is not None and period_end(int(periods[-1]), freq) > end + pd.Timedelta(days=1):
        notes.append(f"the last {freq} ({out['period_label'].iloc[-1]}) is partial: orders end {end.date()}")
    return SegmentKPIs(out[list(KPI_COLUMNS)].reset_index(drop=True), run_id, freq, prediction_id, notes)


def _with_email(store, freq, members, out, notes) -> pd.DataFrame:
    email = _email_per_period(store, freq)
    if email.empty:
        out["emails_sent"] = 0
        out["open_rate"] = out["click_rate"] = np.nan
        return out
    e = members.merge(email, on="customer_id").groupby(["segment", "period"])[
        ["emails_sent", "emails_opened", "emails_clicked"]].sum().reset_index()
    out = out.merge(e, on=["segment", "period"], how="left")
    out["emails_sent"] = out["emails_sent"].fillna(0).astype("int64")
    sent = out["emails_sent"].where(out["emails_sent"] > 0)
    out["open_rate"] = out["emails_opened"] / sent
    out["click_rate"] = out["emails_clicked"] / sent
    return out.drop(columns=["emails_opened", "emails_clicked"])


def _with_surveys(store, freq, members, out) -> pd.DataFrame:
    s = _surveys_per_period(store, freq)
    if s.empty:
        out["survey_responses"] = 0
        out["nps"] = out["satisfaction"] = np.nan
        return out
    s = members.merge(s, on="customer_id")
    s["promoter"] = (s["nps"] >= 9).astype("float64").where(s["nps"].notna())
    s["detractor"] = (s["nps"] <= 6).astype("float64").where(s["nps"].notna())
    g = s.groupby(["segment", "period"]).agg(
        survey_responses=("customer_id", "size"), promoters=("promoter", "mean"),
        detractors=("detractor", "mean"), satisfaction=("satisfaction", "mean")).reset_index()
    g["nps"] = 100 * (g["promoters"] - g["detractors"])
    out = out.merge(g[["segment", "period", "survey_responses", "nps", "satisfaction"]],
                    on=["segment", "period"], how="left")
    out["survey_responses"] = out["survey_responses"].fillna(0).astype("int64")
    return out


def _with_clv(store, prediction_id, members, out, notes) -> pd.DataFrame:
    if prediction_id is None:
        out["mean_clv"] = out["mean_p_alive"] = np.nan
        return out
    p = store.con.execute("SELECT customer_id, clv, p_alive, as_of FROM clv_predictions WHERE prediction_id = ?",
                          [prediction_id]).df()
    snap = members.merge(p, on="customer_id").groupby("segment")[["clv", "p_alive"]].mean()
    out["mean_clv"] = out["segment"].map(snap["clv"])
    out["mean_p_alive"] = out["segment"].map(snap["p_alive"])
    as_of = p["as_of"].max() if len(p) else None
    notes.append(f"mean CLV and P(alive) from predictions {prediction_id}"
                 + (f" as of {str(as_of)[:10]}" if as_of is not None else "") + ": a snapshot, not a history")
    return out
