"""Shared pieces of the CLI: the --db option, error handling, output helpers."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from custseg.store import DEFAULT_DB, Store, StoreError

F = TypeVar("F", bound=Callable[..., Any])

# Rich switches colour and progress bars off by itself when stdout is not a terminal.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

DbOption = Annotated[
    Path,
    typer.Option("--db", help="The store file (DuckDB). Created if missing.", envvar="CUSTSEG_DB"),
]
DEFAULT_DB_PATH = Path(DEFAULT_DB)

_state = {"debug": False}

#: Optional dependencies and the extra that installs them (pyproject.toml).
_EXTRAS = {"fastapi": "service", "uvicorn": "service", "starlette": "service", "jinja2": "service",
           "httpx": "service", "pyspark": "spark", "psycopg": "postgres"}


def set_debug(flag: bool) -> None:
    _state["debug"] = flag


class CliError(Exception):
    """A one-line reason to stop with exit code 1."""


def handle_errors(fn: F) -> F:
    """Turn expected errors into a one-line message and exit code 1 (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI boundary
            if _state["debug"]:
                raise
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            extra = _EXTRAS.get((getattr(exc, "name", None) or "").split(".")[0])
            if isinstance(exc, ModuleNotFoundError) and extra:
                msg = f"{exc.name} is not installed; this command needs: pip install 'custseg[{extra}]'"
            err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def open_db(db: Path, read_only: bool = False) -> Store:
    """Open the store of a command; when ``custseg serve`` holds it, run the command through the service.

    Inside the service (a job of ``POST /v1/jobs``) the store is the service's own (see
    :mod:`custseg.service.jobs`). Elsewhere, when DuckDB refuses the file because another process holds
    its lock and that process is the store's live service, the whole command is sent to the service,
    its output printed and its exit code returned (:func:`forward_to_service`); this function then
    does not return.
    """
    jobs = sys.modules.get("custseg.service.jobs")
    if jobs is not None and jobs.current_job() is not None:
        return jobs.open_job_store(db, read_only=read_only)
    try:
        return Store(db, read_only=read_only)
    except StoreError as exc:
        if _LOCK_ERROR in str(exc):
            forward_to_service(db)
        raise


# -- batch commands beside `custseg serve` ------------------------------------------------------
_LOCK_ERROR = "Could not set lock"


def _command_argv() -> list[str] | None:
    """The arguments of the running command as typed (``sys.argv[1:]``), when they are those click parsed.

    Called programmatically (``CliRunner``, another program), ``sys.argv`` is someone else's: then None.
    """
    try:  # typer >= 0.20 vendors click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer: click itself
        from click import get_current_context

    ctx = get_current_context(silent=True)
    argv = sys.argv[1:]
    if ctx is None:
        return None
    names = []  # the subcommands, e.g. ["segment", "rfm"] (the root's name may be "python -m ...")
    while ctx.parent is not None:
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    rest = iter(argv)
    if not all(any(a == name for a in rest) for name in names):  # the subcommand names, in order
        return None
    return argv


def forward_to_service(db: Path) -> None:
    """Run this command in the live ``custseg serve`` of ``db`` (``POST /v1/jobs``) and exit with its code.

    Returns (does nothing) when no live service holds ``db`` (no service file, or a stale one), or when the
    command line is not known (the CLI called from a program): the caller then reports the lock error.
    """
    from custseg.service.jobs import live_service

    info = live_service(db)
    argv = _command_argv()
    if info is None or argv is None:
        return
    try:
        import httpx
    except ModuleNotFoundError:
        raise CliError(f"{db} is held by `custseg serve` (pid {info.pid}, {info.url}); sending this command "
                       "through it needs httpx: pip install 'custseg[service]' (or stop the service)") from None
    err_console.print(f"[dim]{escape(str(db))} is served by custseg serve (pid {info.pid}, {info.url}); "
                      "running the command there[/]", highlight=False, soft_wrap=True)
    body = {"argv": argv, "cwd": os.getcwd(), "db_env": os.environ.get("CUSTSEG_DB"),
            "width": console.width if console.is_terminal else 160}
    try:
        response = httpx.post(f"{info.url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {info.token}"},
                              timeout=httpx.Timeout(10.0, read=None), trust_env=False)
    except httpx.HTTPError as exc:
        raise CliError(f"{db} is held by `custseg serve` at {info.url}, which did not take the command: {exc}"
                       ) from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:500]
        raise CliError(f"the service of {db} ({info.url}) refused the command: HTTP {response.status_code}: {detail}")
    result = response.json()
    sys.stdout.write(result.get("stdout", ""))
    sys.stdout.flush()
    sys.stderr.write(result.get("stderr", ""))
    sys.stderr.flush()
    raise typer.Exit(int(result.get("exit_code", 1)))


def is_terminal() -> bool:
    return sys.stdout.isatty()
