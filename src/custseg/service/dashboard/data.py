"""What the dashboard's pages show, read on a read cursor (never the writer's connection).

Every function takes ``cur``, a cursor from ``service.readers.cursor()``, and
returns plain Python data (dicts and lists) for the templates. Current
features are the live rows of ``service_features`` where the service
re-evaluated a customer, else their batch row of ``customer_features``, as in
:mod:`custseg.service.queries`.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import ibis
import pandas as pd

from custseg.profiles.base import NOT_IN_RUN
from custseg.service import queries
from custseg.service.evaluators import live_key
from custseg.service.features import FEATURES_TABLE

ACTIVE_DAYS = 90
NO_SEGMENT = "(none)"
MAX_RULE_CHARS = 5_000
TOP_PRODUCTS = 5
TIMELINE_ROWS = 100
#: Feature means shown in a segmentation's heat map, when the feature table has them.
HEATMAP_COLUMNS = (
    "recency_days", "orders_count", "net_revenue", "aov", "tenure_days", "avg_days_between_orders",
    "items_per_order", "distinct_categories", "premium_share", "discount_rate", "return_rate",
    "email_open_rate", "email_click_rate", "sessions_90d", "product_views_90d", "cart_abandonment_rate",
    "loyalty_member", "age", "nps",
)


# -- helpers -----------------------------------------------------------------------------------
def plain(value):
    """A JSON-friendly copy: NaN and infinities become None, numpy scalars Python numbers, dates text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(res) -> list[dict]:
    names = [d[0] for d in res.description]
    return [{n: queries._plain(v) for n, v in zip(names, r)} for r in res.fetchall()]


def _has(cur, table: str) -> bool:
    return queries._has(cur, table)


def features_sql(cur) -> str:
    """Every column of the current features: live rows first, batch rows for the other customers."""
    live, batch = _has(cur, "service_features"), _has(cur, FEATURES_TABLE)
    if live and batch:
        return ("SELECT * EXCLUDE (computed_at) FROM service_features UNION ALL BY NAME "
                f'SELECT * FROM "{FEATURES_TABLE}" WHERE customer_id NOT IN (SELECT customer_id FROM service_features)')
    if batch:
        return f'SELECT * FROM "{FEATURES_TABLE}"'
    if live:
        return "SELECT * EXCLUDE (computed_at) FROM service_features"
    return "SELECT NULL::VARCHAR AS customer_id WHERE false"


def _feature_columns(cur) -> dict[str, str]:
    res = cur.execute(f"DESCRIBE ({features_sql(cur)})").fetchall()
    return {r[0]: r[1] for r in res}


def _numeric(dtype: str) -> bool:
    dtype = dtype.upper()
    return dtype in ("BOOLEAN", "DOUBLE", "FLOAT", "REAL") or dtype.endswith("INT") or dtype.startswith(
        ("DECIMAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"))


def run_row(cur, run_id: str) -> dict | None:
    rows = _records(cur.execute("SELECT run_id, method, parameters, as_of, created_at, n_customers "
                                "FROM segment_runs WHERE run_id = ?", [run_id]))
    if not rows:
        return None
    row = rows[0]
    try:
        row["parameters"] = json.loads(row["parameters"] or "{}")
    except (TypeError, json.JSONDecodeError):
        row["parameters"] = {}
    return row


def run_label(service, run: dict) -> str:
    live = service.live.runs.get(run["run_id"])
    if live is not None:
        return live.label
    name = run["parameters"].get("name") if isinstance(run.get("parameters"), dict) else None
    return f"{run['method']} ({name})" if name and run["method"] == "rules" else run["method"]


def memberships_sql(service, run_id: str) -> str:
    """``customer_id, segment, since`` of a run (live memberships for a live run); parameter ``$run``."""
    return queries._memberships_sql(run_id in service.live.runs)


# -- overview ----------------------------------------------------------------------------------
def overview(cur, service) -> dict:
    """Customers, revenue, active share, and every live segmentation's segments by size and revenue."""
    f = queries._features_sql(cur)
    n, buyers, revenue, active = cur.execute(
        f"SELECT count(*), count_if(orders_count > 0), coalesce(sum(net_revenue), 0), "
        f"count_if(orders_count > 0 AND recency_days <= {ACTIVE_DAYS}) FROM ({f})").fetchall()[0]
    live_rows = cur.execute("SELECT count(*) FROM service_features").fetchall()[0][0] \
        if _has(cur, "service_features") else 0
    batch_as_of = cur.execute(f'SELECT max(as_of) FROM "{FEATURES_TABLE}"').fetchall()[0][0] \
        if _has(cur, FEATURES_TABLE) else None
    segs = queries.segmentations(cur, service)
    out = []
    for s in segs["segmentations"]:
        prof = queries.profile(cur, service, s["run_id"])
        out.append({**s, "profile": prof["segments"] if prof else []})
    return {
        "customers": int(n or 0), "buyers": int(buyers or 0), "revenue": float(revenue or 0.0),
        "active": int(active or 0),
        "active_share": active / n if n else None, "active_days": ACTIVE_DAYS,
        "live_features": int(live_rows), "batch_as_of": batch_as_of, "clock": segs["clock"],
        "segmentations": out, "not_live": segs["not_live"], "runs": queries.runs(cur, service),
    }


# -- a segmentation ----------------------------------------------------------------------------
def segmentation(cur, service, run_id: str) -> dict | None:
    """Profile, feature heat map, plays and top products of a run's segments."""
    run = run_row(cur, run_id)
    if run is None:
        return None
    prof = queries.profile(cur, service, run_id)
    plays = {s["segment"]: queries._play(service.playbook.for_segment(s["segment"], run["method"]), s["segment"])
             for s in prof["segments"]}
    return {"run": run, "label": run_label(service, run), "live": prof["live"], "customers": prof["customers"],
            "segments": prof["segments"], "plays": plays, "heatmap": heatmap(cur, service, run_id),
            "products": top_products(cur, service, run_id)}


def heatmap(cur, service, run_id: str) -> dict:
    """Mean of each feature per segment as a z-score against the run's customers (mean 0, sd 1)."""
    kinds = _feature_columns(cur)
    cols = [c for c in HEATMAP_COLUMNS if c in kinds and _numeric(kinds[c])]
    value_cols = ["clv", "p_alive"]
    exprs = [f'avg(f."{c}"::DOUBLE) AS "{c}"' for c in cols] + [f"avg(v.{c}) AS {c}" for c in value_cols]
    base = [f'avg(f."{c}"::DOUBLE), stddev_pop(f."{c}"::DOUBLE)' for c in cols] + \
           [f"avg(v.{c}), stddev_pop(v.{c})" for c in value_cols]
    params = {"run": run_id}
    m, f, v = memberships_sql(service, run_id), features_sql(cur), queries._clv_sql(cur)
    joined = (f"FROM ({m}) m LEFT JOIN ({f}) f USING (customer_id) "
              f"LEFT JOIN ({v}) v USING (customer_id)")
    res = cur.execute(f"SELECT m.segment, count(*) AS n, {', '.join(exprs)} {joined} "
                      "GROUP BY m.segment ORDER BY n DESC, m.segment", params)
    names = [d[0] for d in res.description]
    rows = [dict(zip(names, r)) for r in res.fetchall()]
    overall = cur.execute(f"SELECT {', '.join(base)} FROM (SELECT DISTINCT customer_id FROM ({m})) m "
                          f"LEFT JOIN ({f}) f USING (customer_id) LEFT JOIN ({v}) v USING (customer_id)",
                          params).fetchall()[0]
    columns = cols + value_cols
    keep, z, means = [], [], []
    for i, c in enumerate(columns):
        mean, sd = overall[2 * i], overall[2 * i + 1]
        if mean is None or sd is None or not sd > 0:
            continue  # a constant or empty feature says nothing about the segments
        keep.append(c)
        z.append([None if r[c] is None else (r[c] - mean) / sd for r in rows])
        means.append([r[c] for r in rows])
    segments = [r["segment"] for r in rows]
    # rows: segments; columns: features
    return {"features": keep, "segments": segments,
            "z": [[z[j][i] for j in range(len(keep))] for i in range(len(segments))],
            "means": [[means[j][i] for j in range(len(keep))] for i in range(len(segments))]}


def top_products(cur, service, run_id: str, n: int = TOP_PRODUCTS) -> dict[str, list[dict]]:
    """Per segment: the products most of its customers bought (completed orders), with the index
    (share of the segment's customers who bought it / share of all the run's customers who did)."""
    m = memberships_sql(service, run_id)
    res = cur.execute(
        f"""
        WITH m AS ({m}),
             base AS (SELECT count(DISTINCT customer_id) AS n FROM m),
             sizes AS (SELECT segment, count(DISTINCT customer_id) AS n FROM m GROUP BY segment),
             bought AS (SELECT o.customer_id, i.product_id,
                               any_value(coalesce(i.product_name, p.name)) AS product_name,
                               any_value(coalesce(i.category, p.category)) AS category, sum(i.quantity) AS units
                        FROM orders o JOIN order_items i USING (order_id)
                        LEFT JOIN products p USING (product_id)
                        WHERE o.status = 'completed' AND o.customer_id IN (SELECT customer_id FROM m)
                          AND i.product_id IS NOT NULL
                        GROUP BY o.customer_id, i.product_id),
             per_product AS (SELECT product_id, count(*) AS buyers FROM bought GROUP BY product_id),
             seg AS (SELECT m.segment, b.product_id, any_value(b.product_name) AS product_name,
                            any_value(b.category) AS category, count(DISTINCT b.customer_id) AS buyers,
                            sum(b.units) AS units
                     FROM (SELECT DISTINCT customer_id, segment FROM m) m JOIN bought b USING (customer_id)
                     GROUP BY m.segment, b.product_id),
             ranked AS (SELECT seg.*, row_number() OVER (PARTITION BY seg.segment
                                                         ORDER BY seg.buyers DESC, seg.units DESC, seg.product_id)
                               AS rank FROM seg)
        SELECT r.segment, r.rank, r.product_id, r.product_name, r.category, r.buyers, r.units,
               r.buyers / s.n AS share, (r.buyers / s.n) / (pp.buyers / base.n) AS idx
        FROM ranked r JOIN sizes s USING (segment) JOIN per_product pp USING (product_id) CROSS JOIN base
        WHERE r.rank <= {int(n)} ORDER BY r.segment, r.rank
        """, {"run": run_id})
    out: dict[str, list[dict]] = {}
    for row in _records(res):
        out.setdefault(row["segment"], []).append(row)
    return out


# -- a segment ---------------------------------------------------------------------------------
def segment_exists(cur, service, run_id: str, segment: str) -> bool:
    rows = cur.execute(f"SELECT 1 FROM ({memberships_sql(service, run_id)}) WHERE segment = $segment LIMIT 1",
                       {"run": run_id, "segment": segment}).fetchall()
    if rows:
        return True
    # an empty segment of the run (all its customers moved out live) still has a page
    prof = cur.execute("SELECT 1 FROM segment_memberships WHERE run_id = $run AND segment = $segment LIMIT 1",
                       {"run": run_id, "segment": segment}).fetchall()
    changes = cur.execute("SELECT 1 FROM segment_changes WHERE run_id = $run AND (from_segment = $segment "
                          "OR to_segment = $segment) LIMIT 1", {"run": run_id, "segment": segment}).fetchall()
    return bool(prof or changes)


def members(cur, service, run_id: str, segment: str, search: str | None, page: int, size: int) -> dict:
    """One page of a segment's members (ordered by customer id), those whose id contains ``search``
    (ignoring case) when given, with their current recency, orders, revenue and CLV."""
    params: dict = {"run": run_id, "segment": segment}
    where = "m.segment = $segment"
    if search:
        where += " AND contains(lower(m.customer_id), lower($search))"
        params["search"] = search
    m, f, v = memberships_sql(service, run_id), queries._features_sql(cur), queries._clv_sql(cur)
    total = cur.execute(f"SELECT count(*) FROM ({m}) m WHERE {where}", params).fetchall()[0][0]
    res = cur.execute(
        f"SELECT m.customer_id, m.since, f.recency_days, f.orders_count, f.net_revenue, f.aov, v.clv, v.p_alive "
        f"FROM ({m}) m LEFT JOIN ({f}) f USING (customer_id) LEFT JOIN ({v}) v USING (customer_id) "
        f"WHERE {where} ORDER BY m.customer_id LIMIT {int(size)} OFFSET {int((page - 1) * size)}", params)
    pages = max(1, math.ceil(total / size))
    return {"items": _records(res), "total": int(total), "page": page, "size": size, "pages": pages,
            "search": search or ""}


def export_rows(cur, service, run_id: str, segment: str):
    """Every member of a segment: ``customer_id, segment, since`` ordered by customer id (the CSV export)."""
    res = cur.execute(f"SELECT customer_id, segment, since FROM ({memberships_sql(service, run_id)}) "
                      "WHERE segment = $segment ORDER BY customer_id", {"run": run_id, "segment": segment})
    return [d[0] for d in res.description], res.fetchall()


def previous_run(cur, run_id: str) -> dict | None:
    """The newest run of the same kind (method; set name for rule sets) created before ``run_id``."""
    run = run_row(cur, run_id)
    if run is None:
        return None
    kind = live_key(run["method"], run["parameters"]) or run["method"]
    rows = cur.execute(
        "SELECT run_id, method, parameters FROM segment_runs WHERE method = ? AND run_id <> ? AND "
        "(created_at < ? OR (created_at = ? AND run_id < ?)) ORDER BY created_at DESC, run_id DESC",
        [run["method"], run_id, run["created_at"], run["created_at"], run_id]).fetchall()
    for rid, method, params in rows:
        try:
            p = json.loads(params or "{}")
        except json.JSONDecodeError:
            p = {}
        if (live_key(method, p) or method) == kind:
            return run_row(cur, rid)
    return None


def migration(cur, service, run_id: str, segment: str) -> dict:
    """Where the segment's customers were in the previous run of the same kind, where that run's
    customers of the same segment are now, and the live moves in and out (``segment_changes``)."""
    prev = previous_run(cur, run_id)
    out: dict = {"previous": prev, "came_from": [], "went_to": []}
    m = memberships_sql(service, run_id)
    if prev is not None:
        params = {"run": run_id, "prev": prev["run_id"], "segment": segment}
        out["came_from"] = _records(cur.execute(
            f"""SELECT coalesce(p.segment, '{NOT_IN_RUN}') AS segment, count(DISTINCT c.customer_id) AS customers
                FROM (SELECT customer_id FROM ({m}) WHERE segment = $segment) c
                LEFT JOIN (SELECT customer_id, segment FROM segment_memberships WHERE run_id = $prev) p
                USING (customer_id) GROUP BY 1 ORDER BY customers DESC, segment""", params))
        out["went_to"] = _records(cur.execute(
            f"""SELECT coalesce(n.segment, '{NOT_IN_RUN}') AS segment, count(DISTINCT p.customer_id) AS customers
                FROM (SELECT customer_id FROM segment_memberships WHERE run_id = $prev AND segment = $segment) p
                LEFT JOIN ({m}) n USING (customer_id) GROUP BY 1 ORDER BY customers DESC, segment""", params))
    params = {"run": run_id, "segment": segment}
    out["live_in"] = _records(cur.execute(
        f"SELECT coalesce(from_segment, '{NO_SEGMENT}') AS segment, count(*) AS changes FROM segment_changes "
        "WHERE run_id = $run AND to_segment = $segment GROUP BY 1 ORDER BY changes DESC, segment", params))
    out["live_out"] = _records(cur.execute(
        f"SELECT coalesce(to_segment, '{NO_SEGMENT}') AS segment, count(*) AS changes FROM segment_changes "
        "WHERE run_id = $run AND from_segment = $segment GROUP BY 1 ORDER BY changes DESC, segment", params))
    out["recent"] = _records(cur.execute(
        "SELECT change_id, customer_id, from_segment, to_segment, changed_at, cause FROM segment_changes "
        "WHERE run_id = $run AND (from_segment = $segment OR to_segment = $segment) "
        "ORDER BY change_id DESC LIMIT 20", params))
    return out


# -- a customer --------------------------------------------------------------------------------
def customer(cur, service, customer_id: str) -> dict | None:
    """The API's view of a customer plus their timeline: orders, browsing, email, surveys, segment changes."""
    found = queries.customer(cur, service, customer_id)
    if found is None:
        return None
    # The rows the cleaning attributes to the customer: theirs by id, and those without an id that
    # carry an email they own or come from a device they own (smallest customer id, as in cleaning).
    emails = [r[0] for r in cur.execute(
        "SELECT e FROM (SELECT lower(trim(email)) AS e, min(customer_id) AS owner FROM customers "
        "WHERE nullif(trim(email), '') IS NOT NULL GROUP BY 1) WHERE owner = ?", [customer_id]).fetchall()]
    devices = [r[0] for r in cur.execute(
        "SELECT anonymous_id FROM browsing_events WHERE customer_id IS NOT NULL AND anonymous_id IS NOT NULL "
        "GROUP BY anonymous_id HAVING min(customer_id) = ?", [customer_id]).fetchall()]
    p = {"c": customer_id, "emails": emails}
    by_email = "(customer_id = $c OR (customer_id IS NULL AND lower(trim(email)) IN (SELECT unnest($emails))))"
    orders = _records(cur.execute(
        "SELECT o.order_id, o.order_time AS time, o.status, o.total, o.currency, o.channel, "
        "count(i.line_number) AS lines, string_agg(coalesce(i.product_name, i.product_id), ', ' "
        "ORDER BY i.line_number) AS products "
        f"FROM (SELECT * FROM orders WHERE {by_email}) o LEFT JOIN order_items i USING (order_id) "
        "GROUP BY ALL ORDER BY o.order_time DESC, o.order_id", p))
    browsing = _records(cur.execute(
        "SELECT event_time AS time, event_type, product_id, category, search_query, session_id "
        "FROM browsing_events WHERE customer_id = $c OR (customer_id IS NULL AND anonymous_id IN "
        "(SELECT unnest($devices))) ORDER BY event_time DESC, event_id", {"c": customer_id, "devices": devices}))
    email = _records(cur.execute(
        f"SELECT event_time AS time, event_type, campaign_id FROM email_events WHERE {by_email} "
        "ORDER BY event_time DESC, event_id", p))
    surveys = _records(cur.execute(
        "SELECT response_time AS time, nps, satisfaction, interests FROM survey_responses "
        f"WHERE {by_email} ORDER BY response_time DESC, response_id", p))
    p = [customer_id]
    changes = _records(cur.execute(
        "SELECT change_id, run_id, from_segment, to_segment, changed_at AS time, cause FROM segment_changes "
        "WHERE customer_id = ? ORDER BY change_id DESC", p))
    if found.get("clv") and found["clv"].get("source") == "batch":
        bounds = cur.execute("SELECT clv_low, clv_high, p_alive_low, p_alive_high FROM clv_predictions "
                             "WHERE customer_id = ? ORDER BY prediction_id DESC LIMIT 1", p).fetchall()
        if bounds:
            found["clv"].update(zip(("clv_low", "clv_high", "p_alive_low", "p_alive_high"),
                                    (queries._plain(b) for b in bounds[0])))
    events = (
        [{"time": o["time"], "kind": "order", "what": f"order {o['status']}",
          "detail": f"{o['order_id']}: {_money(o['total'])} {o['currency'] or ''} · {o['lines']} line(s)"
                    + (f" · {o['products']}" if o["products"] else "")} for o in orders]
        + [{"time": b["time"], "kind": "browsing", "what": b["event_type"],
            "detail": " · ".join(str(x) for x in (b["product_id"], b["category"], b["search_query"]) if x)}
           for b in browsing]
        + [{"time": e["time"], "kind": "email", "what": f"email {e['event_type']}", "detail": e["campaign_id"] or ""}
           for e in email]
        + [{"time": s["time"], "kind": "survey", "what": "survey answer",
            "detail": f"NPS {s['nps']} · satisfaction {s['satisfaction']} · {s['interests'] or ''}"} for s in surveys]
        + [{"time": c["time"], "kind": "segment", "what": "segment change",
            "detail": f"{c['from_segment'] or NO_SEGMENT} → {c['to_segment'] or NO_SEGMENT} ({c['cause']})"}
           for c in changes])
    events.sort(key=lambda e: (e["time"] is not None, e["time"] or dt.datetime.min), reverse=True)
    found.update(orders=orders, browsing=browsing, email=email, surveys=surveys, changes=changes,
                 events=events[:TIMELINE_ROWS], n_events=len(events))
    return found


def _money(v) -> str:
    return "–" if v is None else f"{v:,.2f}"


# -- campaigns ---------------------------------------------------------------------------------
def campaigns(cur) -> list[dict]:
    """Every campaign of ``campaigns`` or ``campaign_assignments``, with its arms' sizes, newest first."""
    return _records(cur.execute(
        """
        WITH a AS (SELECT campaign_id, count_if(lower(trim(arm)) = 'treatment') AS treatment,
                          count_if(lower(trim(arm)) = 'control') AS control, min(assigned_at) AS first_assigned
                   FROM campaign_assignments GROUP BY campaign_id)
        SELECT campaign_id, c.name, c.channel, coalesce(c.start_time, a.first_assigned) AS start_time, c.end_time,
               coalesce(a.treatment, 0) AS treatment, coalesce(a.control, 0) AS control
        FROM campaigns c FULL JOIN a USING (campaign_id)
        ORDER BY (coalesce(a.treatment, 0) > 0 AND coalesce(a.control, 0) > 0) DESC, start_time DESC NULLS LAST,
                 campaign_id
        """))


class ReadView:
    """A read-only stand-in for a :class:`~custseg.Store` over a read cursor, for the measurement
    functions (they read ``con``, ``ibis``, ``table`` and nothing else). Writes through it are
    refused by nothing but convention: pass it only to functions that read."""

    persist_cleaning = False

    def __init__(self, cur, path: str = "(service read cursor)"):
        self.con = cur
        self.path = path
        self.ibis = ibis.duckdb.from_connection(cur)

    def tables(self) -> list[str]:
        return [r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]

    def has_table(self, name: str) -> bool:
        return _has(self.con, name)

    def table(self, name: str):
        if not self.has_table(name):
            raise ValueError(f"the store has no table {name!r}")
        return self.ibis.table(name)


def campaign_analysis(cur, campaign_id: str, run_id: str | None) -> dict:
    """:func:`custseg.measure.analyze_campaign` on the read cursor: lift per segment with intervals."""
    from custseg.measure import analyze_campaign

    result = analyze_campaign(ReadView(cur), campaign_id, segments=run_id or None)
    conv = result.conversion
    rev = result.revenue
    rows = []
    for c, r in zip(conv.to_dict("records"), rev.to_dict("records")):
        rows.append(plain({
            "segment": c["segment"], "n_treatment": c["n_treatment"], "n_control": c["n_control"],
            "rate_treatment": c["rate_treatment"], "rate_control": c["rate_control"],
            "lift": c["lift"], "lift_low": c["lift_low"], "lift_high": c["lift_high"],
            "p_value": c["p_value"], "p_holm": c["p_holm"], "significant": bool(c["significant"]),
            "verdict": c["verdict"],
            "rpr_treatment": r["revenue_per_recipient_treatment"], "rpr_control": r["revenue_per_recipient_control"],
            "rpr_lift": r["lift"], "rpr_lift_low": r["lift_low"], "rpr_lift_high": r["lift_high"],
            "rpr_p_holm": r["p_holm"],
        }))
    return {"campaign": plain(result.campaign), "window": plain(result.window.to_dict()) if result.window else None,
            "alpha": result.alpha, "segments_from": result.segments_from, "notes": list(result.notes),
            "rows": rows}


# -- the rule editor ---------------------------------------------------------------------------
FEATURES_VIEW = "_dashboard_features"


def features_table(cur):
    """``(backend, table)``: the current features as an Ibis table on the cursor.

    A temporary view of the cursor's own connection (nothing is written to the store);
    ``backend.sql(...)`` is avoided because ibis 12 calls a method DuckDB 2 no longer has there.
    """
    cur.execute(f"CREATE OR REPLACE TEMP VIEW {FEATURES_VIEW} AS {features_sql(cur)}")
    backend = ibis.duckdb.from_connection(cur)
    return backend, backend.table(FEATURES_VIEW)


def rule_columns(cur) -> list[dict]:
    """The feature columns a rule may use, with their rule types."""
    from custseg.segmenters.rules.language import column_kinds

    _, table = features_table(cur)
    return [{"name": n, "kind": k} for n, k in column_kinds(table.schema()).items() if n != "customer_id"]


def check_rule(cur, text: str) -> dict:
    """Parse and check a rule against the current features; count the customers it matches.

    Returns ``{"valid": True, "count", "total", "share", "today", "thresholds"}`` or
    ``{"valid": False, "error": {"message", "reason", "line", "col", "start", "suggestion"}}``.
    """
    from custseg.segmenters.rules import RuleError, RuleSegmenter, parse_rule

    if not text.strip():
        return {"valid": False, "error": {"message": "type a rule, e.g. recency_days > 180 and orders_count >= 2",
                                          "reason": "empty rule", "line": None, "col": None, "start": None,
                                          "suggestion": None}}
    if len(text) > MAX_RULE_CHARS:
        return {"valid": False, "error": {"message": f"a rule may have at most {MAX_RULE_CHARS:,} characters",
                                          "reason": "too long", "line": None, "col": None, "start": None,
                                          "suggestion": None}}
    backend, table = features_table(cur)
    try:
        parse_rule(text, table.schema())
        seg = RuleSegmenter({"name": "Rule editor", "segments": [{"name": "match", "rule": text}]}).fit(table, backend)
    except RuleError as exc:
        return {"valid": False, "error": {"message": exc._message(), "reason": exc.reason, "line": exc.line,
                                          "col": exc.col, "start": exc.start, "suggestion": exc.suggestion,
                                          "text": str(exc)}}
    except ValueError as exc:  # a statistic without a value, a rule needing today without as_of, ...
        return {"valid": False, "error": {"message": str(exc).splitlines()[0], "reason": str(exc), "line": None,
                                          "col": None, "start": None, "suggestion": None}}
    cond = seg.conditions(table)["match"]
    count, total = backend.execute(table.aggregate(n=cond.cast("int64").sum(), total=table.count())).iloc[0]
    count, total = int(count or 0), int(total or 0)
    return {"valid": True, "count": count, "total": total, "share": count / total if total else None,
            "today": seg.as_of_.isoformat() if seg.as_of_ else None, "thresholds": plain(seg.thresholds_)}
