"""Shared pieces of the CLI: the --db option, error handling, output helpers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from custseg.store import DEFAULT_DB, Store

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
    return Store(db, read_only=read_only)


def is_terminal() -> bool:
    return sys.stdout.isatty()
