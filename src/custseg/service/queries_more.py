"""Queries of the audience, migration, campaign and admin endpoints.

The batch library functions these endpoints reuse (``plan_audience``,
``compare_runs``, ``analyze_campaign``, ``create_key``, ``delete_customer``,
...) take a :class:`custseg.Store`. :class:`StoreView` is a Store over a
connection the caller already has: a read cursor of the pool for the reads (so
they never touch the writer's connection, and see the last committed state),
or the writer's connection inside its transaction for the writes (then
``transaction()`` does not open a second one). The library code runs unchanged,
so the API gives the numbers the CLI gives.

Writes go through :func:`run_on_writer`: ``service.writer.call(fn, *args)``
runs ``fn(con, *args)`` on the writer thread inside a transaction.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator

import ibis
import pandas as pd

from custseg.service.queries import _plain as _plain_scalar
from custseg.store import Store

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """What a request names does not exist (the API answers 404 with this message)."""


class Conflict(RuntimeError):
    """The request contradicts what the store holds (409)."""


class Unprocessable(ValueError):
    """The request is well formed but cannot be done (422); ``loc`` says which parameter."""

    def __init__(self, message: str, loc: tuple = ()):
        super().__init__(message)
        self.loc = loc


@contextlib.contextmanager
def http_errors() -> Iterator[None]:
    """The errors of these queries as HTTP answers: 404, 409, 422 (with ``loc``), 503 when busy."""
    import duckdb
    from fastapi import HTTPException
    from fastapi.exceptions import RequestValidationError

    from custseg.service.writer import ServiceBusy

    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except Unprocessable as exc:
        raise RequestValidationError([{"type": "value_error", "loc": exc.loc, "msg": str(exc), "input": None}]) \
            from None
    except ServiceBusy as exc:
        raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from None
    except TimeoutError:
        raise HTTPException(503, detail="the writer did not get to this request in time; try again",
                            headers={"Retry-After": "1"}) from None
    except duckdb.TransactionException as exc:
        log.warning("write conflict: %s", exc)
        raise HTTPException(409, detail="a concurrent write touched the same rows; nothing was changed, "
                                        "send the request again") from None


# -- a Store over a cursor ----------------------------------------------------------------------
class StoreView(Store):
    """A :class:`custseg.Store` over an open DuckDB connection or cursor, which it does not own.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A cursor of the store (``store.con.cursor()``) or the writer's connection.
    path : str
        For messages only.
    in_transaction : bool, default=False
        The caller holds a transaction on ``con``: :meth:`transaction` then runs inside it
        (commit and rollback stay with the caller) instead of opening another.
    backend : ibis backend, default=None
        An Ibis backend over ``con`` to reuse; default a new one (``ibis.duckdb.from_connection``).
    """

    def __init__(self, con, *, path: str = "", in_transaction: bool = False, backend=None):  # noqa: D107
        self.path = path
        self.read_only = False
        self.migrations_applied = []
        self.con = con
        self.ibis = backend if backend is not None else ibis.duckdb.from_connection(con)
        self._in_transaction = in_transaction

    def close(self) -> None:
        """Nothing: the connection belongs to the caller."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator:
        if self._in_transaction:
            yield self.con
            return
        with super().transaction() as con:
            yield con


def read_view(service, cur) -> StoreView:
    """A Store over a read cursor of the service."""
    return StoreView(cur, path=str(service.store.path))


def _write_view(service, con) -> StoreView:
    store = service.store
    backend = store.ibis if con is store.con else None
    return StoreView(con, path=str(store.path), in_transaction=True, backend=backend)


# -- writes on the writer thread ----------------------------------------------------------------
def run_on_writer(service, fn: Callable, *args, timeout: float = 30.0):
    """``fn(con, *args)`` inside a transaction on the writer thread; its result, or its exception.

    Uses ``service.writer.call`` (the writer's hook: the function runs between event groups,
    in a transaction committed after it returns, rolled back if it raises).
    """
    return service.writer.call(fn, *args, timeout=timeout)




# -- helpers ------------------------------------------------------------------------------------
def _plain(value):
    """A JSON-friendly scalar: NaN / NaT are None, numpy scalars Python ones, timestamps datetimes."""
    if isinstance(value, pd.Timestamp) or value is pd.NaT:
        return None if pd.isna(value) else value.to_pydatetime()
    return _plain_scalar(value)


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def run_exists(cur, run_id: str) -> bool:
    return bool(cur.execute("SELECT count(*) FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()[0][0])


def _no_run(run_id: str) -> NotFound:
    return NotFound(f"no segmentation run {run_id!r}; see GET /v1/runs for the run ids")


# -- audiences ----------------------------------------------------------------------------------
ARMS = ("treatment", "control")


def audience(cur, service, run_id: str, segment: str, control: float, seed: int, arm: str = "all") -> dict:
    """The audience of ``segment`` of run ``run_id``, as ``custseg audience export`` plans it.

    Members with email consent and a usable address (one customer per address), each in the
    ``treatment`` arm or the seeded ``control`` holdout (``control`` of each segment); the
    excluded customers are counted, not listed. Nothing is written.
    """
    from custseg.targeting import UnknownSegment, plan_audience

    if not run_exists(cur, run_id):
        raise _no_run(run_id)
    try:
        plan = plan_audience(read_view(service, cur), segment, run_id=run_id, holdout=control, seed=seed)
    except UnknownSegment as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise Unprocessable(str(exc), ("query", "segment")) from None
    return _audience_body(service, plan, arm)


def _audience_body(service, plan, arm: str = "all") -> dict:
    m = plan.members
    m = m[m["status"].isin(ARMS if arm == "all" else (arm,))]
    plays = {s: service.playbook.for_segment(s, plan.method) for s in plan.segments}
    members = [{"customer_id": str(r.customer_id), "segment": r.segment, "arm": r.status,
                "email": (None if pd.isna(r.email) else str(r.email).strip()),
                "first_name": _plain(r.first_name), "last_name": _plain(r.last_name),
                "play": plays[r.segment].play, "offer": plays[r.segment].offer}
               for r in m.itertuples(index=False)]
    counts = plan.counts()
    return {
        "run_id": plan.run_id, "method": plan.method, "segments": list(plan.segments),
        "control": plan.holdout_share, "seed": plan.seed, "arm": arm, **counts,
        "control_share": counts["holdout"] / counts["eligible"] if counts["eligible"] else None,
        "per_segment": _records(plan.per_segment), "notes": list(plan.notes),
        "members": members,
    }


AUDIENCE_CSV_COLUMNS = ("customer_id", "segment", "arm", "email", "first_name", "last_name", "play", "offer")


def audience_csv(body: dict) -> str:
    """The members of an audience answer as CSV (a header row, UTF-8 text)."""
    frame = pd.DataFrame(body["members"], columns=list(AUDIENCE_CSV_COLUMNS))
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue()


def record_audience(service, run_id: str | None, segment, control: float, seed: int,
                    campaign_id: str | None) -> dict:
    """Record an audience as a campaign (both arms) on the writer thread, as the CLI's export does."""
    from custseg.targeting import CampaignConflict, EmptyAudience, UnknownSegment
    from custseg.targeting import record_audience as record

    def write(con):
        view = _write_view(service, con)
        if run_id is not None and not run_exists(con, run_id):
            raise _no_run(run_id)
        return record(view, segment, run_id=run_id, holdout=control, seed=seed, campaign_id=campaign_id)

    try:
        done = run_on_writer(service, write)
    except UnknownSegment as exc:
        raise NotFound(str(exc)) from None
    except CampaignConflict as exc:
        raise Conflict(str(exc)) from None
    except EmptyAudience as exc:
        raise Unprocessable(str(exc), ("body", "segment")) from None
    except ValueError as exc:
        if "has no segmentation runs" in str(exc):
            raise NotFound(str(exc)) from None
        raise Unprocessable(str(exc), ("body",)) from None
    body = _audience_body(service, done.plan)
    del body["members"], body["arm"]
    return {"campaign_id": done.campaign_id, "reused": done.reused, **body, "notes": done.notes}


# -- migration ----------------------------------------------------------------------------------
def migration(cur, service, run_id: str, from_run: str | None) -> dict:
    """Where the customers of ``from_run`` are in ``run_id``: the library's ``compare_runs``."""
    from custseg.profiles import compare_runs
    from custseg.profiles.base import previous_run, run_info

    if not run_exists(cur, run_id):
        raise _no_run(run_id)
    view = read_view(service, cur)
    if from_run is None:
        from_run = previous_run(view, run_info(view, run_id))
        if from_run is None:
            raise NotFound(f"run {run_id!r} is the first run of its method: there is no earlier run to compare "
                           "with; pass from_run (see GET /v1/runs)")
    elif not run_exists(cur, from_run):
        raise NotFound(f"no segmentation run {from_run!r} (from_run); see GET /v1/runs for the run ids")
    c = compare_runs(view, from_run, run_id)
    counts = c.counts
    cells = c.long()
    return {
        "from_run": c.run_a.to_dict(), "to_run": c.run_b.to_dict(),
        "customers_in_both": c.customers_in_both, "same_segment": c.same_segment,
        "same_segment_share": _plain(c.same_segment_share),
        "rows": [str(x) for x in counts.index], "columns": [str(x) for x in counts.columns],
        "counts": [[int(v) for v in row] for row in counts.to_numpy()],
        "cells": [{"from_segment": str(r.from_segment), "to_segment": str(r.to_segment),
                   "customers": int(r.customers), "share": _plain(r.share)} for r in cells.itertuples(index=False)],
        "growth": [{"segment": str(r.segment), "customers_from": int(r.customers_a),
                    "customers_to": int(r.customers_b), "change": int(r.change), "growth": _plain(r.growth)}
                   for r in c.growth.itertuples(index=False)],
    }


# -- campaigns ----------------------------------------------------------------------------------
_CAMPAIGNS_SQL = """
WITH a AS (
    SELECT campaign_id,
           count(*) FILTER (WHERE lower(trim(arm)) = 'treatment') AS treatment,
           count(*) FILTER (WHERE lower(trim(arm)) = 'control') AS control,
           min(assigned_at) AS first_assigned_at
    FROM campaign_assignments WHERE campaign_id IS NOT NULL GROUP BY campaign_id),
c AS (SELECT campaign_id, any_value(name) AS name, any_value(channel) AS channel,
             min(start_time) AS start_time, max(end_time) AS end_time, any_value(description) AS description
      FROM campaigns WHERE campaign_id IS NOT NULL GROUP BY campaign_id),
ids AS (SELECT campaign_id FROM c UNION SELECT campaign_id FROM a)
SELECT ids.campaign_id, c.name, c.channel, c.start_time, c.end_time, c.description,
       coalesce(a.treatment, 0), coalesce(a.control, 0), a.first_assigned_at
FROM ids LEFT JOIN c USING (campaign_id) LEFT JOIN a USING (campaign_id)
"""
_CAMPAIGN_COLUMNS = ("campaign_id", "name", "channel", "start_time", "end_time", "description", "treatment",
                     "control", "first_assigned_at")


def campaigns(cur, page: int, size: int) -> dict:
    """Campaigns of ``campaigns`` and of ``campaign_assignments``, newest start first."""
    total = int(cur.execute(f"SELECT count(*) FROM ({_CAMPAIGNS_SQL})").fetchall()[0][0])
    rows = cur.execute(f"SELECT * FROM ({_CAMPAIGNS_SQL}) q ORDER BY coalesce(start_time, first_assigned_at) "
                       f"DESC NULLS LAST, campaign_id LIMIT {int(size)} OFFSET {int((page - 1) * size)}").fetchall()
    items = []
    for r in rows:
        item = dict(zip(_CAMPAIGN_COLUMNS, r))
        item["measurable"] = bool(item["treatment"] and item["control"])
        items.append(item)
    return {"items": items, "total": total, "page": page, "size": size}


def _campaign_known(cur, campaign_id: str) -> bool:
    return bool(cur.execute("SELECT (SELECT count(*) FROM campaigns WHERE campaign_id = $c) + "
                            "(SELECT count(*) FROM campaign_assignments WHERE campaign_id = $c)",
                            {"c": campaign_id}).fetchall()[0][0])


def campaign(cur, service, campaign_id: str, *, run_id: str | None, window_days: int | None, alpha: float,
             seed: int, revenue_ci: str, followup_days: int) -> dict:
    """A campaign measured as ``custseg campaign analyze`` measures it (``analyze_campaign``)."""
    from custseg.measure import analyze_campaign

    if not _campaign_known(cur, campaign_id):
        raise NotFound(f"no campaign {campaign_id!r} in campaigns or campaign_assignments; "
                       "see GET /v1/campaigns for the campaign ids")
    if run_id is not None and not run_exists(cur, run_id):
        raise NotFound(f"no segmentation run {run_id!r} (run_id, whose segments split the campaign); "
                       "see GET /v1/runs")
    try:
        a = analyze_campaign(read_view(service, cur), campaign_id, window_days=window_days, segments=run_id,
                             alpha=alpha, seed=seed, revenue_ci=revenue_ci, followup_days=followup_days)
    except ValueError as exc:
        raise Unprocessable(str(exc), ("path", "campaign_id")) from None
    info = {k: _plain(v) for k, v in a.campaign.items()}
    out = a.to_dict()
    out["campaign"] = {k: info.get(k) for k in ("campaign_id", "name", "channel", "start_time", "end_time",
                                                 "description", "assigned", "first_assigned_at")}
    out["summary"] = _records(a.table)
    return out


# -- admin: keys ----------------------------------------------------------------------------------
def keys(cur, service) -> list[dict]:
    from custseg.service.auth import list_keys

    return _records(list_keys(read_view(service, cur)))


def create_key(service, scope: str, name: str | None) -> dict:
    from custseg.service.auth import create_key as create

    def write(con):
        key_id, token = create(_write_view(service, con), scope, name=name)
        created = con.execute("SELECT created_at FROM api_keys WHERE key_id = ?", [key_id]).fetchall()[0][0]
        return key_id, token, created

    key_id, token, created = run_on_writer(service, write)
    return {"key_id": key_id, "token": token, "scope": scope, "name": name, "created_at": created}


def revoke_key(service, key_id: str) -> dict:
    from custseg.service.auth import clear_cache
    from custseg.service.auth import revoke_key as revoke

    def write(con):
        try:
            now = revoke(_write_view(service, con), key_id)
        except ValueError:
            raise NotFound(f"no API key {key_id!r}; see GET /v1/keys for the key ids") from None
        at = con.execute("SELECT revoked_at FROM api_keys WHERE key_id = ?", [key_id]).fetchall()[0][0]
        return now, at

    revoked_now, revoked_at = run_on_writer(service, write)
    # Again after the commit: a request verified between the revocation and the commit may have
    # cached the key as valid (it read the state before the commit).
    clear_cache(key_id)
    return {"key_id": key_id, "revoked": True, "revoked_now": revoked_now, "revoked_at": revoked_at}


# -- admin: deleting a customer -----------------------------------------------------------------
def delete_customer(service, customer_id: str, requested_by: str) -> dict:
    """Every row about the customer deleted on the writer thread, logged in ``deletion_log``."""
    from custseg.service.privacy import delete_customer as delete

    def write(con):
        try:
            done = delete(_write_view(service, con), customer_id, requested_by=requested_by)
        except ValueError as exc:
            if "no customer" in str(exc):
                raise NotFound(f"no customer {customer_id!r} in the store: no table has a row with this "
                               "customer_id; nothing was deleted") from None
            raise
        at = con.execute("SELECT deleted_at FROM deletion_log WHERE deletion_id = ?", [done["deletion_id"]])
        # The live state's copies (cleaned rows, memberships) are read from the store again when next
        # needed: none are left.
        service.live.forget([customer_id])
        return {**done, "deleted_at": at.fetchall()[0][0], "requested_by": requested_by}

    done = run_on_writer(service, write)
    log.info("customer deleted on request of key %s: %s, %d rows", requested_by, done["deletion_id"], done["total"])
    return done


__all__ = ["Conflict", "NotFound", "StoreView", "Unprocessable", "http_errors", "run_on_writer"]
