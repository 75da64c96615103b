"""What every profile reads: a run, the customers in it, and their features.

A profile is written over the generic run tables (``segment_runs`` and
``segment_memberships``), the stored ``customer_features`` and the cleaned
order items, so it works for every segmenter (RFM, rules, templates,
clusters) and for exclusive runs (one segment per customer) as well as
overlapping ones (tags: several segments per customer).

The *base* of a run is the set of distinct customers in its memberships: every
share, index and lift compares a segment with that base, never with customers
the run left out.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import ibis.expr.types as ir
import pandas as pd

FEATURES_TABLE = "customer_features"
ALL = "(all customers)"
NOT_IN_RUN = "(not in run)"
# Columns of customer_features that are not measurements of the customer.
NOT_FEATURES = ("customer_id", "as_of")


@dataclass(frozen=True)
class RunInfo:
    """One row of ``segment_runs`` and the shape of its memberships.

    Attributes
    ----------
    exclusive : bool
        True when every customer of the run is in exactly one segment.
    n_customers : int
        Distinct customers in the run (the base).
    n_memberships : int
        Membership rows; larger than ``n_customers`` for an overlapping run.
    """

    run_id: str
    method: str
    as_of: dt.date | None
    created_at: dt.datetime | None
    parameters: dict = field(repr=False)
    n_customers: int
    n_memberships: int

    @property
    def exclusive(self) -> bool:
        return self.n_memberships == self.n_customers

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "method": self.method,
            "as_of": None if self.as_of is None else str(self.as_of)[:10],
            "created_at": None if self.created_at is None else str(self.created_at),
            "n_customers": self.n_customers, "n_memberships": self.n_memberships,
            "exclusive": self.exclusive,
        }


def run_info(store, run_id: str | None = None) -> RunInfo:
    """The run ``run_id`` (default: the latest run); a clear error when there is none."""
    if run_id is None:
        from custseg.pipeline import latest_run

        run_id = latest_run(store)
    rows = store.con.execute(
        "SELECT run_id, method, parameters, as_of, created_at FROM segment_runs WHERE run_id = ?",
        [run_id]).fetchall()
    if not rows:
        raise ValueError(f"no segmentation run {run_id!r}; see `custseg segments list`")
    run_id, method, parameters, as_of, created_at = rows[0]
    counts = store.con.execute(
        "SELECT count(DISTINCT customer_id), count(*) FROM "
        "(SELECT DISTINCT customer_id, segment FROM segment_memberships WHERE run_id = ?)", [run_id]).fetchall()[0]
    try:
        params = json.loads(parameters) if parameters else {}
    except json.JSONDecodeError:
        params = {}
    return RunInfo(run_id, method, as_of, created_at, params if isinstance(params, dict) else {},
                   int(counts[0]), int(counts[1]))


def previous_run(store, info: RunInfo) -> str | None:
    """The latest run of the same method recorded before ``info`` (None when it is the first)."""
    rows = store.con.execute(
        "SELECT run_id FROM segment_runs WHERE method = ? AND run_id <> ? "
        "AND (created_at < ? OR (created_at = ? AND run_id < ?)) "
        "ORDER BY created_at DESC, run_id DESC LIMIT 1",
        [info.method, info.run_id, info.created_at, info.created_at, info.run_id]).fetchall()
    return rows[0][0] if rows else None


def memberships(store, run_id: str) -> ir.Table:
    """``customer_id, segment`` of a run, one row per (customer, segment)."""
    m = store.table("segment_memberships")
    return m.filter(m.run_id == run_id).select("customer_id", "segment").distinct()


def base_customers(store, run_id: str) -> ir.Table:
    """The distinct customers of a run (its base)."""
    m = store.table("segment_memberships")
    return m.filter(m.run_id == run_id).select("customer_id").distinct()


def features_table(store) -> ir.Table:
    if not store.has_table(FEATURES_TABLE):
        raise ValueError(f"store {store.path} has no features yet; run `custseg features --db {store.path}`")
    return store.table(FEATURES_TABLE)


def numeric_features(features: ir.Table) -> list[str]:
    """Feature columns that have a mean: numbers, and booleans (as the share of true)."""
    out = []
    for name, dtype in features.schema().items():
        if name in NOT_FEATURES:
            continue
        if dtype.is_numeric() or dtype.is_boolean():
            out.append(name)
    return out


def with_features(rows: ir.Table, features: ir.Table, columns: list[str]) -> ir.Table:
    """``rows`` (with ``customer_id``) left-joined to feature ``columns``.

    Booleans become 0/1 doubles (their mean is the share of true); ``_has_features``
    says whether the customer has a row in the features table.
    """
    schema = features.schema()
    f = features.select(
        _fcid=features.customer_id,
        **{c: features[c].cast("float64") if schema[c].is_boolean() else features[c] for c in columns},
    )
    joined = rows.left_join(f, rows.customer_id == f._fcid)
    return joined.mutate(_has_features=joined._fcid.notnull()).drop("_fcid")


def features_as_of(store) -> dt.date | None:
    rows = store.con.execute(f'SELECT max(as_of) FROM "{FEATURES_TABLE}"').fetchall()
    value = rows[0][0] if rows else None
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def segment_sizes(store, run_id: str) -> pd.DataFrame:
    """``segment, customers`` of a run, largest first (no features needed)."""
    m = memberships(store, run_id)
    df = store.ibis.execute(m.group_by("segment").aggregate(customers=m.count()))
    df["customers"] = df["customers"].astype("int64")
    return df.sort_values(["customers", "segment"], ascending=[False, True]).reset_index(drop=True)


def frame_records(df: pd.DataFrame, orient: str = "records"):
    """A frame as JSON-ready Python data: NaN becomes None, dates ISO strings."""
    return json.loads(df.to_json(orient=orient, date_format="iso"))
