"""Read-side queries of the API, on a read cursor (never the writer's connection).

Current features: a customer's row of ``service_features`` (re-evaluated live)
when there is one, else their row of the batch ``customer_features``.
Current segments: ``service_memberships`` for live runs, ``segment_memberships``
for the others.
"""

from __future__ import annotations

import datetime as dt
import math

from custseg.service.features import FEATURES_TABLE

_PROVENANCE = ("ingest_id", "source_row")


def _has(cur, table: str) -> bool:
    return bool(cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                            "AND table_name = ?", [table]).fetchall()[0][0])


def _plain(value):
    """A JSON-friendly value: NaN is null, numpy scalars become Python numbers."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _row(cur, sql: str, params: list) -> dict | None:
    res = cur.execute(sql, params)
    names = [d[0] for d in res.description]
    rows = res.fetchall()
    return {n: _plain(v) for n, v in zip(names, rows[0])} if rows else None


def current_features(cur, customer_id: str) -> tuple[dict, str | None]:
    """``(features, source)`` of a customer: ``live``, ``batch`` or ``({}, None)``."""
    live = _row(cur, "SELECT * EXCLUDE (computed_at) FROM service_features WHERE customer_id = ?", [customer_id]) \
        if _has(cur, "service_features") else None
    if live is not None:
        return live, "live"
    if _has(cur, FEATURES_TABLE):
        batch = _row(cur, f'SELECT * FROM "{FEATURES_TABLE}" WHERE customer_id = ?', [customer_id])
        if batch is not None:
            return batch, "batch"
    return {}, None


def customer(cur, service, customer_id: str) -> dict | None:
    """Everything the API tells about one customer, or None when the store does not know them."""
    profile = _row(cur, "SELECT * FROM customers WHERE customer_id = ?", [customer_id]) or {}
    for col in _PROVENANCE:
        profile.pop(col, None)
    features, source = current_features(cur, customer_id)
    segments = _customer_segments(cur, service, customer_id)
    if not profile and not features and not any(s["segments"] for s in segments):
        return None
    rec_run, recs = _recommendations(cur, customer_id)
    as_of = features.get("as_of")
    return {
        "customer_id": customer_id,
        "profile": profile,
        "features": features,
        "features_as_of": as_of.date() if isinstance(as_of, dt.datetime) else as_of,
        "features_source": source,
        "segments": segments,
        "clv": _clv(cur, customer_id),
        "recommendations": recs,
        "recommendation_run_id": rec_run,
    }


def _customer_segments(cur, service, customer_id: str) -> list[dict]:
    rows = cur.execute("SELECT run_id, segment, since, cause FROM service_memberships WHERE customer_id = ? "
                       "ORDER BY segment", [customer_id]).fetchall()
    by_run: dict[str, list] = {}
    for run_id, seg, since, cause in rows:
        by_run.setdefault(run_id, []).append((seg, since, cause))
    out = []
    for run in service.live.runs.values():
        mine = by_run.get(run.run_id, [])
        out.append({
            "run_id": run.run_id, "method": run.method, "label": run.label,
            "segments": [m[0] for m in mine],
            "since": max((m[1] for m in mine), default=None),
            "cause": max(mine, key=lambda m: m[1])[2] if mine else None,
            "plays": [_play(service.playbook.for_segment(m[0], run.method), m[0]) for m in mine],
        })
    return out


def _play(play, segment: str) -> dict:
    return {"segment": segment, "play": play.play, "objective": play.objective, "actions": list(play.actions),
            "channel": play.channel, "offer": play.offer, "cadence": play.cadence,
            "service_level": play.service_level, "kpi": play.kpi}


def _clv(cur, customer_id: str) -> dict | None:
    cols = ("as_of, p_alive, expected_purchases, expected_spend, clv, horizon_days, model_id, spend_model_id")
    if _has(cur, "service_clv"):
        live = _row(cur, f"SELECT {cols} FROM service_clv WHERE customer_id = ?", [customer_id])
        if live is not None:
            return {"source": "live", **live}
    batch = _row(cur, f"SELECT {cols} FROM clv_predictions WHERE customer_id = ? "
                      "ORDER BY prediction_id DESC LIMIT 1", [customer_id])
    return {"source": "batch", **batch} if batch is not None else None


def _recommendations(cur, customer_id: str) -> tuple[str | None, list[dict]]:
    latest = cur.execute("SELECT run_id FROM recommendations GROUP BY run_id "
                         "ORDER BY max(created_at) DESC, run_id DESC LIMIT 1").fetchall()
    if not latest:
        return None, []
    run_id = latest[0][0]
    res = cur.execute('SELECT "rank", product_id, product_name, category, score, reason FROM recommendations '
                      'WHERE run_id = ? AND customer_id = ? ORDER BY "rank"', [run_id, customer_id])
    names = [d[0] for d in res.description]
    return run_id, [{n: _plain(v) for n, v in zip(names, r)} for r in res.fetchall()]


# -- segmentations ------------------------------------------------------------------------------
def segmentations(cur, service) -> dict:
    """Live segmentations with their segments' sizes, and the runs that could not be made live."""
    sizes: dict[str, list] = {}
    for run_id, seg, n in cur.execute("SELECT run_id, segment, count(*) FROM service_memberships "
                                      "GROUP BY run_id, segment ORDER BY run_id, count(*) DESC, segment").fetchall():
        sizes.setdefault(run_id, []).append((seg, int(n)))
    totals = dict(cur.execute("SELECT run_id, count(DISTINCT customer_id) FROM service_memberships "
                              "GROUP BY run_id").fetchall())
    meta = {r[0]: r[1:] for r in cur.execute("SELECT run_id, as_of, created_at FROM segment_runs").fetchall()}
    out = []
    for run in service.live.runs.values():
        total = int(totals.get(run.run_id, 0))
        as_of, created = meta.get(run.run_id, (None, None))
        out.append({"run_id": run.run_id, "method": run.method, "label": run.label, "live_key": run.key,
                    "as_of": as_of, "created_at": created, "customers": total,
                    "segments": [{"segment": s, "customers": n, "share": n / total if total else 0.0}
                                 for s, n in sizes.get(run.run_id, [])]})
    return {"clock": service.live.clock, "segmentations": out,
            "not_live": [{"run_id": r, "reason": why} for r, why in service.live.not_live.items()]}


def run_method(cur, run_id: str) -> str | None:
    rows = cur.execute("SELECT method FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    return rows[0][0] if rows else None


def _memberships_sql(live: bool) -> str:
    return ("SELECT customer_id, segment, since FROM service_memberships WHERE run_id = $run" if live else
            "SELECT customer_id, segment, NULL::TIMESTAMP AS since FROM segment_memberships WHERE run_id = $run")


def _features_sql(cur) -> str:
    """Current features (live rows first) of every customer: the columns profiles use."""
    cols = "customer_id, recency_days, orders_count, net_revenue, aov"
    parts = []
    if _has(cur, "service_features"):
        parts.append(f"SELECT {cols} FROM service_features")
    if _has(cur, FEATURES_TABLE):
        skip = ("WHERE customer_id NOT IN (SELECT customer_id FROM service_features)"
                if _has(cur, "service_features") else "")
        parts.append(f'SELECT {cols} FROM "{FEATURES_TABLE}" {skip}')
    if not parts:
        return ("SELECT NULL::VARCHAR AS customer_id, NULL::DOUBLE AS recency_days, NULL::DOUBLE AS orders_count, "
                "NULL::DOUBLE AS net_revenue, NULL::DOUBLE AS aov WHERE false")
    return " UNION ALL ".join(parts)


def _clv_sql(cur) -> str:
    newest = ("SELECT customer_id, clv, p_alive FROM clv_predictions WHERE prediction_id = "
              "(SELECT max(prediction_id) FROM clv_predictions)")
    if _has(cur, "service_clv"):
        return (f"SELECT customer_id, clv, p_alive FROM service_clv UNION ALL "
                f"SELECT * FROM ({newest}) WHERE customer_id NOT IN (SELECT customer_id FROM service_clv)")
    return newest


def profile(cur, service, run_id: str) -> dict | None:
    """Per segment of a run (live segments for a live run): size, share, revenue share, means."""
    method = run_method(cur, run_id)
    if method is None:
        return None
    live = run_id in service.live.runs
    rows = cur.execute(
        f"""
        WITH m AS ({_memberships_sql(live)}),
             f AS ({_features_sql(cur)}),
             v AS ({_clv_sql(cur)}),
             j AS (SELECT m.segment, m.customer_id, f.recency_days, f.orders_count, f.net_revenue, f.aov, v.clv,
                          v.p_alive FROM m LEFT JOIN f USING (customer_id) LEFT JOIN v USING (customer_id)),
             base AS (SELECT count(DISTINCT customer_id) AS n,
                             sum(net_revenue) AS revenue FROM (SELECT DISTINCT customer_id, net_revenue FROM j))
        SELECT segment, count(*) AS customers, count(*) / any_value(base.n) AS share,
               sum(net_revenue) / nullif(any_value(base.revenue), 0) AS revenue_share,
               avg(recency_days), avg(orders_count), avg(net_revenue), avg(aov), avg(clv), avg(p_alive)
        FROM j, base GROUP BY segment ORDER BY customers DESC, segment
        """, {"run": run_id}).fetchall()
    total = cur.execute(f"SELECT count(DISTINCT customer_id) FROM ({_memberships_sql(live)})",
                        {"run": run_id}).fetchall()[0][0]
    names = ("segment", "customers", "share", "revenue_share", "avg_recency_days", "avg_orders_count",
             "avg_net_revenue", "avg_aov", "avg_clv", "avg_p_alive")
    return {"run_id": run_id, "method": method, "live": live, "customers": int(total),
            "segments": [{n: _plain(v) for n, v in zip(names, r)} for r in rows]}


def members(cur, service, run_id: str, segment: str | None, page: int, size: int) -> dict | None:
    """One page of a run's members (ordered by customer id), optionally of one segment."""
    if run_method(cur, run_id) is None:
        return None
    sql = _memberships_sql(run_id in service.live.runs)
    where = "WHERE segment = $segment" if segment is not None else ""
    params = {"run": run_id, **({"segment": segment} if segment is not None else {})}
    total = cur.execute(f"SELECT count(*) FROM ({sql}) {where}", params).fetchall()[0][0]
    rows = cur.execute(f"SELECT customer_id, segment, since FROM ({sql}) {where} "
                       f"ORDER BY customer_id, segment LIMIT {int(size)} OFFSET {int((page - 1) * size)}",
                       params).fetchall()
    return {"items": [{"customer_id": c, "segment": s, "since": t} for c, s, t in rows],
            "total": int(total), "page": page, "size": size}


def runs(cur, service) -> list[dict]:
    rows = cur.execute("SELECT run_id, method, as_of, created_at, n_customers FROM segment_runs "
                       "ORDER BY created_at DESC, run_id").fetchall()
    return [{"run_id": r, "method": m, "as_of": a, "created_at": c, "n_customers": n,
             "live": r in service.live.runs} for r, m, a, c, n in rows]


def changes(cur, since: int, limit: int, run_id: str | None, customer_id: str | None) -> dict:
    """The change feed after change id ``since``, oldest first."""
    where, params = ["change_id > ?"], [since]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    rows = cur.execute(
        "SELECT change_id, customer_id, run_id, from_segment, to_segment, changed_at, cause FROM segment_changes "
        f"WHERE {' AND '.join(where)} ORDER BY change_id LIMIT {int(limit)}", params).fetchall()
    names = ("change_id", "customer_id", "run_id", "from_segment", "to_segment", "changed_at", "cause")
    items = [dict(zip(names, r)) for r in rows]
    return {"items": items, "next_since": items[-1]["change_id"] if items else since}
