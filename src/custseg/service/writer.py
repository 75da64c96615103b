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

from custseg.service.canonical import Provenance, insert_rows, write_events

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
    group_wait : float, default=0.0
        Seconds a group stays open for more requests, only when the previous group had several.
        0: a group takes what queued while the previous one was applied, without waiting (measured:
        at 200 single events/s a wait of 30 ms raised the median latency from 25 to 54 ms).
    flush_interval : float, default=0.25
        Under load, most seconds between two writes of the derived tables (:meth:`flush`).
    checkpoint_threshold : str or None, default="256MB"
        DuckDB's ``checkpoint_threshold`` for the service's store (DuckDB's default is 16MB): a
        checkpoint holds every write for a few hundred milliseconds, so under load they are rare;
        None keeps the store's setting.
    idle_checkpoint : float, default=2.0
        After this many seconds without a request, following writes, the writer checkpoints (the
        log goes into the database file while nobody waits); 0 never.
    """

    def __init__(self, store, live=None, *, max_group_events: int = 5_000, max_queue: int = 10_000,
                 group_wait: float = 0.0, flush_interval: float = 0.25,
                 checkpoint_threshold: str | None = "256MB", idle_checkpoint: float = 2.0):
        self.store = store
        self.live = live
        self.max_group_events = max_group_events
        self.group_wait = group_wait
        self._last_requests = 0
        self._queue: queue.Queue[Pending | Call | None] = queue.Queue(maxsize=max_queue)
        self._carry: Pending | Call | None = None
        self.flush_interval = flush_interval
        self.checkpoint_threshold = checkpoint_threshold
        self.idle_checkpoint = idle_checkpoint
        self._flushed_at = time.monotonic()
        self._committed = 0  # groups committed (writer thread)
        self._flushed = 0  # of which the derived rows are written
        self._flush_cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="custseg-writer", daemon=True)
        self._flush_q: queue.Queue = queue.Queue()
        self._flusher = threading.Thread(target=self._flush_loop, name="custseg-flusher", daemon=True)
        self._gate = threading.Lock()
        self._stopping = threading.Event()
        self.provenance = Provenance(dt.datetime.now().replace(microsecond=0))
        self.groups: deque[GroupStats] = deque(maxlen=1_000)
        self.flushes: deque[float] = deque(maxlen=1_000)
        self.groups_total = 0
        self._checkpointed = 0
        self.error: str | None = None

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.checkpoint_threshold:
            self.store.con.execute(f"SET checkpoint_threshold = '{self.checkpoint_threshold}'")
        self._flusher.start()
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
        self._flusher.join(timeout)

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

    def flush(self, wait: bool = False) -> None:
        """Hand what committed groups left for later to the flusher thread, which writes it in a
        transaction of its own on a connection of its own: the memberships and segment changes, the
        live features and CLV of their customers, and the ``ingest_log`` counts. With ``wait``,
        return once everything handed so far is written.

        The writer hands over at most every ``flush_interval`` seconds (after a group, or when idle),
        at once when a reader waits for these rows (:meth:`wait_flushed`), before a :meth:`call` and
        when it stops. These rows are derived from the committed events: a group is answered before
        they are written, and after a crash the service recomputes them for the customers whose
        events came after the last flush. The flusher writes only tables the writer's transactions
        do not write, so both run at once (DuckDB releases the interpreter lock while it works).
        """
        live = self.live
        seq = self._committed
        rows = live.take_unflushed() if live is not None else []
        counts = self.provenance.take_unflushed()
        self._flush_q.put((rows, counts, seq))  # also when empty: the watermark advances in order
        self._flushed_at = time.monotonic()
        if wait:
            self._flush_q.join()

    def _checkpoint(self) -> None:
        """Write the store's log into the database file while nothing else is written (idle)."""
        self.flush(wait=True)
        seq = self._committed
        try:
            self.store.con.execute("CHECKPOINT")
        except Exception as exc:  # another transaction is open (a read); try at the next idle time
            log.debug("idle checkpoint skipped: %s", exc)
            return
        self._checkpointed = seq

    def _pending(self) -> bool:
        """Whether committed groups left rows not yet handed to the flusher."""
        return (self.live is not None and self.live.unflushed) or self.provenance.unflushed

    def _flush_loop(self) -> None:
        from custseg.service.live import write_derived

        cur = self.store.con.cursor()
        try:
            while True:
                item = self._flush_q.get()
                try:
                    if item is None:
                        return
                    rows, counts, seq = item
                    if rows or counts:
                        started = time.monotonic()
                        for attempt in range(1, 4):
                            try:
                                cur.execute("BEGIN TRANSACTION")
                                try:
                                    write_derived(cur, rows)
                                    Provenance.write_counts(cur, counts)
                                    cur.execute("COMMIT")
                                except BaseException:
                                    cur.execute("ROLLBACK")
                                    raise
                                break
                            except Exception:
                                log.exception("writing the derived tables failed (attempt %d of 3)", attempt)
                                time.sleep(0.05 * attempt)
                        else:
                            log.error("the derived tables of %d groups were not written; they are recomputed "
                                      "at the next start", len(rows))
                        self.flushes.append((time.monotonic() - started) * 1e3)
                    self._flushed_up_to(seq)
                finally:
                    self._flush_q.task_done()
        finally:
            cur.close()

    def _flushed_up_to(self, seq: int) -> None:
        with self._flush_cond:
            self._flushed = max(self._flushed, seq)
            self._flush_cond.notify_all()


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
                # Idle with derived rows unwritten: write them once flush_interval has passed; idle
                # after writes: checkpoint after idle_checkpoint seconds.
                if self._pending():
                    wait = max(0.0, self.flush_interval - (time.monotonic() - self._flushed_at))
                elif self._committed > self._checkpointed and self.idle_checkpoint:
                    wait = self.idle_checkpoint
                else:
                    wait = None
                first = self._next(timeout=wait)
            except queue.Empty:
                with self._gate:
                    if self._pending():
                        self.flush()
                    else:
                        self._checkpoint()
                continue
            if first is None:
                break
            if first is _FLUSH:  # a reader waits for the derived rows
                with self._gate:
                    self.flush()
                continue
            if isinstance(first, Call):
                with self._gate:
                    self.flush(wait=True)  # the call may read the derived tables, or rebuild the live state
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
        self.flush(wait=True)
        self._flush_q.put(None)
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
        self.groups_total += 1
        self.groups.append(GroupStats(
            requests=len(group), events=len(events), applied=applied, customers=len(written.customers),
            write_ms=(t_write - t0) * 1e3,
            features_ms=evaluation.features_ms if evaluation is not None else 0.0,
            segments_ms=evaluation.segments_ms if evaluation is not None else 0.0,
            commit_ms=(t_end - t_commit) * 1e3,
            total_ms=(t_end - t0) * 1e3))
        return results

    def _log_events(self, con, group: list[Pending], new: list, stored: dict[str, bool], now: dt.datetime) -> None:
        ts = pa.timestamp("us")
        insert_rows(con, "service_events",
                    ("event_id", "customer_id", "event_type", "event_time", "payload", "received_at", "applied_at"),
                    [(e.event_id, e.customer_id, e.type, e.time, e.payload(), group[i].received_at,
                      now if stored.get(e.event_id) else None) for i, e in new],
                    (pa.string(), pa.string(), pa.string(), ts, pa.string(), ts, ts))

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
        current = live.current_segments(rest) if rest else {}
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
