"""Ingest a PostgreSQL table or query (psycopg 3).

The rows are streamed with ``COPY (...) TO STDOUT (FORMAT csv, HEADER)`` into
a temporary CSV file (session time zone UTC, ISO dates), which then goes
through the same pipeline as any CSV file: same mapping, presets, rejects,
idempotency and transaction. The password of the connection string is never
recorded.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from custseg.sources.errors import IngestError
from custseg.sources.loader import IngestResult, _options, resolve_mapping, run
from custseg.store.store import Store


def describe_dsn(dsn: str) -> str:
    """``postgresql://user@host:port/dbname`` for ``dsn``, without the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - psycopg raises ProgrammingError
        raise IngestError("cannot parse the PostgreSQL connection string") from None
    user = info.get("user") or os.environ.get("PGUSER") or ""
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = info.get("port") or "5432"
    db = info.get("dbname") or ""
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{db}"


def ingest_postgres(
    store: Store,
    dsn: str,
    *,
    table: str | None = None,
    query: str | None = None,
    target_table: str | None = None,
    preset: str | None = None,
    mapping: str | os.PathLike | dict | None = None,
) -> IngestResult:
    """Ingest the rows of a PostgreSQL table or query.

    Parameters
    ----------
    store : Store
        The target store.
    dsn : str
        A libpq connection string or URI (``host=... dbname=... user=...`` or
        ``postgresql://user:pw@host:5432/db``).
    table : str, optional
        The source table, optionally schema-qualified (``sales.orders``).
    query : str, optional
        A SELECT whose result is ingested (instead of ``table``).
    target_table : str, optional
        The canonical table; required without a mapping or preset.
    preset, mapping : optional
        As for :func:`custseg.sources.ingest`; the mapping names the result's
        column names.

    Returns
    -------
    IngestResult
        ``source`` is ``postgresql://user@host:port/db`` plus the table or query.

    Raises
    ------
    IngestError
        If the server cannot be reached, the table or query fails, or any
        ingestion error; the store is then unchanged.
    """
    if (table is None) == (query is None):
        raise IngestError("give exactly one of a source table or a query")
    m = resolve_mapping(target_table, preset, mapping)
    try:
        import psycopg
        from psycopg import sql
    except ImportError:  # pragma: no cover - psycopg is an optional dependency
        raise IngestError("PostgreSQL support needs psycopg: pip install 'custseg[postgres]'") from None
    where = describe_dsn(dsn)
    if table is not None:
        parts = table.split(".")
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise IngestError(f"bad table name {table!r}; use table or schema.table")
        inner = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*parts))
        what = f"table {table}"
    else:
        text = query.strip().rstrip(";").strip()
        if not text:
            raise IngestError("the query is empty")
        inner = sql.SQL(text)
        what = f"query {text[:200]}"
    location = f"{where} {what}"
    fd, name = tempfile.mkstemp(prefix="custseg-pg-", suffix=".csv")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with psycopg.connect(dsn, connect_timeout=15) as conn, conn.cursor() as cur:
                    cur.execute("SET TimeZone TO 'UTC'")
                    cur.execute("SET DateStyle TO 'ISO, YMD'")
                    cur.execute("SET client_encoding TO 'UTF8'")
                    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(inner)
                    with cur.copy(copy_sql) as copy:
                        for chunk in copy:
                            out.write(chunk)
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise IngestError(f"{where}: {what}: {first}") from None
        opts = _options(m, "utf-8", ",", None, "csv", True)
        return run(store, path, m, opts, target_table, preset=preset, label=f"{where} {what[:60]}", location=location)
    finally:
        path.unlink(missing_ok=True)
