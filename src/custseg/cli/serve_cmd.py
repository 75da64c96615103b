"""The live service: `custseg serve`."""

from __future__ import annotations

import contextlib
import gc
import secrets
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from custseg.cli.common import DEFAULT_DB_PATH, CliError, DbOption, err_console, handle_errors
from custseg.service.jobs import JobRunner, live_service, remove_service_file, write_service_file


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@handle_errors
def serve(
    db: DbOption = DEFAULT_DB_PATH,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
    playbook: Annotated[str | None, typer.Option("--playbook", help="A playbook YAML changing the built-in plays.")]
    = None,
    run: Annotated[list[str] | None, typer.Option(
        "--run", help="Evaluate this segmentation run live (repeat for several); default the newest of each kind.")]
    = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most events in one POST /v1/events.", min=1)]
    = 1_000,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the HTTP API (events in, segments out) over the store; docs at /docs."""
    import logging

    import uvicorn

    from custseg.service.app import create_app

    levels = ("debug", "info", "warning", "error")
    if log_level not in levels:
        raise ValueError(f"--log-level {log_level!r} must be one of {', '.join(levels)}")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Absolute from here on: jobs (POST /v1/jobs) run with the client's working directory.
    path = Path(db).expanduser().resolve()
    other = live_service(path)
    if other is not None:
        raise CliError(f"{db} is already served by custseg serve (pid {other.pid}, {other.url}); stop that one "
                       "first (batch commands on this store go through it)")
    app = create_app(path, runs=run or None, playbook=playbook, max_batch=max_batch)
    token = secrets.token_urlsafe(32)
    app.state.jobs = JobRunner(app.state.service, path, token=token, runs=run or None)
    live = app.state.service.live
    err_console.print(f"serving {db} on http://{host}:{port} (API docs: /docs); "
                      f"{len(live.runs)} live segmentations, clock {live.clock}", highlight=False)
    for why in live.not_live.values():
        err_console.print(f"[yellow]not live:[/] {why}", highlight=False, soft_wrap=True)
    _remove_at_shutdown(app, path, token)
    # The start-up objects (libraries, the live state, the cleaned rows) live as long as the
    # process: kept out of the garbage collector's full passes, which otherwise stall the writer
    # for a few hundred milliseconds now and then.
    gc.collect()
    gc.freeze()
    # Fewer, later collections: the running aggregates keep many small long-lived objects, and a
    # full pass over them (about 60 ms on 10,000 customers) would otherwise run every few seconds.
    gc.set_threshold(100_000, 50, 100)
    # The writer thread, the event loop and the request threads hand the interpreter lock to each other
    # several times per request: a shorter switch interval (default 5 ms) shortens each wait for it.
    sys.setswitchinterval(0.0005)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                           access_log=log_level == "debug"))
    announcer = threading.Thread(target=_announce, args=(server, path, host, port, token),
                                 name="custseg-service-file", daemon=True)
    announcer.start()
    try:
        server.run()
    finally:
        remove_service_file(path, token)
        app.state.jobs.shutdown()
    if not server.started:
        raise CliError(f"could not serve on {host}:{port} (see the log above)")


def _remove_at_shutdown(app, path: Path, token: str) -> None:
    """Remove the service file when the app shuts down (uvicorn re-raises SIGTERM after it: no later chance)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a):
        async with inner(a) as state:
            try:
                yield state
            finally:
                remove_service_file(path, token)
                a.state.jobs.shutdown()

    app.router.lifespan_context = lifespan


def _announce(server, path: Path, host: str, port: int, token: str) -> None:
    """Write the service file once the server listens (batch commands find the service by it)."""
    import time

    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    write_service_file(path, host=host, port=port, token=token)
