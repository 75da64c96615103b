"""The central store: one DuckDB file holding every canonical table."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pyarrow as pa

from custseg.store.migrations import SCHEMA_VERSION, migrate
from custseg.store.schema import TABLES, get_table

DEFAULT_DB = "custseg.duckdb"


class StoreError(RuntimeError):
    """A store could not be opened or used."""


class Store:
    """A custseg store backed by a DuckDB file.

    Parameters
    ----------
    path : str or Path, default="custseg.duckdb"
        The database file; ``":memory:"`` for a throw-away store.
    read_only : bool, default=False
        Open without taking the write lock (no migrations are applied).
    memory_limit : str, default=None
        Cap on DuckDB's memory, such as ``"1.5GB"``; past it DuckDB spills to disk.
        Default: the ``CUSTSEG_MEMORY_LIMIT`` environment variable, else DuckDB's
        own default (80% of the machine's memory).

    Examples
    --------
    >>> from custseg import Store
    >>> with Store(":memory:") as store:
    ...     store.count("orders")
    0
    """

    persist_cleaning = False  # DuckDB fuses cleaning into the feature queries

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, read_only: bool = False,
                 memory_limit: str | None = None):
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise StoreError(f"cannot open store {self.path}: folder {parent} does not exist")
            if read_only and not Path(self.path).exists():
                raise StoreError(f"no store at {self.path}; run `custseg init --db {self.path}` first")
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        memory_limit = memory_limit or os.environ.get("CUSTSEG_MEMORY_LIMIT")
        if memory_limit:
            try:
                self.con.execute(f"SET memory_limit = '{memory_limit.replace(chr(39), '')}'")
            except duckdb.Error as exc:
                raise StoreError(f"memory limit {memory_limit!r} not understood: {exc}") from None
        self.migrations_applied: list[int] = [] if read_only else migrate(self.con)
        self.ibis = ibis.duckdb.from_connection(self.con)

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    @property
    def schema_version(self) -> int:
        return int(self.con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All statements inside commit together or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    # -- reading -------------------------------------------------------------------
    def table(self, name: str) -> ibis.Table:
        """The Ibis table ``name`` (canonical or derived, such as ``customer_features``)."""
        if name not in self.tables():
            raise StoreError(f"store {self.path} has no table {name!r}")
        return self.ibis.table(name)

    def tables(self) -> list[str]:
        return [r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()]

    def has_table(self, name: str) -> bool:
        return name in self.tables()

    def count(self, name: str) -> int:
        get_table(name) if name in TABLES else None
        return int(self.con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0])

    def to_pandas(self, name_or_expr: str | ibis.Expr) -> pd.DataFrame:
        """A table (by name) or an Ibis expression as a pandas frame."""
        expr = self.table(name_or_expr) if isinstance(name_or_expr, str) else name_or_expr
        return self.ibis.execute(expr)

    def to_arrow(self, name_or_expr: str | ibis.Expr) -> pa.Table:
        expr = self.table(name_or_expr) if isinstance(name_or_expr, str) else name_or_expr
        return self.ibis.to_pyarrow(expr)

    # -- writing -------------------------------------------------------------------
    def append(self, name: str, data: pd.DataFrame | pa.Table) -> int:
        """Append rows to canonical table ``name``; missing columns are filled with NULL.

        Columns are matched by name and cast to the declared types. This is the
        trusted path (generators, derived tables); user files go through
        :func:`custseg.sources.ingest`.
        """
        table = get_table(name)
        arrow = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        unknown = set(arrow.column_names) - set(table.column_names)
        if unknown:
            raise StoreError(f"table {name} has no columns {sorted(unknown)}")
        self.con.register("_append_src", arrow)
        try:
            select = ", ".join(
                f'CAST("{c.name}" AS {c.dtype})' if c.name in arrow.column_names else f"CAST(NULL AS {c.dtype})"
                for c in table.columns
            )
            # Name the columns: a migrated store may hold them in another physical order.
            names = ", ".join(f'"{c.name}"' for c in table.columns)
            self.con.execute(f'INSERT INTO "{name}" ({names}) SELECT {select} FROM _append_src')
        finally:
            self.con.unregister("_append_src")
        return arrow.num_rows

    def replace(self, name: str, expr_or_frame: ibis.Expr | pd.DataFrame | pa.Table) -> int:
        """Create or replace a derived table from an Ibis expression or a frame."""
        if isinstance(expr_or_frame, ibis.Expr):
            sql = self.ibis.compile(expr_or_frame)
            self.con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {sql}')
        else:
            self.con.register("_replace_src", expr_or_frame)
            try:
                self.con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _replace_src')
            finally:
                self.con.unregister("_replace_src")
        return self.count(name)

    def persist(self, name: str, expr: ibis.Table) -> ibis.Table:
        """Compute ``expr`` once into temporary table ``name`` (this connection only).

        Intermediate results (the ``clean_*`` tables) go to temporary tables: they
        are four times faster to write than tables in the file and are rebuilt by
        every feature build anyway.
        """
        sql = self.ibis.compile(expr)
        self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {sql}')
        return self.ibis.table(name, database="temp")

    def next_id(self, table: str, column: str) -> int:
        return int(self.con.execute(f'SELECT coalesce(max("{column}"), 0) + 1 FROM "{table}"').fetchall()[0][0])


def open_store(path: str | os.PathLike = DEFAULT_DB, read_only: bool = False) -> Store:
    """Open (and create or migrate) the store at ``path``."""
    return Store(path, read_only=read_only)


__all__ = ["DEFAULT_DB", "SCHEMA_VERSION", "Store", "StoreError", "open_store"]
