"""Where the pipeline's tables come from: a DuckDB store or Spark.

The cleaning, feature and RFM code takes any object with ``table(name)``
returning an Ibis table: a :class:`custseg.store.Store` (DuckDB) or a
:class:`SparkSource` (Spark through ``ibis.pyspark``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import ibis

from custseg.store.schema import INGESTIBLE, TABLES


class TableSource(Protocol):
    """What the pipeline needs of an engine."""

    ibis: Any  # the Ibis backend

    def table(self, name: str) -> ibis.Table: ...

    def persist(self, name: str, expr: ibis.Table) -> ibis.Table:
        """Compute ``expr`` once and return a table over the result."""


def execute(source: Any, expr: ibis.Expr):
    """Run ``expr`` on the backend of ``source`` and return pandas."""
    return source.ibis.execute(expr)


class SparkSource:
    """Canonical tables as Spark temporary views, queried through Ibis.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        A running session (``local[*]`` in tests, a cluster in production).
    """

    persist_cleaning = True  # Spark recomputes views; cache the cleaned tables

    def __init__(self, spark):
        self.spark = spark
        self.ibis = ibis.pyspark.connect(spark)

    def register_parquet(self, name: str, path: str | Path) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)

    @classmethod
    def from_parquet_folder(cls, spark, folder: str | Path) -> SparkSource:
        """Views for every ``<table>.parquet`` in ``folder`` (as written by :func:`export_parquet`)."""
        src = cls(spark)
        for path in sorted(Path(folder).glob("*.parquet")):
            src.register_parquet(path.stem, path)
        return src

    def table(self, name: str) -> ibis.Table:
        return self.ibis.table(name)

    def has_table(self, name: str) -> bool:
        return name in self.ibis.list_tables()

    def persist(self, name: str, expr: ibis.Table) -> ibis.Table:
        """Compute ``expr`` once into a cached temporary view ``name``."""
        self.ibis.create_view(name, expr, overwrite=True)
        self.spark.catalog.cacheTable(name)
        return self.ibis.table(name)


def export_parquet(store, folder: str | Path, tables: list[str] | None = None) -> list[Path]:
    """Write the store's canonical tables to ``folder/<table>.parquet`` (for Spark)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = tables or [n for n in TABLES if n in INGESTIBLE or n == "demo_personas"]
    out = []
    for name in names:
        path = folder / f"{name}.parquet"
        store.con.execute(f"COPY \"{name}\" TO '{path.as_posix()}' (FORMAT parquet)")
        out.append(path)
    return out
