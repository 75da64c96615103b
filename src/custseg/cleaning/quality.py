"""The data-quality report: what is in the store and what looks wrong.

Available as data (:class:`QualityReport`, four pandas frames) and printed by
``custseg quality``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from custseg.cleaning.normalize import COUNTRY_ALIASES, GENDER_ALIASES
from custseg.store.schema import INGESTIBLE

_PROVENANCE = ("ingest_id", "source_row")
# Columns that ingestion derives from the row's content when a source has no id:
# they differ between otherwise identical rows, so duplicates are judged without them.
_DERIVED_IDS = {"orders": ("order_id",), "email_events": ("event_id",), "browsing_events": ("event_id",),
                "survey_responses": ("response_id",)}
_TIME_COLUMNS = {
    "orders": "order_time", "browsing_events": "event_time", "email_events": "event_time",
    "survey_responses": "response_time", "customers": "signup_date", "campaign_assignments": "assigned_at",
}


@dataclass
class QualityReport:
    """Data-quality findings; each attribute is a pandas frame."""

    # table, rows, exact_duplicates (extra copies), repeated_rows (distinct rows occurring
    # more than once), first, last
    tables: pd.DataFrame
    missing: pd.DataFrame     # table, column, missing, share
    rejects: pd.DataFrame     # table_name, reason, rows
    anomalies: pd.DataFrame   # table, check, rows, detail

    def to_dict(self) -> dict:
        return {k: getattr(self, k).to_dict(orient="records") for k in ("tables", "missing", "rejects", "anomalies")}


def _q(con, sql: str, params=None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _scalar(con, sql: str):
    return con.execute(sql).fetchall()[0][0]


def quality_report(store) -> QualityReport:
    """Compute the data-quality report of ``store`` (a :class:`custseg.store.Store`)."""
    con = store.con
    table_rows, missing_rows = [], []
    for name, table in INGESTIBLE.items():
        n = store.count(name)
        content = [c for c in table.column_names if c not in _PROVENANCE + _DERIVED_IDS.get(name, ())]
        cols = ", ".join(f'"{c}"' for c in content)
        dups = repeated = 0
        if n:
            dups, repeated = con.execute(
                f'SELECT coalesce(sum(c - 1), 0), count(*) FROM (SELECT count(*) AS c FROM "{name}" '
                f'GROUP BY ALL HAVING count(*) > 1)'.replace("GROUP BY ALL", f"GROUP BY {cols}")
            ).fetchall()[0]
        first = last = None
        tcol = _TIME_COLUMNS.get(name)
        if tcol and n:
            first, last = con.execute(f'SELECT min("{tcol}"), max("{tcol}") FROM "{name}"').fetchall()[0]
        table_rows.append({"table": name, "rows": n, "exact_duplicates": int(dups), "repeated_rows": int(repeated),
                           "first": first, "last": last})
        if n:
            counts = con.execute(
                "SELECT " + ", ".join(f'count(*) - count("{c}")' for c in table.column_names if c not in _PROVENANCE)
                + f' FROM "{name}"'
            ).fetchall()[0]
            for col, miss in zip([c for c in table.column_names if c not in _PROVENANCE], counts):
                if miss:
                    missing_rows.append({"table": name, "column": col, "missing": int(miss), "share": miss / n})

    rejects = _q(con, "SELECT table_name, reason, count(*) AS rows FROM rejects GROUP BY ALL ORDER BY rows DESC, 1, 2")
    anomalies = _anomalies(store)
    return QualityReport(
        tables=pd.DataFrame(table_rows),
        missing=pd.DataFrame(missing_rows, columns=["table", "column", "missing", "share"]),
        rejects=rejects,
        anomalies=pd.DataFrame(anomalies, columns=["table", "check", "rows", "detail"]),
    )


def _anomalies(store) -> list[dict]:
    from custseg.cleaning.clean import clean

    con = store.con
    out: list[dict] = []

    def add(table, check, rows, detail=""):
        if rows:
            out.append({"table": table, "check": check, "rows": int(rows), "detail": detail})

    if store.count("orders"):
        orders = clean(store, persist=False).orders
        o = store.ibis.execute(orders.aggregate(
            guests=orders.is_guest.sum(),
            guest_revenue=orders.net_amount.sum(where=orders.is_guest),
            outliers=orders.is_outlier.sum(),
            cap=orders.outlier_cap.max(),
            currency_unknown=orders.currency_unknown.sum(),
            negative_completed=((orders.status == "completed") & (orders.total < 0)).sum(),
            credit_notes=orders.is_credit.sum(),
            zero_total=((orders.status == "completed") & (orders.total == 0)).sum(),
        )).iloc[0]
        add("orders", "guest orders (no customer id or known email; kept out of customer features)",
            o.guests, f"revenue {o.guest_revenue:,.2f}" if o.guests else "")
        add("orders", "outlier order totals (modified z-score on log total > 3.5)", o.outliers,
            f"cap {o.cap:,.2f}" if o.outliers else "")
        add("orders", "currency without a rate in currency_rates", o.currency_unknown)
        add("orders", "completed orders with a negative total", o.negative_completed)
        add("orders", "credit notes (cancelled/returned with negative total; net out revenue)", o.credit_notes)
        add("orders", "completed orders with a zero total", o.zero_total)
        future = _scalar(con, "SELECT count(*) FROM orders WHERE order_time > now()::TIMESTAMP + INTERVAL 1 DAY")
        add("orders", "orders dated in the future", future)
        status = con.execute("SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC").fetchall()
        for s, n in status:
            if s not in ("completed",):
                add("orders", f"status {s}", n)
        if store.count("order_items"):
            orphan = _scalar(con, "SELECT count(*) FROM order_items i ANTI JOIN orders o USING (order_id)")
            add("order_items", "lines whose order is not in orders", orphan)
            neg = _scalar(con, "SELECT count(*) FROM order_items WHERE quantity <= 0")
            add("order_items", "lines with zero or negative quantity", neg)
    if store.count("customers"):
        known_c = set(COUNTRY_ALIASES)
        rows = con.execute("SELECT upper(trim(country)), count(*) FROM customers WHERE country IS NOT NULL GROUP BY 1").fetchall()
        unknown = [(c, n) for c, n in rows if c not in known_c]
        add("customers", "country not recognised", sum(n for _, n in unknown), ", ".join(c for c, _ in unknown[:5]))
        aliased = sum(n for c, n in rows if c in known_c and len(c) != 2)
        add("customers", "country given as a name or alpha-3 code (normalised)", aliased)
        g = con.execute("SELECT upper(replace(trim(gender), '.', '')), count(*) FROM customers WHERE gender IS NOT NULL GROUP BY 1").fetchall()
        add("customers", "gender spellings normalised", sum(n for v, n in g if v not in ("FEMALE", "MALE", "OTHER", "UNKNOWN") and v in GENDER_ALIASES))
        add("customers", "gender not recognised (set to unknown)", sum(n for v, n in g if v not in GENDER_ALIASES))
        bad_email = _scalar(con, "SELECT count(*) FROM customers WHERE email IS NOT NULL AND NOT regexp_matches(email, '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$')")
        add("customers", "malformed email addresses", bad_email)
        dup_email = _scalar(con, "SELECT count(*) FROM (SELECT lower(trim(email)) e FROM customers WHERE email IS NOT NULL GROUP BY 1 HAVING count(*) > 1)")
        add("customers", "email shared by several customer ids", dup_email)
    for name in ("email_events", "survey_responses"):
        if store.count(name):
            unmatched = _scalar(con, f"""SELECT count(*) FROM "{name}" e WHERE e.customer_id IS NULL AND
                (e.email IS NULL OR lower(trim(e.email)) NOT IN (SELECT lower(trim(email)) FROM customers WHERE email IS NOT NULL))""")
            add(name, "rows matching no customer (no id, unknown email)", unmatched)
    if store.count("browsing_events"):
        anon = _scalar(con, """SELECT count(*) FROM browsing_events b WHERE customer_id IS NULL AND anonymous_id NOT IN
            (SELECT anonymous_id FROM browsing_events WHERE customer_id IS NOT NULL AND anonymous_id IS NOT NULL)""")
        add("browsing_events", "anonymous events never linked to a customer", anon)
    return out
