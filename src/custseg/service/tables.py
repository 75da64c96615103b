"""The service's own tables, created by the service (``CREATE TABLE IF NOT EXISTS``).

They hold derived, rebuildable state, which is why they are not part of the
versioned schema (:mod:`custseg.store.schema`); the schema's
``service_events`` and ``segment_changes`` hold what must last.

``service_live_runs``
    The runs evaluated live: ``run_id``, ``live_key`` (one live run per key:
    ``rfm``, ``cluster:kmeans``, ``template:lapsed``, ``rules:<set name>``,
    ``value``), ``method``, ``activated_at``.
``service_memberships``
    Current membership per live run: ``run_id``, ``customer_id``,
    ``segment``, ``since``, ``cause`` (the event id, or ``batch:<run_id>``
    for memberships taken over from the batch run).
``service_features``
    Live features of the customers re-evaluated since the batch run: the
    columns of ``customer_features`` (with their ``as_of``) and
    ``computed_at``.
``service_clv``
    Live P(alive) and CLV of those customers (value run's models).
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)

DDL = {
    "service_live_runs": "CREATE TABLE IF NOT EXISTS service_live_runs (run_id VARCHAR, live_key VARCHAR, "
                         "method VARCHAR, activated_at TIMESTAMP)",
    "service_memberships": "CREATE TABLE IF NOT EXISTS service_memberships (run_id VARCHAR, customer_id VARCHAR, "
                           "segment VARCHAR, since TIMESTAMP, cause VARCHAR)",
    "service_clv": "CREATE TABLE IF NOT EXISTS service_clv (customer_id VARCHAR, model_id VARCHAR, "
                   "spend_model_id VARCHAR, as_of DATE, horizon_days DOUBLE, p_alive DOUBLE, "
                   "expected_purchases DOUBLE, expected_spend DOUBLE, clv DOUBLE, computed_at TIMESTAMP)",
}
PRIVATE_TABLES = (*DDL, "service_features")


def create_tables(con, group_table: str) -> None:
    """Create the private tables; (re)create ``service_features`` with the live feature columns."""
    for sql in DDL.values():
        con.execute(sql)
    want = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {group_table}").fetchall()]
    have = [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = 'service_features' ORDER BY ordinal_position").fetchall()]
    if have and have[:-1] != want:
        log.warning("the feature columns changed since the last run of the service: live features are "
                    "dropped and rebuilt as events arrive")
        con.execute("DROP TABLE service_features")
        have = []
    if not have:
        con.execute(f"CREATE TABLE service_features AS SELECT *, NULL::TIMESTAMP AS computed_at "
                    f"FROM {group_table} LIMIT 0")


def activate(con, runs: dict[str, tuple[str, str]], now: dt.datetime, next_change_id, refresh=None) -> list[str]:
    """Make ``runs`` (``{run_id: (live_key, method)}``) the live runs; return the newly activated ids.

    A new run starts from its batch memberships, then ``refresh(run_id)`` (if given) updates
    them for customers whose live features are newer than the batch. When it replaces the live
    run of the same key, every customer whose segments differ between the two is recorded in
    ``segment_changes`` with cause ``batch:<run_id>``; runs no longer live are dropped.
    """
    active = dict(con.execute("SELECT run_id, live_key FROM service_live_runs").fetchall())
    by_key = {key: rid for rid, key in active.items()}
    activated = []
    for run_id, (key, method) in runs.items():
        if run_id in active:
            continue
        con.execute(
            "INSERT INTO service_memberships SELECT m.run_id, m.customer_id, m.segment, r.created_at, ? "
            "FROM segment_memberships m JOIN segment_runs r USING (run_id) WHERE m.run_id = ?",
            [f"batch:{run_id}", run_id])
        if refresh is not None:
            refresh(run_id)
        old = by_key.get(key)
        if old is not None:
            _record_switch(con, old, run_id, now, next_change_id)
        con.execute("INSERT INTO service_live_runs VALUES (?, ?, ?, ?)", [run_id, key, method, now])
        activated.append(run_id)
        log.info("live segmentation %s: run %s", key, run_id)
    for run_id in set(active) - set(runs):
        con.execute("DELETE FROM service_memberships WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM service_live_runs WHERE run_id = ?", [run_id])
    return activated


def _record_switch(con, old: str, new: str, now: dt.datetime, next_change_id) -> None:
    """Changes from the old live run's memberships to the new batch run's, per customer.

    A customer who left one segment and entered one is one change (from, to); other
    differences (tags) are one change per segment left (to NULL) or entered (from NULL).
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _svc_switch AS
        WITH o AS (SELECT customer_id, segment FROM service_memberships WHERE run_id = $old),
             n AS (SELECT customer_id, segment FROM service_memberships WHERE run_id = $new),
             gone AS (SELECT * FROM o EXCEPT SELECT * FROM n),
             came AS (SELECT * FROM n EXCEPT SELECT * FROM o),
             g AS (SELECT customer_id, min(segment) AS segment, count(*) AS k FROM gone GROUP BY customer_id),
             c AS (SELECT customer_id, min(segment) AS segment, count(*) AS k FROM came GROUP BY customer_id),
             many AS (SELECT customer_id FROM g WHERE k > 1 UNION SELECT customer_id FROM c WHERE k > 1)
        SELECT customer_id, g.segment AS from_segment, c.segment AS to_segment
        FROM g FULL JOIN c USING (customer_id) WHERE customer_id NOT IN (SELECT customer_id FROM many)
        UNION ALL SELECT customer_id, segment, NULL FROM gone WHERE customer_id IN (SELECT customer_id FROM many)
        UNION ALL SELECT customer_id, NULL, segment FROM came WHERE customer_id IN (SELECT customer_id FROM many)
        """, {"old": old, "new": new})
    n = con.execute("SELECT count(*) FROM _svc_switch").fetchall()[0][0]
    if n:
        first = next_change_id(n)
        con.execute(
            "INSERT INTO segment_changes (change_id, customer_id, run_id, from_segment, to_segment, changed_at, cause) "
            "SELECT ? - 1 + row_number() OVER (ORDER BY customer_id, from_segment NULLS LAST, to_segment), "
            "customer_id, ?, from_segment, to_segment, ?, ? FROM _svc_switch",
            [first, new, now, f"batch:{new}"])
    con.execute("DROP TABLE _svc_switch")
    con.execute("DELETE FROM service_memberships WHERE run_id = ?", [old])
    con.execute("DELETE FROM service_live_runs WHERE run_id = ?", [old])


__all__ = ["PRIVATE_TABLES", "activate", "create_tables"]
