"""The batch pipeline as plain functions: features to the store, RFM runs, summaries.

The CLI, the Python API and (later) the service all call these, so every
interface shows the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from custseg.features import BLOCKS, build_features
from custseg.segmenters.rfm import RFMSegmenter, run_rfm

FEATURES_TABLE = "customer_features"
Step = Callable[[str], None]


def build_and_store_features(store, as_of: dt.date | str | None = None, *, include: Iterable[str] = BLOCKS,
                             cap_outliers: bool = False) -> int:
    """Build features and write them to the ``customer_features`` table; return its row count."""
    if store.count("orders") == 0 and store.count("customers") == 0:
        raise ValueError(f"store {store.path} has no customers or orders; ingest data first (custseg ingest)")
    expr = build_features(store, as_of, include=include, cap_outliers=cap_outliers)
    return store.replace(FEATURES_TABLE, expr)


def features_frame(store) -> pd.DataFrame:
    """The stored features as pandas."""
    return store.to_pandas(_features_table(store))


def _features_table(store):
    if not store.has_table(FEATURES_TABLE):
        raise ValueError(f"store {store.path} has no features yet; run `custseg features --db {store.path}`")
    return store.table(FEATURES_TABLE)


def segment_rfm(store, *, method: str = "quantile", thresholds=None, segment_map=None) -> str:
    """An RFM run over the stored features; returns the run id."""
    features = _features_table(store)
    return run_rfm(store, RFMSegmenter(method=method, thresholds=thresholds, segment_map=segment_map),
                   features=features)


def list_runs(store) -> pd.DataFrame:
    return store.con.execute(
        "SELECT run_id, method, as_of, created_at, n_customers FROM segment_runs ORDER BY created_at DESC, run_id"
    ).df()


def latest_run(store, method: str | None = None) -> str:
    sql = "SELECT run_id FROM segment_runs"
    params: list = []
    if method:
        sql += " WHERE method = ?"
        params.append(method)
    rows = store.con.execute(sql + " ORDER BY created_at DESC, run_id DESC LIMIT 1", params).fetchall()
    if not rows:
        raise ValueError(f"store {store.path} has no segmentation runs; run `custseg segment rfm` first")
    return rows[0][0]


def _check_run(store, run_id: str) -> None:
    if not store.con.execute("SELECT count(*) FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]:
        raise ValueError(f"no segmentation run {run_id!r}; see `custseg segments list`")


def segment_summary(store, run_id: str | None = None) -> pd.DataFrame:
    """Per segment of a run: size, share, revenue share and mean recency, frequency, monetary.

    RFM runs use the scores recorded with the run; other runs (rules, clusters) use the
    stored features (recency_days, orders_count, net_revenue). Shares of overlapping runs
    are of the run's distinct customers, so they may add up to more than 100%.
    """
    run_id = run_id or latest_run(store)
    _check_run(store, run_id)
    method = store.con.execute("SELECT method FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if method == "rfm":
        source = """SELECT m.segment, m.customer_id, s.recency_days, s.frequency, s.monetary
                    FROM segment_memberships m
                    LEFT JOIN rfm_scores s ON s.run_id = m.run_id AND s.customer_id = m.customer_id
                    WHERE m.run_id = ?"""
    elif store.has_table(FEATURES_TABLE):
        source = f"""SELECT m.segment, m.customer_id, f.recency_days, f.orders_count AS frequency,
                            f.net_revenue AS monetary
                     FROM segment_memberships m LEFT JOIN "{FEATURES_TABLE}" f USING (customer_id)
                     WHERE m.run_id = ?"""
    else:
        source = """SELECT segment, customer_id, NULL::DOUBLE AS recency_days, NULL::DOUBLE AS frequency,
                           NULL::DOUBLE AS monetary FROM segment_memberships WHERE run_id = ?"""
    return store.con.execute(
        f"""
        WITH m AS ({source}),
        base AS (SELECT count(DISTINCT customer_id) AS n,
                        sum(monetary) AS revenue FROM (SELECT DISTINCT customer_id, monetary FROM m))
        SELECT segment,
               count(*) AS customers,
               count(*) / any_value(base.n) AS share,
               coalesce(sum(monetary), 0) / nullif(any_value(base.revenue), 0) AS revenue_share,
               avg(recency_days) AS avg_recency_days,
               avg(frequency) AS avg_frequency,
               avg(monetary) AS avg_monetary
        FROM m, base GROUP BY segment ORDER BY customers DESC, segment
        """,
        [run_id],
    ).df()


def memberships(store, run_id: str | None = None) -> pd.DataFrame:
    run_id = run_id or latest_run(store)
    _check_run(store, run_id)
    return store.con.execute(
        "SELECT m.customer_id, m.segment, s.r_score, s.f_score, s.m_score FROM segment_memberships m "
        "LEFT JOIN rfm_scores s USING (run_id, customer_id) WHERE m.run_id = ? ORDER BY m.customer_id",
        [run_id],
    ).df()


def customer_profile(store, customer_id: str) -> dict:
    """Everything the store knows about one customer: record, features, segments, recent orders."""
    con = store.con
    record = con.execute("SELECT * FROM customers WHERE customer_id = ?", [customer_id]).df()
    features = (con.execute(f'SELECT * FROM "{FEATURES_TABLE}" WHERE customer_id = ?', [customer_id]).df()
                if store.has_table(FEATURES_TABLE) else pd.DataFrame())
    orders = con.execute(
        "SELECT order_id, order_time, status, total, currency FROM orders WHERE customer_id = ? "
        "ORDER BY order_time DESC LIMIT 10", [customer_id]).df()
    if record.empty and features.empty and orders.empty:
        raise ValueError(f"no customer {customer_id!r} in store {store.path}")
    segments = con.execute(
        "SELECT r.run_id, r.method, r.as_of, m.segment FROM segment_memberships m JOIN segment_runs r USING (run_id) "
        "WHERE m.customer_id = ? ORDER BY r.created_at DESC", [customer_id]).df()
    return {
        "customer": record.iloc[0].to_dict() if not record.empty else {},
        "features": features.iloc[0].to_dict() if not features.empty else {},
        "segments": segments,
        "recent_orders": orders,
    }


def export(store, what: str, path: str | Path, fmt: str | None = None, run_id: str | None = None) -> int:
    """Write ``features`` or ``memberships`` (of ``run_id``, default the latest) to CSV or Parquet."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"export format {fmt!r} must be csv or parquet")
    if what == "features":
        _features_table(store)
        rel = store.con.sql(f'SELECT * FROM "{FEATURES_TABLE}" ORDER BY customer_id')
    elif what == "memberships":
        run_id = run_id or latest_run(store)
        _check_run(store, run_id)
        rel = store.con.sql(
            "SELECT m.run_id, m.customer_id, m.segment, s.r_score, s.f_score, s.m_score, "
            "s.recency_days, s.frequency, s.monetary FROM segment_memberships m "
            f"LEFT JOIN rfm_scores s USING (run_id, customer_id) WHERE m.run_id = '{run_id.replace(chr(39), '')}' "
            "ORDER BY m.customer_id")
    else:
        raise ValueError(f"can export 'features' or 'memberships', not {what!r}")
    if not path.parent.exists():
        raise ValueError(f"folder {path.parent} does not exist")
    if fmt == "csv":
        rel.write_csv(str(path))
    else:
        rel.write_parquet(str(path))
    return int(store.con.execute(
        f"SELECT count(*) FROM read_{'csv' if fmt == 'csv' else 'parquet'}(?)", [str(path)]).fetchall()[0][0])
