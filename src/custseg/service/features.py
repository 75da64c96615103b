"""Live features: the batch feature builder, restricted to a few customers, compiled once per day.

The service computes the features of the customers a group of events touched
with :func:`custseg.features.build_features` itself (the same Ibis
expressions as ``custseg features``), given cleaned tables restricted to the
customers listed in a temporary table (``_svc_ids``). The cleaning itself
still sees every row: the email and device maps that attribute rows to
customers, the outlier cap and the store's top categories are store-wide.

Why not simply filter the finished feature table by customer id: DuckDB does
not push such a filter through the feature query's joins and aggregates, so
it costs as much as building every customer's features (0.9 s on the demo
store of 10,000 customers), and compiling the Ibis expression costs another
0.4-0.8 s. Here the expression is compiled to SQL once per as-of date, and
each group only refills ``_svc_ids`` and runs that SQL (about 0.1 s on the
same store, mostly scans that the store-wide cleaning steps need).

Frozen with the compiled SQL, until the as-of date changes (or the service
restarts): the outlier cap (``outlier_orders``) and the set of
``cat_share_<category>`` columns, which come from the whole store. The
columns are those of the batch ``customer_features`` table: a category the
store's top 12 no longer holds reads as NULL, a new one is left out.
"""

from __future__ import annotations

import datetime as dt
import logging

import ibis
import ibis.expr.types as ir

from custseg.cleaning.clean import CleanTables
from custseg.features.build import BLOCKS, build_features

log = logging.getLogger(__name__)

IDS = "_svc_ids"
GROUP = "_svc_group_features"
FEATURES_TABLE = "customer_features"
#: A column of each feature block: the blocks the batch features were built with are those whose
#: marker column the batch table has.
BLOCK_MARKERS = {"orders": "orders_count", "items": "distinct_products", "clv": "clv_x", "email": "emails_sent",
                 "browsing": "sessions_30d", "demographics": "age_band", "surveys": "nps"}


class SubsetClean(CleanTables):
    """The cleaned tables of a store, keeping only the rows of the customers in table ``ids``.

    The cleaning itself is computed on every row (see the module documentation).
    """

    def __init__(self, source, ids: ir.Table):
        super().__init__(source, persist=False)
        self._full = CleanTables(source, persist=False)
        self._ids = ids

    def get(self, name: str) -> ir.Table:
        if name not in self._cache:
            table = self._full.get(name)
            self._cache[name] = table.filter(table.customer_id.isin(self._ids.customer_id))
        return self._cache[name]


class LiveFeatures:
    """Compiles and runs the feature query of the customers in ``_svc_ids``.

    Parameters
    ----------
    store : Store
        Used on the writer thread only (its connection holds the temporary tables).
    """

    def __init__(self, store):
        self.store = store
        con = store.con
        con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {IDS} (customer_id VARCHAR)")
        self.reference = store.table(FEATURES_TABLE).schema() if store.has_table(FEATURES_TABLE) else None
        if self.reference is not None:
            self.include = tuple(b for b in BLOCKS if BLOCK_MARKERS[b] in self.reference)
        else:
            self.include = BLOCKS
        self._sql: dict[dt.date, str] = {}
        self.columns: list[str] | None = None
        self.notes: list[str] = []

    @property
    def batch_as_of(self) -> dt.date | None:
        """The as-of date of the batch feature table (None without one)."""
        if self.reference is None:
            return None
        value = self.store.con.execute(f'SELECT max(as_of) FROM "{FEATURES_TABLE}"').fetchall()[0][0]
        return value.date() if isinstance(value, dt.datetime) else value

    def ids_table(self) -> ir.Table:
        return self.store.ibis.table(IDS, database="temp")

    def sql(self, as_of: dt.date) -> str:
        """The feature query for ``as_of`` over the customers in ``_svc_ids`` (compiled on first use)."""
        if as_of not in self._sql:
            self._sql = {as_of: self._compile(as_of)}  # one day at a time: the clock only moves forward
        return self._sql[as_of]

    def _compile(self, as_of: dt.date) -> str:
        con = self.store.con
        # The store's top categories are ranked over the rows of the customers in _svc_ids: all of them here.
        con.execute(f"DELETE FROM {IDS}")
        con.execute(f"INSERT INTO {IDS} SELECT customer_id FROM orders WHERE customer_id IS NOT NULL "
                    "UNION SELECT customer_id FROM customers UNION SELECT trim(customer_id) FROM customers")
        try:
            expr = build_features(self.store, as_of, include=self.include, cleaned=SubsetClean(self.store,
                                                                                          self.ids_table()))
        finally:
            con.execute(f"DELETE FROM {IDS}")
        if self.reference is not None:
            expr = self._aligned(expr)
        self.columns = list(expr.columns)
        sql = str(self.store.ibis.compile(expr))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {GROUP} AS SELECT * FROM ({sql}) LIMIT 0")
        log.info("compiled the live feature query for as_of %s (%d columns)", as_of, len(self.columns))
        return sql

    def _aligned(self, expr: ir.Table) -> ir.Table:
        """``expr`` with exactly the batch table's columns and types."""
        cols = []
        missing = []
        for name, dtype in self.reference.items():
            if name in expr.columns:
                col = expr[name]
                cols.append(col if col.type() == dtype else col.cast(dtype).name(name))
            else:
                missing.append(name)
                cols.append(ibis.null(dtype).name(name))
        extra = sorted(set(expr.columns) - set(self.reference))
        self.notes = []
        if missing:
            self.notes.append(f"live features lack {', '.join(missing)} (NULL): not among the store's current "
                              "top categories")
        if extra:
            self.notes.append(f"live features leave out {', '.join(extra)}: not in the batch features")
        for note in self.notes:
            log.warning(note)
        return expr.select(*cols)

    def compute(self, customer_ids: list[str], as_of: dt.date) -> int:
        """Features of ``customer_ids`` as of ``as_of`` into the temporary table ``_svc_group_features``.

        Returns the number of customers with features (a customer id the store does not know has none).
        """
        con = self.store.con
        sql = self.sql(as_of)
        con.execute(f"DELETE FROM {IDS}")
        con.execute(f"INSERT INTO {IDS} SELECT unnest(?)", [customer_ids])
        con.execute(f"DELETE FROM {GROUP}")
        con.execute(f"INSERT INTO {GROUP} SELECT * FROM ({sql})")
        return int(con.execute(f"SELECT count(*) FROM {GROUP}").fetchall()[0][0])

    def group_table(self) -> ir.Table:
        """The Ibis table of ``_svc_group_features`` (to compile segment assignments against)."""
        return self.store.ibis.table(GROUP, database="temp")


__all__ = ["GROUP", "IDS", "LiveFeatures", "SubsetClean"]
