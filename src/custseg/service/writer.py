"""The single writer thread: group commit of event requests.

DuckDB lets one connection write at a time, and a commit costs a write to
the log on disk (an fsync): one transaction per request would cap the service
at a few hundred requests per second and make concurrent requests queue for
the lock anyway. So every ``POST /v1/events`` hands its validated events to
:meth:`EventWriter.submit` and waits on the returned future. One thread takes
the first waiting request and every other request queued behind it (up to
``max_group_events`` events; when the previous group had several requests, it
waits up to ``group_wait`` for more, so that the clients it just answered can
join) and applies them **in one transaction**:

1. events whose id ``service_events`` already holds, or that appeared earlier
   in the group, are duplicates: nothing is written for them;
2. the others go to ``service_events`` and the canonical tables
   (:mod:`custseg.service.canonical`);
3. the clock moves to the day after the latest event, the touched customers
   are re-evaluated (:mod:`custseg.service.live`) and their segment changes
   recorded;
4. COMMIT. Only then are the futures resolved, so a 2xx answer means the
   events are in the database file (DuckDB syncs its write-ahead log on
   commit).

If the group's transaction fails, it is rolled back and each request is tried
again alone, so that one bad request does not fail the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import pyarrow as pa

from custseg.service.canonical import Provenance, write_events

log = logging.getLogger(__name__)


#: Queued by a reader that waits for the derived rows (:meth:`EventWriter.wait_flushed`).
_FLUSH = object()


class ServiceBusy(RuntimeError):
    """The writer's queue is full or the writer has stopped: try again later."""


@dataclass
class Pending:
    """One request waiting for the writer."""

    events: list
    received_at: dt.datetime
    future: Future = field(default_factory=Future)


@dataclass
class Call:
    """A function to run on the writer thread, in a transaction of its own (:meth:`EventWriter.call`)."""

    fn: object
    args: tuple
    transaction: bool = True
    future: Future = field(default_factory=Future)


@dataclass
class GroupStats:
    """One committed group: how many requests and events, and where the time went (ms)."""

    requests: int
    events: int
    applied: int
    customers: int
    write_ms: float
    features_ms: float
    segments_ms: float
    commit_ms: float
    total_ms: float


class EventWriter:
    """The writer thread of a service (see the module documentation).

    Parameters
    ----------
    store : Store
        Its connection belongs to this thread once :meth:`start` is called.
    live : LiveState or None
        Re-evaluates touched customers; None stores events only.
    max_group_events : int, default=5000
        Stop adding requests to a group past this many events.
    max_queue : int, default=10000
        Requests that may wait; beyond, :meth:`submit` raises :class:`ServiceBusy`.
    group_wait : float, default=0.03
        Seconds a group stays open for more requests, only when the previous group had several
        (concurrent clients: those it answered are about to send again); a lone client never waits.
    flush_interval : float, default=0.25
        Under load, most seconds between two writes of the derived tables (:meth:`flush`).
    """

    def __init__(self, store, live=None, *, max_group_events: int = 5_000, max_queue: int = 10_000,
                 group_wait: float = 0.03, flush_interval: float = 0.25):
        self.store = store
        self.live = live
        self.max_group_events = max_group_events
        self.group_wait = group_wait
        self._last_requests = 0
        self._queue: queue.Queue[Pending | Call | None] = queue.Queue(maxsize=max_queue)
        self._carry: Pending | Call | None = None
        self.flush_interval = flush_interval
        self._flushed_at = time.monotonic()
        self._committed = 0  # groups committed (writer thread)
        self._flushed = 0  # of which the derived rows are written
        self._flush_cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="custseg-writer", daemon=True)
        self._gate = threading.Lock()
        self._stopping = threading.Event()
        self.provenance = Provenance(dt.datetime.now().replace(microsecond=0))
        self.groups: deque[GroupStats] = deque(maxlen=1_000)
        self.flushes: deque[float] = deque(maxlen=1_000)
        self.error: str | None = None

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    @property
    def waiting(self) -> int:
        """Requests queued for the writer."""
        return self._queue.qsize()

    def stop(self, timeout: float = 30.0) -> None:
        """Apply what is queued, then stop the thread."""
        if not self._thread.is_alive():
            return
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the writer between groups (requests keep queueing); for tests and maintenance."""
        with self._gate:
            yield

    def submit(self, events: Sequence) -> Future:
        """Queue a request's events; the future resolves to its result once committed."""
        if not self.running:
            raise ServiceBusy("the service is stopping; send the events again later")
        pending = Pending(list(events), dt.datetime.now())
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise ServiceBusy(f"{self._queue.maxsize:,} requests are already waiting; retry shortly") from None
        return pending.future

    def call(self, fn, *args, timeout: float | None = 30.0, transaction: bool = True):
        """Run ``fn(con, *args)`` on the writer thread and return its result (or raise its exception).

        ``con`` is the store's connection. With ``transaction`` (the default) the call runs in a
        transaction of its own, committed when ``fn`` returns and rolled back when it raises; events
        queued meanwhile wait for it. Raises :class:`ServiceBusy` when the writer has stopped or its
        queue is full, :class:`TimeoutError` after ``timeout`` seconds (the call still runs).
        """
        if not self.running:
            raise ServiceBusy("the service is stopping; try again later")
        item = Call(fn, args, transaction)
        try:
            self._queue.put(item, timeout=timeout)
        except queue.Full:
            raise ServiceBusy(f"{self._queue.maxsize:,} requests are already waiting; retry shortly") from None
        try:
            return item.future.result(timeout)
        except FutureTimeout:
            raise TimeoutError(f"the writer did not finish the call within {timeout} s") from None

    def flush(self) -> None:
        """Write what committed groups left for later: the live features and CLV of their customers
        (``service_features``, ``service_clv``) and the ``ingest_log`` counts, in one transaction.

        The writer flushes at most every ``flush_interval`` seconds (after a group, or when idle),
        at once when a reader waits for these rows (:meth:`wait_flushed`), before a :meth:`call` and
        when it stops. These rows are derived from the committed events: a group is answered before
        they are written, and after a crash the service recomputes the features of customers whose
        events came after the last flush.
        """
        live = self.live
        seq = self._committed
        rows = live.take_unflushed() if live is not None else []
        if not rows and not self.provenance.unflushed:
            self._flushed_at = time.monotonic()
            self._flushed_up_to(seq)
            return
        con = self.store.con
        started = time.monotonic()
        counts = dict(self.provenance._unflushed)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                if rows:
                    live.flush(con, rows)
                self.provenance.flush(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except Exception:
            log.exception("writing the live features and ingest counts failed; will try again")
            if rows:
                live.restore_unflushed(rows)
            self.provenance._unflushed = counts
            self._flushed_at = time.monotonic()
            return
        self._flushed_at = time.monotonic()
        self.flushes.append((self._flushed_at - started) * 1e3)
        self._flushed_up_to(seq)

    def _flushed_up_to(self, seq: int) -> None:
        with self._flush_cond:
            self._flushed = max(self._flushed, seq)
            self._flush_cond.notify_all()

    def _unflushed(self) -> bool:
        return self._flushed < self._committed or self.provenance.unflushed

    def wait_flushed(self, timeout: float = 1.0) -> bool:
        """Wait until the groups committed so far have their derived rows written (read-your-writes
        for reads of ``service_features`` and ``service_clv``); False after ``timeout`` seconds.

        Asks the writer to flush now rather than at its next interval."""
        target = self._committed
        if self._flushed >= target:
            return True
        try:
            self._queue.put_nowait(_FLUSH)
        except queue.Full:
            pass
        with self._flush_cond:
            return self._flush_cond.wait_for(lambda: self._flushed >= target or not self.running, timeout)

    def _call(self, item: Call) -> None:
        if not item.future.set_running_or_notify_cancel():
            return
        con = self.store.con
        try:
            if item.transaction:
                con.execute("BEGIN TRANSACTION")
            try:
                result = item.fn(con, *item.args)
            except BaseException:
                if item.transaction:
                    con.execute("ROLLBACK")
                raise
            if item.transaction:
                con.execute("COMMIT")
        except Exception as exc:
            item.future.set_exception(exc)
            return
        item.future.set_result(result)

    # -- the thread ----------------------------------------------------------------------------
    def _next(self, timeout: float | None = None, block: bool = True):
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if not block:
            return self._queue.get_nowait()
        return self._queue.get(timeout=timeout)

    def _run(self) -> None:
        while True:
            try:
                # Idle with derived rows unwritten: write them once flush_interval has passed.
                wait = None if not self._unflushed() else max(
                    0.0, self.flush_interval - (time.monotonic() - self._flushed_at))
                first = self._next(timeout=wait)
            except queue.Empty:
                with self._gate:
                    self.flush()
                continue
            if first is None:
                break
            if first is _FLUSH:  # a reader waits for the derived rows
                with self._gate:
                    self.flush()
                continue
            if isinstance(first, Call):
                with self._gate:
                    self.flush()  # the call may read the derived tables, or rebuild the live state
                    self._call(first)
                    self.provenance.invalidate()  # it may have added or deleted rows
                continue
            with self._gate:
                group, stop = [first], False
                n = len(first.events)
                # Under concurrency (the last group had several requests), the clients it answered are
                # about to send again: waiting a few milliseconds lets them join this group.
                deadline = time.monotonic() + (self.group_wait if self._last_requests > 1 else 0.0)
                while n < self.max_group_events:
                    left = deadline - time.monotonic()
                    try:
                        nxt = self._next(timeout=left) if left > 0 else self._next(block=False)
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    if isinstance(nxt, Call) or nxt is _FLUSH:  # after this group, alone
                        self._carry = nxt
                        break
                    group.append(nxt)
                    n += len(nxt.events)
                self._last_requests = len(group)
                self._apply(group)
                if time.monotonic() - self._flushed_at >= self.flush_interval:
                    self.flush()
            if stop:
                break
        self.flush()
        # Requests that raced with stop(): refuse them rather than leave them waiting.
        while True:
            try:
                p = self._queue.get_nowait()
            except queue.Empty:
                break
            if p is not None and p is not _FLUSH and p.future.set_running_or_notify_cancel():
                p.future.set_exception(ServiceBusy("the service stopped before applying these events"))

    def _apply(self, group: list[Pending]) -> None:
        try:
            results = self._transaction(group)
        except Exception as exc:
            if len(group) > 1:
                log.warning("group of %d requests failed (%s); applying them one by one", len(group), exc)
                for p in group:
                    self._apply([p])
                return
            log.exception("applying %d events failed", len(group[0].events))
            group[0].future.set_exception(exc)
            return
        for p, result in zip(group, results):
            p.future.set_result(result)

    def _transaction(self, group: list[Pending]) -> list[dict]:
        store, live = self.store, self.live
        con = store.con
        t0 = time.perf_counter()
        now = dt.datetime.now()
        clock = live.clock if live is not None else None
        con.execute("BEGIN TRANSACTION")
        try:
            events = [(i, e) for i, p in enumerate(group) for e in p.events]
            known = self.provenance.existing(con, "service_events", "event_id", {e.event_id for _, e in events})
            new, status = [], {}
            for i, e in events:
                if e.event_id in known:
                    status[(i, e.event_id)] = "duplicate"
                    continue
                known.add(e.event_id)
                new.append((i, e))
            written = write_events(store, [e for _, e in new], self.provenance, now)
            for i, e in new:
                status[(i, e.event_id)] = "applied" if written.stored.get(e.event_id) else "already_stored"
            self._log_events(con, group, new, written.stored, now)
            self.provenance.add_keys("service_events", "event_id", (e.event_id for _, e in new))
            t_write = time.perf_counter()
            evaluation = None
            if live is not None:
                live.advance(e.time for _, e in new if written.stored.get(e.event_id))
                if written.customers:
                    stored = [e for _, e in new if written.stored.get(e.event_id)]
                    evaluation = live.evaluate(written.customers, now, events=stored,
                                               reload=written.reattributed)
            results = [self._result(i, p, status, written, evaluation) for i, p in enumerate(group)]
            t_commit = time.perf_counter()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.provenance.rollback()
            if live is not None:
                live.rollback()
                live.clock = clock
            raise
        self.provenance.commit()
        if live is not None:
            live.commit()
        self._committed += 1
        t_end = time.perf_counter()
        applied = sum(1 for s in status.values() if s == "applied")
        self.groups.append(GroupStats(
            requests=len(group), events=len(events), applied=applied, customers=len(written.customers),
            write_ms=(t_write - t0) * 1e3,
            features_ms=evaluation.features_ms if evaluation is not None else 0.0,
            segments_ms=evaluation.segments_ms if evaluation is not None else 0.0,
            commit_ms=(t_end - t_commit) * 1e3,
            total_ms=(t_end - t0) * 1e3))
        return results

    def _log_events(self, con, group: list[Pending], new: list, stored: dict[str, bool], now: dt.datetime) -> None:
        if not new:
            return
        data = pa.table({
            "event_id": [e.event_id for _, e in new],
            "customer_id": [e.customer_id for _, e in new],
            "event_type": [e.type for _, e in new],
            "event_time": pa.array([e.time for _, e in new], pa.timestamp("us")),
            "payload": [e.payload() for _, e in new],
            "received_at": pa.array([group[i].received_at for i, _ in new], pa.timestamp("us")),
            "applied_at": pa.array([now if stored.get(e.event_id) else None for _, e in new], pa.timestamp("us")),
        })
        con.register("_svc_events", data)
        try:
            con.execute("INSERT INTO service_events (event_id, customer_id, event_type, event_time, payload, "
                        "received_at, applied_at) SELECT * FROM _svc_events")
        finally:
            con.unregister("_svc_events")

    def _result(self, index: int, pending: Pending, status: dict, written, evaluation) -> dict:
        """The answer to one request: each event's status, and each customer's segments now."""
        mine = {e.event_id for e in pending.events}
        statuses = [{"event_id": e.event_id, "status": status[(index, e.event_id)]} for e in pending.events]
        customers = {e.customer_id for e in pending.events if e.customer_id is not None}
        customers |= {c for c, cause in written.customers.items() if cause in mine}
        counts = {s: sum(1 for x in statuses if x["status"] == s) for s in ("applied", "duplicate", "already_stored")}
        return {
            "received": len(statuses),
            **counts,
            "as_of": evaluation.as_of.isoformat() if evaluation is not None else None,
            "events": statuses,
            "customers": self._customers(sorted(customers), evaluation),
        }

    def _customers(self, ids: list[str], evaluation) -> list[dict]:
        live = self.live
        if live is None or not ids:
            return [{"customer_id": c, "evaluated": False, "segments": []} for c in ids]
        evaluated = evaluation.customers if evaluation is not None else set()
        rest = [c for c in ids if c not in evaluated]
        current: dict[str, dict[str, list[str]]] = {}
        if rest:
            for run_id, cid, seg in self.store.con.execute(
                    "SELECT run_id, customer_id, segment FROM service_memberships WHERE customer_id IN "
                    "(SELECT unnest(?)) ORDER BY segment", [rest]).fetchall():
                current.setdefault(cid, {}).setdefault(run_id, []).append(seg)
        out = []
        for cid in ids:
            segs, before = ((evaluation.segments.get(cid, {}), evaluation.previous.get(cid, {}))
                            if cid in evaluated else (current.get(cid, {}), current.get(cid, {})))
            rows = []
            for run in live.runs.values():
                now_in, was_in = segs.get(run.run_id, []), before.get(run.run_id, [])
                rows.append({"run_id": run.run_id, "method": run.method, "label": run.label,
                             "segments": now_in, "previous": was_in, "changed": now_in != was_in})
            out.append({"customer_id": cid, "evaluated": cid in evaluated, "segments": rows})
        return out


__all__ = ["Call", "EventWriter", "GroupStats", "Pending", "ServiceBusy"]
