"""What the routes share: the running service, read cursors, the auth guard.

:class:`Service` bundles the store, the live state, the writer thread and a
pool of read cursors. Reads never use the store's own connection (the writer
thread owns it): each request borrows a cursor (``store.con.cursor()``, a
connection of its own to the same database), which reads the last committed
state without waiting for the writer's open transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

try:  # written beside this package; without it the API runs unauthenticated
    from custseg.service.auth import require
except ImportError:  # pragma: no cover - only before auth.py exists
    require = None


def guard(scope: str) -> list:
    """Route dependencies admitting keys of ``scope`` or higher (none when auth is not installed)."""
    return [Depends(require(scope))] if require is not None else []


class Readers:
    """A pool of read cursors of the store's connection, one per concurrent request."""

    def __init__(self, con):
        self._root = con.cursor()
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._all: list = []
        self._lock = threading.Lock()
        #: Called before each read: the writer's ``wait_flushed`` (read-your-writes of live features).
        self.barrier = None

    @contextlib.contextmanager
    def cursor(self) -> Iterator:
        if self.barrier is not None:
            self.barrier()
        try:
            cur = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                cur = self._root.cursor()
                self._all.append(cur)
        try:
            yield cur
        finally:
            self._free.put(cur)

    def close(self) -> None:
        with self._lock:
            for cur in self._all:
                cur.close()
            self._all.clear()
            self._root.close()


@dataclass
class Limits:
    """Limits of ``POST /v1/events``."""

    max_batch: int = 1_000
    max_body_bytes: int = 8 << 20
    max_future: dt.timedelta = dt.timedelta(days=1)
    request_timeout: float = 30.0


@dataclass
class Service:
    """The running service: store, live state, writer, readers, playbook, limits."""

    store: object
    live: object
    writer: object
    readers: Readers
    playbook: object
    limits: Limits
    #: Cold-start models loaded by ``POST /v1/assign``, by run (dropped after a batch command).
    assign_models: dict | None = None

    def close(self) -> None:
        """Apply queued events, stop the writer, close the readers and the store (a checkpoint)."""
        self.writer.stop()
        self.readers.close()
        self.store.close()


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]

__all__ = ["Limits", "Readers", "Service", "ServiceDep", "get_service", "guard", "require"]
