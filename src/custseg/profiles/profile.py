"""Segment profiles: who is in each segment of a run, and how they differ from the base.

Every number is computed in the engine (Ibis over the store); only the small
per-segment results come back as pandas. Definitions (docs/profiles.md):

* **share** = segment customers / customers in the run (the base).
* **revenue** = sum of ``net_revenue`` of the segment's customers;
  **revenue share** = segment revenue / base revenue.
* **mean, median** of every numeric feature (booleans as 0/1, so the mean is
  the share of true); medians are exact (``quantile_cont``).
* **index** = 100 * segment mean / base mean (100 = the run's average
  customer); undefined when the base mean is not positive.
* **category lift** = (segment's line revenue in the category / segment's line
  revenue) / (the same share over the base). Completed order lines before the
  features' ``as_of``.
* **mix**: share of the segment's customers with each value of ``age_band``,
  ``gender`` and ``country``, beside the base share and its index.
* **behaviour**: email open and click rates pooled over the emails sent
  (opened / sent), cart abandonment pooled over cart sessions, mean sessions.

For an overlapping run a customer counts in every segment they are in, and
the base counts them once, so segment shares may add up to more than 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from custseg.features.build import as_date
from custseg.profiles.base import (
    ALL,
    RunInfo,
    base_customers,
    features_as_of,
    features_table,
    frame_records,
    memberships,
    numeric_features,
    run_info,
    with_features,
)

MIX_COLUMNS = ("age_band", "gender", "country")
UNKNOWN = "(unknown)"
# Features shown first (in the terminal and the heat map) when the store has them.
KEY_FEATURES = (
    "recency_days", "orders_count", "net_revenue", "aov", "tenure_days", "items_per_order",
    "distinct_categories", "premium_share", "discount_rate", "return_rate", "clv_x",
    "email_open_rate", "email_click_rate", "sessions_90d", "product_views_90d",
    "cart_abandonment_rate", "age", "loyalty_member", "nps",
)


@dataclass
class RunProfile:
    """The profile of every segment of one run, as pandas frames.

    Attributes
    ----------
    info : RunInfo
        The run: id, method, as_of, base size, exclusive or overlapping.
    features_as_of : date or None
        The ``as_of`` of the features the profile reads.
    revenue : float
        Revenue of the base (every customer of the run once).
    segments : DataFrame
        One row per segment, largest first: ``segment, customers, share, revenue,
        revenue_share, revenue_per_customer``.
    means, medians, index : DataFrame
        Segments (rows, then a last row ``(all customers)``) by numeric features (columns).
    behaviour : DataFrame
        Email and browsing behaviour per segment (rows as ``means``).
    categories, products : DataFrame
        Top categories and products of each segment by revenue: ``segment, rank,
        category|product_id, revenue, share, buyers, base_share, lift``.
    mix : DataFrame
        ``segment, dimension, value, customers, share, base_share, index``.
    notes : list of str
        What the reader should know (features missing, as-of mismatch, overlapping run).
    """

    info: RunInfo
    features_as_of: dt.date | None
    revenue: float
    segments: pd.DataFrame
    means: pd.DataFrame
    medians: pd.DataFrame
    index: pd.DataFrame
    behaviour: pd.DataFrame
    categories: pd.DataFrame
    products: pd.DataFrame
    mix: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def key_features(self, limit: int | None = None) -> list[str]:
        """The features worth showing first: :data:`KEY_FEATURES` the store has, else the first numeric ones."""
        present = [f for f in KEY_FEATURES if f in self.means.columns]
        if len(present) < 3:
            present = list(self.means.columns[:20])
        return present[:limit] if limit else present

    def to_dict(self) -> dict:
        """Plain JSON-ready data (NaN as None)."""
        return {
            "run": self.info.to_dict(),
            "features_as_of": None if self.features_as_of is None else str(self.features_as_of),
            "revenue": self.revenue if np.isfinite(self.revenue) else None,
            "segments": frame_records(self.segments),
            "means": frame_records(self.means, "index"),
            "medians": frame_records(self.medians, "index"),
            "index": frame_records(self.index, "index"),
            "behaviour": frame_records(self.behaviour, "index"),
            "categories": frame_records(self.categories),
            "products": frame_records(self.products),
            "mix": frame_records(self.mix),
            "notes": list(self.notes),
        }


def profile_run(store, run_id: str | None = None, *, top: int = 10,
                mix: Sequence[str] = MIX_COLUMNS) -> RunProfile:
    """Profile every segment of a segmentation run against the run's customers.

    Parameters
    ----------
    store : Store
        A store with ``customer_features`` and the run.
    run_id : str, default=None
        The run; default the latest run of any method.
    top : int, default=10
        Categories and products kept per segment (by segment revenue).
    mix : sequence of str, default=("age_band", "gender", "country")
        Categorical feature columns whose shares make the mix.

    Returns
    -------
    RunProfile

    Examples
    --------
    >>> profile = profile_run(store, run_id)          # doctest: +SKIP
    >>> profile.segments[["segment", "customers", "share", "revenue_share"]]  # doctest: +SKIP
    >>> profile.index.loc["Champions", "net_revenue"]  # 100 = average customer  # doctest: +SKIP
    """
    if int(top) < 1:
        raise ValueError(f"top={top} must be at least 1")
    info = run_info(store, run_id)
    if not info.n_customers:
        raise ValueError(f"run {info.run_id} has no customers to profile")
    features = features_table(store)
    numeric = numeric_features(features)
    m = memberships(store, info.run_id)
    base = base_customers(store, info.run_id).mutate(segment=ibis.literal(ALL))
    rows = with_features(m, features, numeric).union(with_features(base, features, numeric))

    stats = store.ibis.execute(_stats_expr(rows, numeric))
    stats = stats.set_index("segment")
    order = sorted((s for s in stats.index if s != ALL), key=lambda s: (-stats.loc[s, "customers"], s)) + [ALL]
    stats = stats.reindex(order)
    stats.index.name = "segment"

    means = stats[[f"{c}__mean" for c in numeric]].astype("float64")
    means.columns = numeric
    medians = stats[[f"{c}__median" for c in numeric]].astype("float64")
    medians.columns = numeric
    base_mean = means.loc[ALL]
    index = 100 * means / base_mean.where(base_mean > 0)
    segments, revenue = _segment_table(stats, info)
    as_of = features_as_of(store)
    cut = as_of or info.as_of
    items = _order_lines(store, cut)
    notes = _notes(info, stats, as_of, numeric)
    rank = {s: i for i, s in enumerate(order)}
    categories = _in_order(_top_with_lift(store, m, info.run_id, items, "category", top), rank)
    products = _product_names(store, _top_with_lift(store, m, info.run_id, items, "product_id", top))
    return RunProfile(
        info=info, features_as_of=as_of, revenue=revenue, segments=segments,
        means=means, medians=medians, index=index,
        behaviour=_behaviour_frame(stats),
        categories=categories,
        products=_in_order(products, rank),
        mix=_mix(store, m, info.run_id, features, [c for c in mix if c in features.columns], stats),
        notes=notes,
    )


def _in_order(df: pd.DataFrame, rank: dict[str, int]) -> pd.DataFrame:
    """Rows of the largest segment first, then by rank within a segment."""
    if df.empty:
        return df
    key = df["segment"].map(rank).fillna(len(rank))
    return df.assign(_o=key).sort_values(["_o", "rank"], kind="stable").drop(columns="_o").reset_index(drop=True)


# -- per segment statistics ------------------------------------------------------------

def _behaviour_metrics(t: ir.Table) -> dict[str, ir.Value]:
    """Pooled email and browsing rates (keys prefixed ``b__``) from the columns present."""
    cols = set(t.columns)
    out: dict[str, ir.Value] = {}
    if "emails_sent" in cols:
        sent = t.emails_sent.fill_null(0)
        out["b__emails_sent"] = sent.mean()
        for rate in ("email_open_rate", "email_click_rate"):
            if rate in cols:
                num = (t[rate] * sent).sum()
                den = sent.sum(where=t[rate].notnull())
                out[f"b__{rate}"] = ibis.ifelse(den > 0, num / den, ibis.null("float64"))
    if "email_unsubscribed" in cols:
        out["b__unsubscribed_share"] = t.email_unsubscribed.fill_null(0).mean()
    if "sessions_30d" in cols:
        out["b__visited_30d_share"] = (t.sessions_30d.fill_null(0) > 0).cast("float64").mean()
    for mean_col in ("sessions_30d", "sessions_90d", "product_views_90d", "cart_adds_90d"):
        if mean_col in cols:
            out[f"b__{mean_col}"] = t[mean_col].fill_null(0).mean()
    if "cart_abandonment_rate" in cols and "cart_sessions" in cols:
        carts = t.cart_sessions.fill_null(0)
        num = (t.cart_abandonment_rate * carts).sum()
        den = carts.sum(where=t.cart_abandonment_rate.notnull())
        out["b__cart_abandonment_rate"] = ibis.ifelse(den > 0, num / den, ibis.null("float64"))
    return out


def _stats_expr(rows: ir.Table, numeric: list[str]) -> ir.Table:
    metrics: dict[str, ir.Value] = {
        "customers": rows.count(),
        "with_features": rows.count(where=rows._has_features),
    }
    if "net_revenue" in rows.columns:
        metrics["revenue"] = rows.net_revenue.fill_null(0).sum().cast("float64")
    for c in numeric:
        metrics[f"{c}__mean"] = rows[c].mean()
        metrics[f"{c}__median"] = rows[c].median()
    metrics.update(_behaviour_metrics(rows))
    return rows.group_by("segment").aggregate(**metrics)


def _segment_table(stats: pd.DataFrame, info: RunInfo) -> tuple[pd.DataFrame, float]:
    seg = stats.drop(index=ALL)
    base_n = float(stats.loc[ALL, "customers"])
    has_revenue = "revenue" in stats.columns
    revenue = float(stats.loc[ALL, "revenue"]) if has_revenue else float("nan")
    out = pd.DataFrame({
        "segment": seg.index,
        "customers": seg["customers"].astype("int64").to_numpy(),
        "share": (seg["customers"] / base_n).to_numpy(dtype="float64"),
        "revenue": seg["revenue"].to_numpy(dtype="float64") if has_revenue else np.nan,
    })
    out["revenue_share"] = out["revenue"] / revenue if revenue else np.nan
    out["revenue_per_customer"] = out["revenue"] / out["customers"]
    return out.reset_index(drop=True), revenue


def _behaviour_frame(stats: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in stats.columns if c.startswith("b__")]
    out = stats[cols].astype("float64")
    out.columns = [c[3:] for c in cols]
    return out


def _notes(info: RunInfo, stats: pd.DataFrame, as_of, numeric: list[str]) -> list[str]:
    notes = []
    if not info.exclusive:
        notes.append(
            f"overlapping run: {info.n_memberships:,} memberships for {info.n_customers:,} customers; "
            "a customer counts in each of their segments, so shares may add up to more than 100%")
    missing = int(stats.loc[ALL, "customers"] - stats.loc[ALL, "with_features"])
    if missing:
        notes.append(f"{missing:,} customers of the run have no row in customer_features (features count as missing)")
    if as_of is not None and info.as_of is not None and str(as_of)[:10] != str(info.as_of)[:10]:
        notes.append(f"features are as of {str(as_of)[:10]}, the run as of {str(info.as_of)[:10]}")
    if "net_revenue" not in numeric:
        notes.append("customer_features has no net_revenue (orders block): revenue is not available")
    return notes


# -- categories and products -----------------------------------------------------------

def _order_lines(store, cut) -> ir.Table:
    """Completed order lines of known customers before ``cut`` (exclusive)."""
    from custseg.cleaning.clean import clean

    items = clean(store, persist=False).order_items
    i = items.filter((items.status == "completed") & items.customer_id.notnull())
    if cut is not None:
        i = i.filter(i.order_time < ibis.timestamp(dt.datetime.combine(as_date(cut), dt.time())))
    return i.select(_icid=i.customer_id, category=i.category, product_id=i.product_id, line_amount=i.line_amount)


def _top_with_lift(store, m: ir.Table, run_id: str, items: ir.Table, key: str, top: int) -> pd.DataFrame:
    li = m.inner_join(items, m.customer_id == items._icid)
    seg_total = li.group_by(_seg="segment").aggregate(segment_revenue=li.line_amount.sum())
    k = li.filter(li[key].notnull())
    per = k.group_by(["segment", key]).aggregate(revenue=k.line_amount.sum(), buyers=k.customer_id.nunique())
    per = per.mutate(rank=ibis.row_number().over(
        group_by=per.segment, order_by=[ibis.desc(per.revenue), per[key]]) + 1)
    per = per.filter(per["rank"] <= top)

    base = base_customers(store, run_id)
    bi = base.inner_join(items, base.customer_id == items._icid)
    bk = bi.filter(bi[key].notnull())
    base_k = bk.group_by(_bkey=bk[key]).aggregate(base_revenue=bk.line_amount.sum())
    out = per.inner_join(seg_total, per.segment == seg_total._seg).drop("_seg")
    out = out.left_join(base_k, out[key] == base_k._bkey).drop("_bkey")
    df = store.ibis.execute(out)
    base_total = store.ibis.execute(bi.line_amount.sum())
    base_total = float(base_total) if pd.notna(base_total) else 0.0
    cols = ["segment", "rank", key, "revenue", "share", "buyers", "base_share", "lift"]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("segment", key) else "object") for c in cols})
    df["share"] = df["revenue"] / df["segment_revenue"].where(df["segment_revenue"] != 0)
    df["base_share"] = df["base_revenue"] / base_total if base_total else np.nan
    df["lift"] = df["share"] / df["base_share"].where(df["base_share"] > 0)
    df["rank"] = df["rank"].astype("int64")
    df["buyers"] = df["buyers"].astype("int64")
    return df.sort_values(["segment", "rank"]).reset_index(drop=True)[cols]


def _product_names(store, products: pd.DataFrame) -> pd.DataFrame:
    if products.empty:
        products.insert(3, "product_name", pd.Series(dtype="object"))
        return products
    p = store.table("products")
    ids = sorted(set(products["product_id"].astype(str)))
    names = store.ibis.execute(
        p.filter(p.product_id.isin(ids)).group_by("product_id").aggregate(product_name=p.name.min()))
    out = products.merge(names, on="product_id", how="left")
    cols = list(products.columns)
    cols.insert(cols.index("product_id") + 1, "product_name")
    return out[cols]


# -- demographic and geographic mix ----------------------------------------------------

def _mix(store, m: ir.Table, run_id: str, features: ir.Table, columns: list[str],
         stats: pd.DataFrame) -> pd.DataFrame:
    cols = ["segment", "dimension", "value", "customers", "share", "base_share", "index"]
    if not columns:
        return pd.DataFrame(columns=cols)
    base = base_customers(store, run_id).mutate(segment=ibis.literal(ALL))
    who = m.union(base)
    parts = []
    for c in columns:
        f = features.select(_mcid=features.customer_id, _value=features[c].cast("string"))
        j = who.left_join(f, who.customer_id == f._mcid)
        j = j.mutate(value=j._value.fill_null(UNKNOWN))
        parts.append(j.group_by(["segment", "value"]).aggregate(customers=j.count())
                     .mutate(dimension=ibis.literal(c)))
    expr = parts[0]
    for p in parts[1:]:
        expr = expr.union(p)
    df = store.ibis.execute(expr)
    segments = [s for s in stats.index if s != ALL]
    frames = []
    for c in columns:
        d = df[df["dimension"] == c]
        grid = d.pivot_table(index="segment", columns="value", values="customers", aggfunc="sum", fill_value=0)
        grid = grid.reindex(index=segments + [ALL], fill_value=0)
        base_counts = grid.loc[ALL]
        values = base_counts.sort_values(ascending=False, kind="stable").index.tolist()
        if c == "age_band":  # bands in age order, unknown last
            values = sorted(values, key=lambda v: (v == UNKNOWN, v != "<18", v))
        sizes = stats["customers"].reindex(grid.index).astype("float64")
        share = grid.div(sizes, axis=0)
        for s in segments:
            for v in values:
                base_share = share.loc[ALL, v]
                frames.append((s, c, v, int(grid.loc[s, v]), float(share.loc[s, v]), float(base_share),
                               100 * float(share.loc[s, v]) / base_share if base_share > 0 else np.nan))
    return pd.DataFrame(frames, columns=cols)
