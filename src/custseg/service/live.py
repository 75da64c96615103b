"""Live re-evaluation: features and segments of the customers a group of events touched.

:class:`LiveState` is built once when the service starts and then used by the
writer thread only. For each committed group it

1. computes the touched customers' features as of the service clock with the
   batch feature code (:mod:`custseg.service.features`) and keeps them in
   ``service_features``;
2. assigns them in every live segmentation with the batch run's constants
   (:mod:`custseg.service.evaluators`), compares with their current
   membership (``service_memberships``), and records every difference in
   ``segment_changes`` with the causing event id.

The clock (the as-of date of live features) is the day after the latest event
day the service has applied, and never earlier than the batch features' as-of
date: it only moves forward, so a late event is counted as of the newest day,
as a batch run on the same data that day would count it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from custseg.service.aggregates import LiveAggregates
from custseg.service.canonical import insert_rows
from custseg.service.evaluators import Evaluator, GroupRows, NotLive, live_key, make_evaluator
from custseg.service.features import FEATURES_TABLE, GROUP, IDS, LiveFeatures
from custseg.service.tables import activate, create_tables

log = logging.getLogger(__name__)


_CHANGE_TYPES = {"change_id": pa.int64(), "customer_id": pa.string(), "run_id": pa.string(),
                 "from_segment": pa.string(), "to_segment": pa.string(), "changed_at": pa.timestamp("us"),
                 "cause": pa.string()}


class IdCounter:
    """Sequential ids (``segment_changes.change_id``) that follow the transaction they are taken in."""

    def __init__(self, next_id: int):
        self._next = next_id
        self._pending = next_id

    def __call__(self, n: int) -> int:
        first = self._pending
        self._pending += n
        return first

    def commit(self) -> None:
        self._next = self._pending

    def rollback(self) -> None:
        self._pending = self._next


@dataclass
class LiveRun:
    """A segmentation evaluated live."""

    run_id: str
    key: str
    method: str
    evaluator: Evaluator

    @property
    def label(self) -> str:
        return self.evaluator.label

    @property
    def exclusive(self) -> bool:
        return self.evaluator.exclusive


@dataclass
class Evaluation:
    """The outcome of re-evaluating a group's customers.

    Attributes
    ----------
    as_of : date
        The as-of date of the features.
    segments, previous : dict
        ``{customer_id: {run_id: [segments]}}`` after and before.
    customers : set of str
        The customers re-evaluated.
    with_features : set of str
        Those of them with features (a customer id the store does not know has none).
    changes : list of dict
        The rows written to ``segment_changes``.
    """

    as_of: dt.date
    segments: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    previous: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    with_features: set[str] = field(default_factory=set)
    changes: list[dict] = field(default_factory=list)
    features_ms: float = 0.0
    segments_ms: float = 0.0


class LiveState:
    """Live runs, the clock and the live tables of one store (see the module documentation).

    Parameters
    ----------
    store : Store
        Its connection is used by the calling thread (at start) and then by the writer thread only.
    runs : list of str, optional
        Evaluate exactly these runs live; default the newest run of every live key.
    """

    def __init__(self, store, runs: Iterable[str] | None = None):
        self.store = store
        con = store.con
        self.features = LiveFeatures(store)
        self.clock = self._initial_clock()
        self.aggregates: LiveAggregates | None = None
        if self.features.reference is not None:
            # Features from per-customer running aggregates; the group table the evaluators compile
            # against has the batch table's columns.
            con.execute(f'CREATE OR REPLACE TEMP TABLE {GROUP} AS SELECT * FROM "{FEATURES_TABLE}" LIMIT 0')
            types = {r[0]: r[1] for r in con.execute(f'DESCRIBE "{FEATURES_TABLE}"').fetchall()}
            t0 = time.perf_counter()
            self.aggregates = LiveAggregates(store, types, self.features.include)
            log.info("loaded %d cleaned rows for live features in %.1f s", self.aggregates.loaded_rows,
                     time.perf_counter() - t0)
        else:  # no batch features: the batch query over the touched customers
            self.features.sql(self.clock)  # compiles, and creates the group table
        self._touched: set[str] = set()
        self._members: dict[str, dict[str, set[str]]] = {}
        self._members_before: dict[str, dict | None] = {}
        self._group_rows: list = []  # this group's rows of the derived tables
        self._unflushed: list = []  # committed groups' rows, not yet written
        self.not_live: dict[str, str] = {}
        self.runs: dict[str, LiveRun] = {}
        now = dt.datetime.now()
        con.execute("BEGIN TRANSACTION")
        try:
            create_tables(con, GROUP)
            batch = self.features.batch_as_of
            if batch is not None:  # batch features rebuilt since: they are newer than these live ones
                for table in ("service_features", "service_clv"):
                    con.execute(f"DELETE FROM {table} WHERE as_of < ?", [batch])
            self.change_ids = IdCounter(int(con.execute(
                "SELECT coalesce(max(change_id), 0) + 1 FROM segment_changes").fetchall()[0][0]))
            self._choose(runs)
            activate(con, {r.run_id: (r.key, r.method) for r in self.runs.values()}, now, self.change_ids,
                     refresh=lambda run_id: self._catch_up(self.runs[run_id], now))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.change_ids.rollback()
            raise
        self.change_ids.commit()
        self._load_memberships()
        self._members_before = {}
        self._repair(now)

    # -- start -----------------------------------------------------------------------------
    def _repair(self, now: dt.datetime) -> None:
        """Recompute the live features and CLV of customers whose events were committed after the
        last write of the derived tables (a crash between a group's answer and the flush)."""
        if self.aggregates is None:
            return
        con = self.store.con
        since = con.execute("SELECT max(computed_at) FROM service_features").fetchall()[0][0]
        if since is None:
            return
        causes = dict(con.execute(
            "SELECT customer_id, arg_max(event_id, applied_at) FROM service_events WHERE applied_at > ? "
            "AND customer_id IS NOT NULL GROUP BY customer_id", [since]).fetchall())
        if not causes:
            return
        log.warning("recomputing the live features of %d customers whose events came after the last flush",
                    len(causes))
        con.execute("BEGIN TRANSACTION")
        try:
            self.evaluate(causes, now)
            self.flush(con, self._group_rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.rollback()
            raise
        self._group_rows = []
        self._touched = set()
        self._members_before = {}
        self.change_ids.commit()

    def _initial_clock(self) -> dt.date:
        con = self.store.con
        candidates = [self.features.batch_as_of]
        last = con.execute("SELECT max(event_time) FROM service_events WHERE applied_at IS NOT NULL").fetchall()[0][0]
        if last is not None:
            candidates.append(last.date() + dt.timedelta(days=1))
        if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'service_features'"
                       ).fetchall()[0][0]:
            candidates.append(con.execute("SELECT max(as_of) FROM service_features").fetchall()[0][0])
        candidates = [c.date() if isinstance(c, dt.datetime) else c for c in candidates if c is not None]
        return max(candidates) if candidates else dt.date.today() + dt.timedelta(days=1)

    def _choose(self, runs: Iterable[str] | None) -> None:
        rows = self.store.con.execute(
            "SELECT run_id, method, parameters FROM segment_runs ORDER BY created_at DESC, run_id DESC").fetchall()
        wanted = list(runs) if runs is not None else None
        if wanted is not None:
            unknown = sorted(set(wanted) - {r[0] for r in rows})
            if unknown:
                raise ValueError(f"no segmentation run {unknown[0]!r}; see GET /v1/runs or `custseg segments list`")
        seen: set[str] = set()
        for run_id, method, params in rows:
            key = live_key(method, json.loads(params or "{}"))
            if wanted is not None:
                if run_id not in wanted:
                    continue
                key = key or method
                if key in seen:  # two pinned runs of one kind: both live, under keys of their own
                    key = f"{key}@{run_id}"
            if key is None or key in seen:
                continue
            seen.add(key)
            try:
                evaluator = make_evaluator(self.store, self.features, run_id)
            except NotLive as exc:
                self.not_live[run_id] = str(exc)
                log.warning("not live: %s", exc)
                continue
            self.runs[run_id] = LiveRun(run_id, key, method, evaluator)
        order = ("rfm", "cluster:", "template:", "rules:", "value")
        self.runs = dict(sorted(self.runs.items(), key=lambda kv: (
            next(i for i, p in enumerate(order + ("",)) if kv[1].key.startswith(p)), kv[1].key)))

    def _catch_up(self, run: LiveRun, now: dt.datetime) -> None:
        """Assign a newly activated run's customers whose live features are newer than the batch ones."""
        batch = self.features.batch_as_of
        con = self.store.con
        days = [r[0] for r in con.execute(
            "SELECT DISTINCT as_of FROM service_features WHERE as_of > coalesce(?::DATE, DATE '0001-01-01') "
            "ORDER BY 1", [batch]).fetchall()]
        for day in days:
            day = day.date() if isinstance(day, dt.datetime) else day
            con.execute(f"DELETE FROM {GROUP}")
            con.execute(f"INSERT INTO {GROUP} SELECT * EXCLUDE (computed_at) FROM service_features WHERE as_of = ?",
                        [day])
            ids = [r[0] for r in con.execute(f"SELECT customer_id FROM {GROUP}").fetchall()]
            con.execute(f"DELETE FROM {IDS}")
            con.execute(f"INSERT INTO {IDS} SELECT unnest(?)", [ids])
            self._assign([run], {c: f"batch:{run.run_id}" for c in ids}, day, now, Evaluation(day), record=False)

    # -- per group ---------------------------------------------------------------------------
    def advance(self, times: Iterable[dt.datetime]) -> dt.date:
        """Move the clock to the day after the latest of ``times`` (never back); return it."""
        latest = max(times, default=None)
        if latest is not None:
            self.clock = max(self.clock, latest.date() + dt.timedelta(days=1))
        return self.clock

    def evaluate(self, causes: dict[str, str], now: dt.datetime, events: Sequence = (),
                 reload: Iterable[str] = ()) -> Evaluation:
        """Re-evaluate the customers of ``causes`` (``{customer_id: event_id}``) as of the clock.

        ``events`` are the group's stored events, ``reload`` the customers whose rows must be read
        again from the store (see :mod:`custseg.service.aggregates`). Runs inside the writer's
        transaction.
        """
        con = self.store.con
        as_of = self.clock
        ids = sorted(causes)
        out = Evaluation(as_of, customers=set(ids))
        t0 = time.perf_counter()
        self._touched |= set(ids)
        if self.aggregates is not None:
            self.aggregates.apply(events, reload)
            table = self.aggregates.features(ids, as_of)
            if any(not r.evaluator.python for r in self.runs.values()):  # their SQL reads the group table
                con.register("_svc_live_rows", table)
                try:
                    con.execute(f"DELETE FROM {GROUP}")
                    con.execute(f"INSERT INTO {GROUP} SELECT * FROM _svc_live_rows")
                finally:
                    con.unregister("_svc_live_rows")
            # Kept by flush(), after the answer (see the module documentation).
            self._group_rows.append(("service_features", ids, table, now))
            out.with_features = set(table.column("customer_id").to_pylist())
        else:
            self.features.compute(ids, as_of)
            table = None
            out.with_features = {r[0] for r in con.execute(f"SELECT customer_id FROM {GROUP}").fetchall()}
            con.execute(f"DELETE FROM service_features WHERE customer_id IN (SELECT customer_id FROM {IDS})")
            con.execute(f"INSERT INTO service_features SELECT *, ?::TIMESTAMP FROM {GROUP}", [now])
        t1 = time.perf_counter()
        self._assign(list(self.runs.values()), causes, as_of, now, out, table=table)
        out.features_ms, out.segments_ms = (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3
        return out

    def _assign(self, runs: list[LiveRun], causes: dict[str, str], as_of: dt.date, now: dt.datetime,
                out: Evaluation, record: bool = True, table: pa.Table | None = None) -> None:
        """Assign the group table's customers in ``runs``; update memberships (and record the changes)."""
        con = self.store.con
        ids = sorted(causes)
        group = GroupRows(table) if table is not None else None
        old = self._memberships(ids, [r.run_id for r in runs])
        gone, came, changes = [], [], []
        for cid in ids:  # what a rollback restores (the memberships' rows are written later)
            if cid not in self._members_before:
                found = self._members.get(cid)
                self._members_before[cid] = None if found is None else {k: set(v) for k, v in found.items()}
        for run in runs:
            new: dict[str, set[str]] = defaultdict(set)
            pairs = run.evaluator.assign_rows(group, as_of) if group is not None else None
            if pairs is None:
                pairs = run.evaluator.assign(con, as_of)
            for cid, seg in pairs:
                new[cid].add(seg)
            if run.method == "value" and record:
                self._keep_clv(run, now, ids)
            for cid in ids:
                before, after = old.get((run.run_id, cid), set()), new.get(cid, set())
                out.previous.setdefault(cid, {})[run.run_id] = sorted(before)
                out.segments.setdefault(cid, {})[run.run_id] = sorted(after)
                if before == after:
                    continue
                cause = causes[cid]
                self._members.setdefault(cid, {})[run.run_id] = set(after)
                gone += [(run.run_id, cid, s) for s in sorted(before - after)]
                came += [(run.run_id, cid, s, now, cause) for s in sorted(after - before)]
                changes += _changes(run, cid, before, after, now, cause)
        if changes and record:
            first = self.change_ids(len(changes))
            for i, row in enumerate(changes):
                row["change_id"] = first + i
        if record and self.aggregates is not None:  # written by flush(), after the answer
            self._group_rows.append(("memberships", gone, came, None))
            if changes:
                self._group_rows.append(("changes", changes, None, None))
        else:
            _write_memberships(con, gone, came)
            if changes and record:
                _write_changes(con, changes)
        out.changes += changes

    def _memberships(self, ids: list[str], run_ids: list[str]) -> dict[tuple[str, str], set[str]]:
        """``{(run_id, customer_id): segments}`` now, from memory (read from the store when unknown)."""
        unknown = [c for c in ids if c not in self._members]
        if unknown:
            for cid in unknown:
                self._members[cid] = {}
            for run_id, cid, seg in self.store.con.execute(
                    "SELECT run_id, customer_id, segment FROM service_memberships WHERE customer_id IN "
                    "(SELECT unnest(?))", [unknown]).fetchall():
                self._members[cid].setdefault(run_id, set()).add(seg)
        wanted = set(run_ids)
        return {(run_id, cid): set(segs) for cid in ids for run_id, segs in self._members[cid].items()
                if run_id in wanted}

    def current_segments(self, ids: list[str]) -> dict[str, dict[str, list[str]]]:
        """``{customer_id: {run_id: segments}}`` in the live runs, as the service holds them now
        (committed, whether or not flushed to ``service_memberships`` yet). Writer thread only."""
        found = self._memberships(ids, list(self.runs))
        out: dict[str, dict[str, list[str]]] = {}
        for (run_id, cid), segs in found.items():
            out.setdefault(cid, {})[run_id] = sorted(segs)
        return out

    def _load_memberships(self) -> None:
        self._members = {}
        for run_id, cid, seg in self.store.con.execute(
                "SELECT run_id, customer_id, segment FROM service_memberships").fetchall():
            self._members.setdefault(cid, {}).setdefault(run_id, set()).add(seg)

    def _keep_clv(self, run: LiveRun, now: dt.datetime, ids: list[str]) -> None:
        pred = run.evaluator.extra()
        if self.aggregates is not None:
            self._group_rows.append(("service_clv", ids, pred, now))
            return
        _replace(self.store.con, "service_clv", ids, pred, now)

    # -- derived tables, after the answer ----------------------------------------------------------
    @property
    def unflushed(self) -> bool:
        """Whether committed groups' live features or CLV wait for :meth:`flush`."""
        return bool(self._unflushed)

    def take_unflushed(self) -> list:
        rows, self._unflushed = self._unflushed, []
        return rows

    def restore_unflushed(self, rows: list) -> None:
        self._unflushed = rows + self._unflushed

    def flush(self, con, rows: list) -> None:
        """:func:`write_derived` (kept for the callers on the writer thread)."""
        write_derived(con, rows)


    def forget(self, customer_ids: Iterable[str]) -> None:
        """Read these customers' rows and memberships from the store when next needed (after a
        deletion, a failed group)."""
        customer_ids = set(customer_ids)
        for cid in customer_ids:
            self._members.pop(cid, None)
        if self.aggregates is not None:
            self.aggregates.forget(customer_ids)

    def commit(self) -> None:
        self.change_ids.commit()
        self._touched = set()
        self._members_before = {}
        self._unflushed += self._group_rows
        self._group_rows = []

    def rollback(self) -> None:
        self.change_ids.rollback()
        self._group_rows = []
        # The memberships as they were before the group (the store may not hold them yet).
        for cid, before in self._members_before.items():
            if before is None:
                self._members.pop(cid, None)
            else:
                self._members[cid] = before
        self._members_before = {}
        # The in-memory rows of this group's customers may hold rows the store no longer does.
        if self.aggregates is not None:
            self.aggregates.forget(self._touched)
        self._touched = set()


def write_derived(con, rows: list) -> None:
    """Write committed groups' membership changes (their net effect), ``segment_changes`` rows, and
    ``service_features`` and ``service_clv`` rows (the newest of each customer), inside the caller's
    transaction. ``rows`` come from :meth:`LiveState.take_unflushed`; any connection of the store."""
    first_op: dict[tuple, str] = {}
    last_came: dict[tuple, tuple] = {}
    for kind, gone, came, _ in rows:
        if kind != "memberships":
            continue
        for g in gone:
            first_op.setdefault(g, "gone")
            last_came.pop(g, None)
        for c in came:
            first_op.setdefault(c[:3], "came")
            last_came[c[:3]] = c
    # A row the store holds was left first; a row to hold at the end was entered last.
    _write_memberships(con, [k for k, op in first_op.items() if op == "gone"], list(last_came.values()))
    changes = [row for kind, part, _, _ in rows if kind == "changes" for row in part]
    if changes:
        _write_changes(con, changes)
    for name in ("service_features", "service_clv"):
        parts = [(ids, t, now) for n, ids, t, now in rows if n == name]
        if not parts:
            continue
        ids = sorted({c for p in parts for c in p[0]})
        latest: dict[str, tuple] = {}
        for i, (_, t, now) in enumerate(parts):
            if t is None:
                continue
            for j, cid in enumerate(t.column("customer_id").to_pylist()):
                latest[cid] = (i, j)
        tables = []
        for i, (_, t, now) in enumerate(parts):
            if t is None:
                continue
            picks = [j for j, cid in enumerate(t.column("customer_id").to_pylist()) if latest[cid] == (i, j)]
            if picks:
                chosen = t.take(pa.array(picks, pa.int64()))
                tables.append(chosen.append_column("computed_at", pa.array([now] * len(picks),
                                                                           pa.timestamp("us"))))
        _replace(con, name, ids, pa.concat_tables(tables) if tables else None, None)


def _write_memberships(con, gone: list[tuple], came: list[tuple]) -> None:
    """Delete the ``(run_id, customer_id, segment)`` rows ``gone``, insert the rows ``came``."""
    if gone:
        # A filter on the customers first, then on the (run, customer, segment) keys: three times
        # faster than a join on the three columns (measured: 1.8 ms against 5.6 ms on 75,000 rows).
        con.execute("DELETE FROM service_memberships WHERE customer_id IN (SELECT unnest(?)) AND "
                    "(run_id || chr(31) || customer_id || chr(31) || segment) IN (SELECT unnest(?))",
                    [sorted({g[1] for g in gone}), ["\x1f".join(g) for g in gone]])
    insert_rows(con, "service_memberships", ("run_id", "customer_id", "segment", "since", "cause"), came,
                (pa.string(), pa.string(), pa.string(), pa.timestamp("us"), pa.string()))


def _write_changes(con, changes: list[dict]) -> None:
    names = tuple(_CHANGE_TYPES)
    insert_rows(con, "segment_changes", names, [tuple(row[n] for n in names) for row in changes],
                [_CHANGE_TYPES[n] for n in names])


def _replace(con, table: str, ids: list[str], rows: pa.Table | None, now: dt.datetime | None) -> None:
    """Delete ``ids``' rows of ``table`` and insert ``rows`` (with ``computed_at`` = ``now`` when given)."""
    con.execute(f"DELETE FROM {table} WHERE customer_id IN (SELECT unnest(?))", [ids])
    if rows is None or rows.num_rows == 0:
        return
    con.register("_svc_replace", rows)
    try:
        if now is None:
            con.execute(f"INSERT INTO {table} SELECT * FROM _svc_replace")
        else:
            con.execute(f"INSERT INTO {table} SELECT *, ?::TIMESTAMP FROM _svc_replace", [now])
    finally:
        con.unregister("_svc_replace")


def _changes(run: LiveRun, cid: str, before: set[str], after: set[str], now: dt.datetime, cause: str) -> list[dict]:
    """One change (from, to) when one segment was left and one entered; else one per segment left or entered."""
    row = {"customer_id": cid, "run_id": run.run_id, "changed_at": now, "cause": cause}
    left, entered = sorted(before - after), sorted(after - before)
    if len(left) <= 1 and len(entered) <= 1:
        return [{**row, "from_segment": left[0] if left else None, "to_segment": entered[0] if entered else None}]
    return ([{**row, "from_segment": s, "to_segment": None} for s in left]
            + [{**row, "from_segment": None, "to_segment": s} for s in entered])


__all__ = ["Evaluation", "IdCounter", "LiveRun", "LiveState"]
