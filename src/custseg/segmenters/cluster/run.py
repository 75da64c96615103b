"""Cluster runs on a store: fit on the stored features, assign every customer, record the run."""

from __future__ import annotations

import ibis.expr.types as ir
import pandas as pd

from custseg.segmenters.cluster.assign import assign_table
from custseg.segmenters.cluster.segmenter import (
    ClusterSegmenter,
    fitted_from_parameters,
)
from custseg.segmenters.runs import record_run, run_parameters

FEATURES_TABLE = "customer_features"


def stored_features(store) -> ir.Table:
    """The store's ``customer_features`` table, or a clear error when it was not built."""
    if not store.has_table(FEATURES_TABLE):
        raise ValueError(f"store {store.path} has no features yet; run `custseg features --db {store.path}` first")
    return store.table(FEATURES_TABLE)


def run_cluster(store, segmenter: ClusterSegmenter | None = None, *, features: ir.Table | None = None,
                run_id: str | None = None) -> str:
    """Fit ``segmenter`` on the store's features, assign every customer in DuckDB, record the run.

    Parameters
    ----------
    store : Store
    segmenter : ClusterSegmenter, default=None
        Unfitted or fitted; default ``ClusterSegmenter()`` (k-means, k chosen).
    features : ibis.Table, default=None
        Default: the stored ``customer_features`` table.

    Returns
    -------
    str
        The run id; the run's method is ``cluster:<method>`` and its parameters hold
        everything :meth:`ClusterSegmenter.parameters` returns.
    """
    segmenter = segmenter or ClusterSegmenter()
    features = stored_features(store) if features is None else features
    if not hasattr(segmenter, "fit_"):
        segmenter.fit(features, store.ibis)
    assigned = segmenter.assign(features).select("customer_id", "segment")
    as_of = None
    if "as_of" in features.columns:
        value = store.ibis.execute(features.as_of.max())
        as_of = value.date() if hasattr(value, "date") else value
    return record_run(store, f"cluster:{segmenter.method}", segmenter.parameters(), as_of, assigned,
                      run_id=run_id)


def cluster_sizes(store, run_id: str) -> pd.DataFrame:
    """Per cluster of a recorded run: ``cluster``, ``segment``, ``customers``, ``share``, ``rule``,
    ``precision``, ``recall`` (the rule against the model's assignment on the sample)."""
    params = run_parameters(store, run_id)
    counts = dict(store.con.execute(
        "SELECT segment, count(*) FROM segment_memberships WHERE run_id = ? GROUP BY segment", [run_id]).fetchall())
    total = sum(counts.values()) or 1
    rules = {r["cluster"]: r for r in params["rules"]["rules"]}
    rows = []
    for c, name in enumerate(params["names"]):
        r = rules.get(c, {})
        rows.append({"cluster": c, "segment": name, "customers": int(counts.get(name, 0)),
                     "share": counts.get(name, 0) / total, "rule": r.get("rule"),
                     "precision": r.get("precision"), "recall": r.get("recall")})
    return pd.DataFrame(rows)


def assign_from_run(store, run_id: str, features: ir.Table | None = None) -> ir.Table:
    """Assign customers with a recorded run's constants, without refitting (``customer_id``, ``cluster``,
    ``segment``)."""
    params = run_parameters(store, run_id)
    if "model" not in params or "preprocessing" not in params:
        raise ValueError(f"run {run_id!r} is not a cluster run")
    prep, fit, names = fitted_from_parameters(params)
    return assign_table(prep, fit, stored_features(store) if features is None else features, names)


