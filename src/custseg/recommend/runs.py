"""Recommendation runs: compute in one call, keep in the store's ``recommendations`` table, read back."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd

from custseg.recommend.model import COLUMNS, Recommender

_STORED = ["run_id"] + COLUMNS + ["created_at"]


def recommend(store, customer_ids=None, n: int = 10, run_id: str | None = None,
              as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Top-``n`` products per customer with the default :class:`Recommender`.

    Parameters
    ----------
    store : Store
    customer_ids : list of str, default=None
        Default every customer the store knows.
    n : int, default=10
    run_id : str, default=None
        Segmentation run whose segments are used; default the newest.
    as_of : date or str, default=None
        Use purchases before this day; default all.

    Returns
    -------
    DataFrame
        ``customer_id, rank, product_id, product_name, category, score, reason, segment``.
    """
    return Recommender(n=n).fit(store, as_of=as_of, run_id=run_id).recommend(customer_ids)


def new_recommendation_run_id() -> str:
    """``rec-YYYYMMDD-HHMMSS-xxxxxx``: sortable by time, unique."""
    return f"rec-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def save_recommendations(store, df: pd.DataFrame) -> str:
    """Write recommendations (as :func:`recommend` returns them) as a new run; return its id."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"recommendations lack the columns {', '.join(missing)}")
    run_id = new_recommendation_run_id()
    frame = df[COLUMNS].copy()
    frame.insert(0, "run_id", run_id)
    frame["created_at"] = pd.Timestamp(dt.datetime.now())
    with store.transaction():
        store.append("recommendations", frame)
    return run_id


def list_recommendation_runs(store) -> pd.DataFrame:
    """``run_id, created_at, customers, rows`` of every stored run, newest first."""
    return store.con.execute(
        "SELECT run_id, max(created_at) AS created_at, count(DISTINCT customer_id) AS customers, count(*) AS rows "
        "FROM recommendations GROUP BY run_id ORDER BY created_at DESC, run_id DESC"
    ).df()


def _latest(store) -> str:
    rows = store.con.execute(
        "SELECT run_id FROM recommendations GROUP BY run_id ORDER BY max(created_at) DESC, run_id DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise ValueError(f"store {store.path} has no recommendations; run `custseg recommend run --db {store.path}`")
    return rows[0][0]


def load_recommendations(store, run_id: str | None = None) -> pd.DataFrame:
    """A stored run (default the newest): ``run_id`` + the recommendation columns + ``created_at``,
    ordered by customer and rank."""
    run_id = run_id or _latest(store)
    frame = store.con.execute(
        "SELECT " + ", ".join(f'"{c}"' for c in _STORED)
        + ' FROM recommendations WHERE run_id = ? ORDER BY customer_id, "rank"', [run_id]
    ).df()
    if frame.empty:
        raise ValueError(f"no recommendation run {run_id!r}; see `custseg recommend run`")
    return frame


def customer_recommendations(store, customer_id: str, run_id: str | None = None) -> pd.DataFrame:
    """One customer's rows of a stored run (default the newest), by rank."""
    run_id = run_id or _latest(store)
    frame = store.con.execute(
        "SELECT " + ", ".join(f'"{c}"' for c in _STORED)
        + ' FROM recommendations WHERE run_id = ? AND customer_id = ? ORDER BY "rank"', [run_id, str(customer_id)]
    ).df()
    if frame.empty:
        known = store.con.execute("SELECT count(*) FROM recommendations WHERE run_id = ?", [run_id]).fetchall()[0][0]
        if not known:
            raise ValueError(f"no recommendation run {run_id!r}; see `custseg recommend run`")
        raise ValueError(f"customer {customer_id!r} has no recommendations in run {run_id}")
    return frame
