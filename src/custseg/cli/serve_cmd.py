"""The live service: `custseg serve`."""

from __future__ import annotations

from typing import Annotated

import typer

from custseg.cli.common import DEFAULT_DB_PATH, DbOption, err_console, handle_errors


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
    app = create_app(db, runs=run or None, playbook=playbook, max_batch=max_batch)
    live = app.state.service.live
    err_console.print(f"serving {db} on http://{host}:{port} (API docs: /docs); "
                      f"{len(live.runs)} live segmentations, clock {live.clock}", highlight=False)
    for why in live.not_live.values():
        err_console.print(f"[yellow]not live:[/] {why}", highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
