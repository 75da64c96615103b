"""Quoting helpers: the only way user text reaches generated SQL."""

from __future__ import annotations

from typing import Any

from custseg.sources.errors import IngestError


def ident(name: str) -> str:
    """Quote ``name`` as a SQL identifier (double quotes, doubled inside)."""
    if "\x00" in name:
        raise IngestError(f"name {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    """Quote ``value`` as a SQL literal: NULL, a boolean, a number or a string."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if "\x00" in text:
        raise IngestError(f"value {text!r} contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


def quoted(sql: str) -> str:
    """SQL producing ``'value'`` (the value of ``sql`` in quotes, cut at 100 characters) for messages."""
    return f"('''' || left(CAST({sql} AS VARCHAR), 100) || '''')"
