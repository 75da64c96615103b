"""What the recommender reads from the store: purchases, the catalogue, segment memberships.

The heavy work (cleaning, filtering, aggregating order lines to one row per
customer and product) runs in the store's engine through Ibis; only the
aggregate comes back as pandas, and is turned into sparse matrices.

A *purchase* is a line of a completed order of a known customer (guests are
left out), with a product id, before ``as_of`` (exclusive, like
:func:`custseg.features.build_features`). Cancelled and returned orders do not
count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import scipy.sparse as sp

from custseg.cleaning.clean import clean
from custseg.features.build import as_date


@dataclass
class Purchases:
    """Customer x product purchase matrix and its indexes.

    Attributes
    ----------
    customers : ndarray of str, shape (n_customers,)
        Customers with at least one purchase, sorted.
    products : DataFrame
        ``product_id, product_name, category, price_tier``; one row per product that
        was bought at least once, sorted by ``product_id`` (the matrix columns).
    bought : scipy.sparse.csr_matrix, shape (n_customers, n_products)
        1.0 where the customer bought the product (in any number of orders).
    units : scipy.sparse.csr_matrix, shape (n_customers, n_products)
        Units bought.
    """

    customers: np.ndarray
    products: pd.DataFrame
    bought: sp.csr_matrix
    units: sp.csr_matrix


def require_order_items(store) -> None:
    """Refuse a store without order lines, in one line."""
    if not store.has_table("order_items") or store.count("order_items") == 0:
        raise ValueError(
            f"store {store.path} has no order lines (order_items): product recommendations need the products "
            "each customer bought, not only orders"
        )


def _cut(value: dt.date) -> ibis.expr.types.TimestampScalar:
    return ibis.timestamp(dt.datetime.combine(value, dt.time()))


def purchase_lines(store, start=None, end=None):
    """Completed order lines of known customers with a product, ``start <= order_time < end`` (Ibis)."""
    items = clean(store).order_items
    keep = (items.status == "completed") & items.customer_id.notnull() & items.product_id.notnull()
    if start is not None:
        keep &= items.order_time >= _cut(as_date(start))
    if end is not None:
        keep &= items.order_time < _cut(as_date(end))
    return items.filter(keep)


def load_purchases(store, as_of=None) -> Purchases:
    """Purchases before ``as_of`` (all when None) as sparse matrices.

    Raises
    ------
    ValueError
        When the store has no order lines, or no purchase before ``as_of``.
    """
    require_order_items(store)
    lines = purchase_lines(store, end=as_of).select("customer_id", "product_id", "product_name", "category",
                                                    "quantity")
    # One compiled query for the cleaned lines; the two aggregates over it in DuckDB.
    source = f"WITH lines AS ({store.ibis.compile(lines)})"
    frame = store.con.execute(
        f"{source} SELECT customer_id::VARCHAR AS customer_id, product_id::VARCHAR AS product_id, "
        "sum(quantity) AS units FROM lines GROUP BY ALL ORDER BY customer_id, product_id").df()
    if frame.empty:
        when = f" before {as_date(as_of)}" if as_of is not None else ""
        raise ValueError(f"store {store.path} has no completed purchases with a product{when}")
    # The catalogue wins; products missing from it take the name and category of their order lines
    # (categories lower-cased, as cleaning does).
    products = store.con.execute(f"""{source},
        per_line AS (SELECT product_id::VARCHAR AS product_id, mode(product_name) AS line_name,
                            mode(category) AS line_category FROM lines GROUP BY ALL),
        catalogue AS (SELECT product_id::VARCHAR AS product_id, any_value(name) AS name,
                             any_value(lower(category)) AS category, any_value(lower(price_tier)) AS price_tier
                      FROM products GROUP BY ALL)
        SELECT l.product_id, coalesce(c.name, l.line_name, l.product_id) AS product_name,
               coalesce(c.category, l.line_category, '(no category)') AS category, c.price_tier
        FROM per_line l LEFT JOIN catalogue c USING (product_id) ORDER BY l.product_id""").df()
    customers, c_idx = np.unique(frame["customer_id"].to_numpy(dtype=object).astype(str), return_inverse=True)
    p_pos = pd.Index(products["product_id"]).get_indexer(frame["product_id"])
    shape = (len(customers), len(products))
    units = sp.csr_matrix((frame["units"].to_numpy(dtype=np.float64).clip(min=1.0), (c_idx, p_pos)), shape=shape)
    bought = units.copy()
    bought.data[:] = 1.0
    return Purchases(customers=customers, products=products, bought=bought, units=units)


def load_memberships(store, run_id: str) -> pd.DataFrame:
    """``customer_id, segment`` of a run; one segment per customer.

    In an overlapping (tag) run a customer in several segments is given the
    smallest of them (the most specific).
    """
    rows = store.con.execute("SELECT count(*) FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows[0][0]:
        raise ValueError(f"no segmentation run {run_id!r}; see `custseg segments list`")
    frame = store.con.execute(
        """
        WITH m AS (SELECT customer_id, segment FROM segment_memberships
                   WHERE run_id = ? AND customer_id IS NOT NULL AND segment IS NOT NULL),
             size AS (SELECT segment, count(*) AS n FROM m GROUP BY segment)
        SELECT customer_id, arg_min(segment, (n, segment)) AS segment
        FROM m JOIN size USING (segment) GROUP BY customer_id ORDER BY customer_id
        """,
        [run_id],
    ).df()
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def run_as_of(store, run_id: str) -> dt.date | None:
    rows = store.con.execute("SELECT as_of FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    return as_date(rows[0][0]) if rows and rows[0][0] is not None else None


def has_runs(store) -> bool:
    return bool(store.con.execute("SELECT count(*) FROM segment_runs").fetchall()[0][0])


def all_customers(store) -> np.ndarray:
    """Every registered customer id (trimmed, as cleaning does), sorted."""
    rows = store.con.execute(
        "SELECT DISTINCT nullif(trim(customer_id::VARCHAR), '') AS c FROM customers WHERE c IS NOT NULL ORDER BY c"
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=object).astype(str)
