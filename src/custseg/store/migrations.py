"""Versioned schema migrations.

The schema declarations in :mod:`custseg.store.schema` carry the version that
added each table and column (``since``). Migration ``n`` creates the tables
added in version ``n`` and adds the columns added in version ``n`` to tables
that already exist; hand-written steps for a version go in ``_EXTRA_STEPS``.
A store file records its version in ``schema_version``; opening an older file
applies the missing migrations in one transaction.
"""

from __future__ import annotations

import duckdb

from custseg.store.schema import TABLES

SCHEMA_VERSION = 6

# Hand-written SQL run after the declarative part of a version, if any.
_EXTRA_STEPS: dict[int, tuple[str, ...]] = {
    2: (
        # Version 2 added price tiers; fill them for catalogues loaded before.
        """UPDATE products SET price_tier = CASE
               WHEN price IS NULL THEN NULL
               WHEN price < (SELECT quantile_cont(price, 0.33) FROM products) THEN 'budget'
               WHEN price < (SELECT quantile_cont(price, 0.67) FROM products) THEN 'mid'
               ELSE 'premium' END
           WHERE price_tier IS NULL""",
    ),
}


def migration_sql(version: int) -> list[str]:
    """SQL statements that bring a store from ``version - 1`` to ``version``."""
    stmts: list[str] = []
    for table in TABLES.values():
        if table.since == version:
            stmts.append(table.create_sql(version))
        elif table.since < version:
            for col in table.columns:
                if col.since == version:
                    stmts.append(f'ALTER TABLE "{table.name}" ADD COLUMN IF NOT EXISTS "{col.name}" {col.dtype}')
    stmts.extend(_EXTRA_STEPS.get(version, ()))
    return stmts


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the store behind ``con`` (0 for an empty file)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply every missing migration up to ``target``; return the versions applied."""
    have = current_version(con)
    if have > SCHEMA_VERSION:
        raise RuntimeError(
            f"store schema version {have} is newer than this custseg understands "
            f"({SCHEMA_VERSION}); upgrade custseg"
        )
    applied: list[int] = []
    if have >= target:
        return applied
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)"
        )
        for version in range(have + 1, target + 1):
            for stmt in migration_sql(version):
                con.execute(stmt)
            con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])
            applied.append(version)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return applied
