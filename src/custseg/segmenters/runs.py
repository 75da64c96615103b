"""Recording segmentation runs: one row in ``segment_runs``, memberships per customer.

Every segmenter (RFM, rules, clusters, value) records its runs through
:func:`record_run`, so that every interface reads runs the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable

import ibis
import pandas as pd
import pyarrow as pa


def new_run_id(method: str) -> str:
    """``<method>-YYYYMMDD-HHMMSS-xxxxxx``: sortable by time, unique."""
    return f"{method}-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def record_run(
    store,
    method: str,
    parameters: dict,
    as_of: dt.date | None,
    memberships: ibis.Table | pd.DataFrame | pa.Table,
    *,
    run_id: str | None = None,
    also: Callable | None = None,
) -> str:
    """Write a run and its memberships in one transaction; return the run id.

    Parameters
    ----------
    memberships : Ibis table (of ``store``), pandas or Arrow
        Columns ``customer_id`` and ``segment``; one row per customer for an
        exclusive segmentation, one row per (customer, segment) for tags.
    also : callable, optional
        ``also(con, run_id, temp_table)`` writes extra per-run rows (such as
        RFM scores) from the temporary table holding ``memberships``.
    """
    run_id = run_id or new_run_id(method)
    tmp = f"_run_{uuid.uuid4().hex[:8]}"
    with store.transaction() as con:
        if isinstance(memberships, ibis.Expr):
            con.execute(f'CREATE TEMP TABLE "{tmp}" AS {store.ibis.compile(memberships)}')
        else:
            con.register(f"{tmp}_src", memberships)
            con.execute(f'CREATE TEMP TABLE "{tmp}" AS SELECT * FROM "{tmp}_src"')
            con.unregister(f"{tmp}_src")
        n = con.execute(f'SELECT count(DISTINCT customer_id) FROM "{tmp}"').fetchall()[0][0]
        con.execute(
            "INSERT INTO segment_runs (run_id, method, parameters, as_of, created_at, n_customers) "
            "VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?)",
            [run_id, method, json.dumps(parameters, default=str), as_of, n],
        )
        con.execute(
            f'INSERT INTO segment_memberships (run_id, customer_id, segment) '
            f'SELECT ?, customer_id, segment FROM "{tmp}"', [run_id])
        if also is not None:
            also(con, run_id, tmp)
        con.execute(f'DROP TABLE "{tmp}"')
    return run_id


def run_parameters(store, run_id: str) -> dict:
    """The parameters a run was recorded with (thresholds, centroids, rules, ...)."""
    rows = store.con.execute("SELECT method, parameters FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        raise ValueError(f"no segmentation run {run_id!r}; see `custseg segments list`")
    return json.loads(rows[0][1])
