"""The FastAPI application of the live service: :func:`create_app`.

One process, one store: the app opens the store's DuckDB file read-write (so
no other process may open it while the service runs), starts the writer
thread, and answers reads from cursors of the same database. See
``docs/service.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import uuid
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from custseg import __version__
from custseg.service.context import Limits, Readers, Service
from custseg.service.live import LiveState
from custseg.service.writer import EventWriter
from custseg.store import Store

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 50

try:
    from custseg.service.auth import limit_body
except ImportError:  # pragma: no cover - only before auth.py exists
    limit_body = None


def create_app(
    db_path: str | os.PathLike,
    *,
    runs: Iterable[str] | None = None,
    playbook: str | os.PathLike | None = None,
    max_batch: int = 1_000,
    max_body_bytes: int = 8 << 20,
    max_future: dt.timedelta = dt.timedelta(days=1),
    request_timeout: float = 30.0,
    max_group_events: int = 5_000,
    max_queue: int = 10_000,
) -> FastAPI:
    """The HTTP API over the store at ``db_path``, with its writer thread started.

    Parameters
    ----------
    db_path : str or Path
        The store (DuckDB file); created and migrated if needed.
    runs : list of str, default=None
        Evaluate exactly these segmentation runs live; default the newest run of each
        kind (RFM, each cluster method, each template, each rule set, value × risk).
    playbook : str or Path, default=None
        A playbook YAML changing the built-in plays (see ``custseg playbook``).
    max_batch : int, default=1000
        Most events in one ``POST /v1/events``.
    max_body_bytes : int, default=8 MiB
        Largest request body (413 beyond).
    max_future : timedelta, default=1 day
        How far in the future (past now, UTC) an event's time may be.
    request_timeout : float, default=30.0
        Seconds a request waits for its events to be committed before answering 503.
    max_group_events, max_queue : int
        Group commit: most events per transaction, most requests waiting.

    Returns
    -------
    FastAPI
        ``app.state.store`` is the store, ``app.state.service`` the running service. The
        writer stops and the store closes when the app shuts down (the lifespan's end;
        ``with TestClient(app)`` does it), or on ``app.state.service.close()``.
    """
    from custseg.targeting import load_playbook

    for name, value in (("max_batch", max_batch), ("max_group_events", max_group_events), ("max_queue", max_queue)):
        if value < 1:
            raise ValueError(f"{name}={value} must be at least 1")
    plays = load_playbook(playbook)
    store = Store(db_path)
    try:
        live = LiveState(store, runs)
    except BaseException:
        store.close()
        raise
    readers = Readers(store.con)
    writer = EventWriter(store, live, max_group_events=max_group_events, max_queue=max_queue)
    service = Service(store, live, writer, readers, plays,
                      Limits(max_batch=max_batch, max_body_bytes=max_body_bytes, max_future=max_future,
                             request_timeout=request_timeout))
    readers.barrier = writer.wait_flushed
    writer.start()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    middleware = [limit_body(max_body_bytes)] if limit_body is not None else []
    app = FastAPI(
        title="custseg live service",
        version=__version__,
        summary="Events in, segments out: customer segmentation kept up to date as events arrive.",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        middleware=middleware,
    )
    app.state.store = store
    app.state.service = service
    _errors(app)
    from custseg.service.routes import api

    app.include_router(api)
    __import__("custseg.service.dashboard", fromlist=["mount"]).mount(app)
    return app


def _errors(app: FastAPI) -> None:
    """Errors as JSON ``{"detail": ...}``; never a stack trace."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        shown = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "value_error")}
                 for e in errors[:MAX_ERRORS_SHOWN]]
        body = {"detail": shown}
        if len(errors) > MAX_ERRORS_SHOWN:
            body["more_errors"] = len(errors) - MAX_ERRORS_SHOWN
        return JSONResponse(status_code=422, content=body)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500,
                            content={"detail": f"internal error; the service log has the details (error {error_id})"})


__all__ = ["create_app"]
