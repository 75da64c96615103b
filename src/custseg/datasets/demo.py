"""A seeded, realistic demo store with planted customer personas.

:func:`make_store` draws a whole online shop from one seed: customers with
demographics, a product catalogue, orders and their lines, browsing sessions,
email engagement, a few survey answers and one randomised win-back campaign
with a known effect. Every customer is drawn from one of six personas
(:data:`PERSONAS`) whose behaviour differs clearly, so that segmentation
methods can be checked against the ground truth kept in ``demo_personas``.

Everything is vectorised numpy / pyarrow: there is no Python loop over
customers, orders or events (only over personas, countries, cities, years and
campaigns), and every random draw comes from ``numpy.random.default_rng(seed)``,
so the same seed gives identical tables.

Measured on the 2-core development machine, ``make_store(1_000_000, seed=0)``
takes 14-23 s wall time (``/usr/bin/time -v``: 23.2 s and 14.7 s in two runs)
with a peak resident memory of 4.7 GiB, for 1,000,000 customers, 4,949,336
orders, 10,363,378 order lines, 12,261,166 browsing events and 6,248,533 email
events. 10,000 customers take about 0.3 s. See ``docs/demo-store.md``.

The generator is split by area: :mod:`~custseg.datasets.vocabulary` (personas,
catalogue, countries, names), :mod:`~custseg.datasets._arrays` and
:mod:`~custseg.datasets._calendar` (vectorised helpers), and
:mod:`~custseg.datasets.generator` with its steps in the ``_gen_*`` modules.
This module is the public entry point.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from custseg.datasets.generator import _Gen
from custseg.datasets.vocabulary import (
    BASE_CURRENCY,
    CATEGORIES,
    CHANNELS,
    CURRENCIES,
    CURRENCY_RATES,
    LAPSED_SILENCE_DAYS,
    PERSONAS,
    TABLE_NAMES,
    TIERS,
    WINBACK_ID,
)

__all__ = [
    "BASE_CURRENCY",
    "CATEGORIES",
    "CHANNELS",
    "CURRENCIES",
    "CURRENCY_RATES",
    "LAPSED_SILENCE_DAYS",
    "PERSONAS",
    "TABLE_NAMES",
    "TIERS",
    "WINBACK_ID",
    "DemoStore",
    "load_demo",
    "make_store",
]


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


@dataclass(repr=False)
class DemoStore:
    """The tables of a demo store, one pyarrow Table each, with canonical column names.

    The canonical tables carry every column of :mod:`custseg.store.schema`
    except the provenance columns ``ingest_id`` and ``source_row``.

    Attributes
    ----------
    customers, products, orders, order_items, browsing_events, email_events,
    survey_responses, campaigns, campaign_assignments, currency_rates : pyarrow.Table
        The canonical tables.
    demo_personas : pyarrow.Table
        Ground truth: ``customer_id``, ``persona`` for every customer.
    campaign_truth : pyarrow.Table
        The true effect of the win-back campaign per persona: ``campaign_id``,
        ``persona``, ``lift`` (designed absolute lift in the probability of
        ordering inside the campaign window), ``realized_lift`` (share of treated
        customers the campaign converted), ``n_treatment``, ``n_control``,
        ``window_start``, ``window_end``.
    discount_codes : pyarrow.Table
        ``order_id``, ``discount_code`` aligned row by row with ``orders``
        (null when no discount); used by the Shopify export.
    as_of : datetime.date
        The day after the last order: the reference date for recency.
    """

    customers: pa.Table
    products: pa.Table
    orders: pa.Table
    order_items: pa.Table
    browsing_events: pa.Table
    email_events: pa.Table
    survey_responses: pa.Table
    campaigns: pa.Table
    campaign_assignments: pa.Table
    currency_rates: pa.Table
    demo_personas: pa.Table
    campaign_truth: pa.Table
    discount_codes: pa.Table
    as_of: dt.date
    seed: int = 0
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2024, 12, 31)

    def tables(self) -> dict[str, pa.Table]:
        """The canonical tables by name, in load order."""
        return {name: getattr(self, name) for name in TABLE_NAMES}

    def row_counts(self) -> dict[str, int]:
        out = {name: t.num_rows for name, t in self.tables().items()}
        out["demo_personas"] = self.demo_personas.num_rows
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v:,}" for k, v in self.row_counts().items())
        return f"DemoStore(seed={self.seed}, as_of={self.as_of}, {counts})"

    def __eq__(self, other: object) -> bool:  # pyarrow tables need .equals
        if not isinstance(other, DemoStore):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, pa.Table):
                if not a.equals(b):
                    return False
            elif a != b:
                return False
        return True


def _parse_date(value: str | dt.date) -> dt.date:
    """An ISO date string, date or datetime as a :class:`datetime.date`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


def make_store(
    n_customers: int = 10_000,
    seed: int = 0,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
) -> DemoStore:
    """Draw a complete demo shop with planted personas.

    Parameters
    ----------
    n_customers : int, default=10_000
        Registered customers (guest orders come on top, about 1% of orders).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the same seed gives identical tables.
    start, end : str, default "2023-01-01", "2024-12-31"
        First and last day of trading (ISO dates, inclusive). At least 400 days
        apart, so that lapsed customers can be silent for 9+ months.

    Returns
    -------
    DemoStore
        One pyarrow Table per canonical table plus the ground truth.

    Examples
    --------
    >>> demo = make_store(2_000, seed=1)
    >>> demo.customers.num_rows
    2000
    """
    if n_customers < len(PERSONAS) * 10:
        raise ValueError(f"n_customers must be at least {len(PERSONAS) * 10}, got {n_customers}")
    d_start, d_end = _parse_date(start), _parse_date(end)
    n_days = (d_end - d_start).days + 1
    if n_days < 400:
        raise ValueError(f"start {d_start} and end {d_end} must be at least 400 days apart")
    rng = np.random.default_rng(seed)
    g = _Gen(rng, n_customers, d_start, d_end)
    return DemoStore(**g.run(), seed=seed)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_demo(store, demo: DemoStore) -> None:
    """Write every table of ``demo`` straight into ``store`` (one transaction).

    The fast path for benchmarks and examples: no ingestion, no cleaning. The
    ground truth ``demo_personas`` is loaded too. The store's canonical tables
    must be empty.
    """
    names = list(TABLE_NAMES) + ["demo_personas"]
    busy = [t for t in names if store.count(t) > 0]
    if busy:
        raise ValueError(f"load_demo needs empty tables; already filled: {', '.join(busy)}")
    with store.transaction():
        for name, table in demo.tables().items():
            store.append(name, table)
        store.append("demo_personas", demo.demo_personas)
