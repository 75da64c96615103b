"""Per-customer running aggregates: live features in microseconds, equal to the batch ones.

The batch feature query (:func:`custseg.features.build_features`) is one large
SQL statement; planning and running it costs 0.15-0.25 s whatever the number
of customers, too slow for an answer in milliseconds. The service therefore
keeps, in memory, every customer's **cleaned rows** (orders, order lines,
email and browsing events, survey answers, the cleaned profile) and computes
a touched customer's features from them in Python, with the same definitions
as the batch blocks (:mod:`custseg.features.build`); the replay test
(``tests/test_service_replay.py``) checks that both give the same values.

* **Start.** The cleaned tables are read once, with the batch cleaning code
  (:mod:`custseg.cleaning.clean`), sorted by customer; a customer's rows become
  Python lists the first time an event touches them.
* **An event with a customer id** (an order, a page view, an email open, a
  survey answer) is cleaned in Python as the batch cleaning would clean it,
  with the constants frozen at start (currency rates, the outlier cap, the
  product catalogue), and appended to that customer's rows.
* **Everything else reloads the customers concerned from the store** with the
  batch cleaning (a compiled query over the customers in ``_svc_ids``): a
  profile update (new customer, changed email or demographics), an event
  known only by email or by anonymous device id, and a login that changes
  which customer a device's anonymous browsing belongs to
  (:attr:`custseg.service.canonical.Written.reattributed`).

Memory: about 0.3 KiB per stored row (a store of 400,000 rows: ~120 MiB), plus
the Python lists of the customers touched since the start.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from custseg.features.build import AGE_BANDS, FLOAT_DIGITS
from custseg.segmenters.rules.evaluate import round_like_duckdb as _round

log = logging.getLogger(__name__)

#: Cleaned columns kept per table (customer_id first).
COLUMNS = {
    "orders": ("customer_id", "order_id", "order_time", "order_date", "status", "is_credit", "net_amount",
               "discount", "is_outlier", "items_count"),
    "order_items": ("customer_id", "order_id", "order_time", "status", "product_id", "category", "price_tier",
                    "quantity", "line_amount"),
    "email_events": ("customer_id", "event_time", "event_type", "campaign_id"),
    "browsing_events": ("customer_id", "event_time", "event_type", "session_id"),
    "survey_responses": ("customer_id", "response_time", "response_id", "nps", "satisfaction", "interests"),
    "customers": ("customer_id", "birth_date", "age", "gender", "country", "region", "city", "acquisition_channel",
                  "loyalty_member", "email_consent", "signup_date"),
}
_DEMOGRAPHICS = COLUMNS["customers"][1:]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "blank"


def _div(num, den):
    """``num / den`` when ``den > 0`` (both known), else None: the batch ``_safe_div``."""
    if num is None or den is None or not den > 0:
        return None
    return num / den


def _sum(values) -> float | None:
    """SQL ``sum``: None over no (non-null) values."""
    total, seen = 0.0, False
    for v in values:
        if v is not None:
            total += v
            seen = True
    return total if seen else None


def round_like_duckdb(value: float | None, digits: int = FLOAT_DIGITS) -> float | None:
    """DuckDB's ``round(value, digits)`` on a DOUBLE (by default the features' ``FLOAT_DIGITS``)."""
    return _round(value, digits)


def _age_band(age: int | None) -> str | None:
    if age is None:
        return None
    if age < 18:
        return "<18"
    label = None
    for lo, name in AGE_BANDS:
        if age >= lo:
            label = name
    return label


def _date(value):
    return value.date() if isinstance(value, dt.datetime) else value


@dataclass
class Rows:
    """One customer's cleaned rows (tuples in the order of :data:`COLUMNS`, without ``customer_id``)."""

    orders: list = field(default_factory=list)
    order_items: list = field(default_factory=list)
    email_events: list = field(default_factory=list)
    browsing_events: list = field(default_factory=list)
    survey_responses: list = field(default_factory=list)
    customers: list = field(default_factory=list)


class _Sorted:
    """A cleaned table sorted by customer id, with each customer's slice found by bisection."""

    def __init__(self, table: pa.Table):
        self.table = table = table.combine_chunks()  # one chunk a column: take() stays cheap
        ids = table.column("customer_id")
        # Run starts: the customers, in order, and where each one's rows begin.
        self.customers: list[str] = []
        self.starts: list[int] = []
        previous = object()
        for i, cid in enumerate(ids.to_pylist()):
            if cid != previous:
                self.customers.append(cid)
                self.starts.append(i)
                previous = cid
        self.starts.append(table.num_rows)

    def rows(self, customer_ids: Sequence[str]) -> dict[str, list[tuple]]:
        """``{customer_id: rows}`` of several customers, read from Arrow in one go."""
        spans, out = [], {}
        for cid in customer_ids:
            out[cid] = []
            i = bisect_left(self.customers, cid)
            if i < len(self.customers) and self.customers[i] == cid:
                spans.append((cid, self.starts[i], self.starts[i + 1]))
        if not spans:
            return out
        index = pa.array([j for _, lo, hi in spans for j in range(lo, hi)], pa.int64())
        part = self.table.take(index)
        rows = list(zip(*(part.column(c).to_pylist() for c in part.column_names[1:])))
        at = 0
        for cid, lo, hi in spans:
            out[cid] = rows[at:at + hi - lo]
            at += hi - lo
        return out


class LiveAggregates:
    """Cleaned rows of every customer, updated by events; features computed from them.

    Parameters
    ----------
    store : Store
        Read with its connection (the writer thread's).
    reference : dict of str to str
        The batch feature table's columns and DuckDB types, in order.
    include : tuple of str
        The feature blocks of the batch table.
    """

    def __init__(self, store, reference: dict[str, str], include: Sequence[str]):
        self.store = store
        self.reference = dict(reference)
        self.include = tuple(include)
        self.categories = self._categories()
        self._floats = {c for c, t in self.reference.items() if t in ("DOUBLE", "FLOAT")}
        self._sql = self._compile()
        self._rows: dict[str, Rows] = {}
        self._stale: set[str] = set()
        self._frozen: dict[str, _Sorted] = {}
        self.rates, self.cap, self.products = self._constants()
        self.loaded_rows = self._load_all()

    # -- start ---------------------------------------------------------------------------------
    def _categories(self) -> dict[str, str]:
        """``{column: slug}`` of the batch table's ``cat_share_*`` columns."""
        return {c: c[len("cat_share_"):] for c in self.reference if c.startswith("cat_share_")}

    def _compile(self) -> dict[str, str]:
        """The cleaned tables' queries over the customers in ``_svc_ids``, sorted by customer."""
        from custseg.service.features import IDS, SubsetClean

        store = self.store
        store.con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {IDS} (customer_id VARCHAR)")
        return _queries(store, SubsetClean(store, store.ibis.table(IDS, database="temp")))

    def _constants(self):
        con = self.store.con
        rates = {}
        if con.execute("SELECT count(*) FROM currency_rates").fetchall()[0][0]:
            rates = {r[0]: float(r[1]) for r in con.execute(
                "SELECT upper(trim(currency)), rate FROM currency_rates").fetchall()}
        from custseg.cleaning.clean import converted_orders, log_outlier_cap

        # The cap of clean_orders, exp() taken by DuckDB as there (the same double to the last bit).
        log_cap = log_outlier_cap(self.store, converted_orders(self.store))
        cap = con.execute("SELECT exp(?::DOUBLE)", [log_cap]).fetchall()[0][0] if log_cap is not None else None
        products = {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT product_id, category, price_tier FROM products").fetchall()}
        return rates, cap, products

    def _fetch(self, customer_ids: Sequence[str]) -> dict[str, pa.Table]:
        """The cleaned rows of ``customer_ids`` (the batch cleaning, store-wide maps and cap)."""
        from custseg.service.features import IDS

        con = self.store.con
        con.execute(f"DELETE FROM {IDS}")
        con.execute(f"INSERT INTO {IDS} SELECT unnest(?)", [list(customer_ids)])
        try:
            return {name: con.sql(sql).to_arrow_table() for name, sql in self._sql.items()}
        finally:
            con.execute(f"DELETE FROM {IDS}")

    def _load_all(self) -> int:
        tables = self._fetch_everyone()
        self._frozen = {name: _Sorted(t) for name, t in tables.items()}
        return sum(t.num_rows for t in tables.values())

    def _fetch_everyone(self) -> dict[str, pa.Table]:
        """The cleaned rows of every customer (the same queries without the ``_svc_ids`` filter)."""
        from custseg.cleaning.clean import CleanTables

        con = self.store.con
        return {name: con.sql(sql).to_arrow_table()
                for name, sql in _queries(self.store, CleanTables(self.store, persist=False)).items()}

    # -- rows ----------------------------------------------------------------------------------
    def forget(self, customer_ids: Iterable[str]) -> None:
        """Read these customers' rows from the store when next needed."""
        for cid in customer_ids:
            self._rows.pop(cid, None)
            self._stale.add(cid)

    def rows(self, customer_id: str) -> Rows:
        """The customer's rows (made from the frozen tables on first use)."""
        found = self._rows.get(customer_id)
        if found is None:
            self.prepare([customer_id])
            found = self._rows[customer_id]
        return found

    def prepare(self, customer_ids: Iterable[str]) -> None:
        """Make the rows of these customers ready (in one read of each frozen table)."""
        cold = sorted({c for c in customer_ids if c not in self._rows})
        if not cold:
            return
        stale = [c for c in cold if c in self._stale]
        if stale:
            self.reload(stale)
        cold = [c for c in cold if c not in self._rows]
        if cold:
            parts = {name: t.rows(cold) for name, t in self._frozen.items()}
            for cid in cold:
                self._rows[cid] = Rows(**{name: part[cid] for name, part in parts.items()})

    def reload(self, customer_ids: Iterable[str]) -> None:
        """Read these customers' rows again from the store (the batch cleaning)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return
        tables = self._fetch(ids)
        fresh = {cid: Rows() for cid in ids}
        for name, t in tables.items():
            cols = [t.column(c).to_pylist() for c in t.column_names]
            for row in zip(*cols):
                if row[0] in fresh:
                    getattr(fresh[row[0]], name).append(tuple(row[1:]))
        self._rows.update(fresh)
        self._stale -= set(ids)

    def apply(self, events: Sequence, reload: Iterable[str] = ()) -> None:
        """Add stored events' cleaned rows to their customers; reload ``reload`` and the rest (see module)."""
        from custseg.service.events import BrowsingEvent, EmailEvent, OrderEvent, SurveyAnswer

        again = set(reload) | (self._stale & {e.customer_id for e in events})
        self.prepare(e.customer_id for e in events if e.customer_id is not None and e.customer_id not in again)
        for e in events:
            cid = e.customer_id
            if cid is None or cid in again:
                continue
            if isinstance(e, OrderEvent):
                self._order(self.rows(cid), e)
            elif isinstance(e, BrowsingEvent):
                self.rows(cid).browsing_events.append((e.time, e.type, e.session_id))
            elif isinstance(e, EmailEvent):
                self.rows(cid).email_events.append((e.time, e.email_type, e.campaign_id))
            elif isinstance(e, SurveyAnswer):
                self.rows(cid).survey_responses.append(
                    (e.time, e.response_id, e.nps, e.satisfaction, e.interests_text))
            else:  # a profile update: the cleaned profile comes from the store
                again.add(cid)
        self.reload(again)

    def _order(self, rows: Rows, e) -> None:
        """The cleaned order and lines of an order event (``clean_orders``, ``clean_order_items``)."""
        fx = self.rates.get(e.currency.upper(), 1.0) if (self.rates and e.currency is not None) else 1.0
        total = e.total * fx if e.total is not None else None
        discount = e.discount * fx if e.discount is not None else None
        is_credit = total is not None and total < 0
        if e.status == "completed":
            net = total
        elif is_credit:
            net = total
        else:
            net = 0.0
        outlier = (e.status == "completed" and total is not None and total > 0 and self.cap is not None
                   and total > self.cap)
        rows.orders.append((e.order_id, e.time, e.time.date(), e.status, is_credit, net, discount, outlier,
                            e.items_count))
        for item in e.items:
            category, tier = self.products.get(item.product_id, (None, None))
            category = item.category if item.category is not None else category
            rows.order_items.append((
                e.order_id, e.time, e.status, item.product_id,
                category.lower() if category is not None else None,
                tier.lower() if tier is not None else None,
                item.quantity, item.line_amount * fx if item.line_amount is not None else None))

    # -- features ------------------------------------------------------------------------------
    def features(self, customer_ids: Sequence[str], as_of: dt.date) -> pa.Table:
        """The batch feature table's rows of ``customer_ids`` as of ``as_of`` (customers it would hold)."""
        cut = dt.datetime.combine(as_of, dt.time())
        out = []
        self.prepare(customer_ids)
        for cid in customer_ids:
            row = self._features(cid, self.rows(cid), as_of, cut)
            if row is not None:
                out.append(row)
        schema = pa.schema([(c, _ARROW[t]) for c, t in self.reference.items()])
        return pa.Table.from_pylist(out, schema=schema)

    def _features(self, cid: str, r: Rows, as_of: dt.date, cut: dt.datetime) -> dict | None:
        orders = [o for o in r.orders if o[1] < cut]
        profile = [c for c in r.customers if c[-1] is None or c[-1] < as_of]
        if not orders and not profile:
            return None
        f: dict = {"customer_id": cid}
        inc = self.include
        if "orders" in inc:
            f.update(self._orders_block(orders, as_of))
        if "items" in inc:
            f.update(self._items_block([i for i in r.order_items if i[1] < cut]))
        if "clv" in inc:
            f.update(self._clv_block(orders, as_of))
        if "email" in inc:
            f.update(self._email_block([e for e in r.email_events if e[0] < cut]))
        if "browsing" in inc:
            f.update(self._browsing_block([b for b in r.browsing_events if b[0] < cut], as_of))
        if "demographics" in inc and profile:
            f.update(self._demographics(profile[0], as_of))
        if "surveys" in inc:
            f.update(self._surveys([s for s in r.survey_responses if s[0] < cut]))
        if "orders" in inc:
            units = f.get("units") if "items" in inc else None
            f["items_per_order"] = _div(units if units is not None else f.get("units_from_orders"),
                                        f["orders_count"])
        f["as_of"] = as_of
        return {c: (round_like_duckdb(f.get(c)) if c in self._floats else f.get(c)) for c in self.reference}

    @staticmethod
    def _orders_block(orders: list, as_of: dt.date) -> dict:
        zero = {"orders_count": 0, "orders_all": 0, "net_revenue": 0.0, "cancelled_orders": 0,
                "returned_orders": 0, "outlier_orders": 0}
        if not orders:
            return zero
        # (order_id, order_time, order_date, status, is_credit, net_amount, discount, is_outlier, items_count)
        done = [o for o in orders if o[3] == "completed" and not o[4]]
        n = len(done)
        first = min((o[2] for o in done), default=None)
        last = max((o[2] for o in done), default=None)
        completed_value = _sum(o[5] for o in done)
        discount_total = _sum((o[6] or 0.0) for o in done)
        out = {
            "orders_count": n,
            "orders_all": len(orders),
            "first_order_date": first,
            "last_order_date": last,
            "net_revenue": _sum(o[5] for o in orders),
            "cancelled_orders": sum(1 for o in orders if o[3] == "cancelled"),
            "returned_orders": sum(1 for o in orders if o[3] == "returned"),
            "outlier_orders": sum(1 for o in orders if o[7]),
            "units_from_orders": _sum(o[8] for o in done),
            "recency_days": (as_of - last).days if last is not None else None,
            "tenure_days": (as_of - first).days if first is not None else None,
            "aov": _div(completed_value, n),
            "avg_days_between_orders": (last - first).days / (n - 1) if n > 1 else None,
            "discounted_order_share": _div(sum(1 for o in done if (o[6] or 0) > 0), n),
            "discount_rate": _div(discount_total, completed_value + discount_total
                                  if completed_value is not None and discount_total is not None else None),
            "cancel_rate": None,
            "return_rate": None,
        }
        out["cancel_rate"] = _div(out["cancelled_orders"], out["orders_all"])
        out["return_rate"] = _div(out["returned_orders"], out["orders_all"])
        return out

    def _items_block(self, items: list) -> dict:
        # (order_id, order_time, status, product_id, category, price_tier, quantity, line_amount)
        done = [i for i in items if i[2] == "completed"]
        if not done:
            return {"distinct_categories": 0, "distinct_products": 0}
        revenue = _sum(i[7] for i in done)
        per_cat: dict[str, float | None] = {}
        for i in done:
            if i[4] is not None:
                per_cat[i[4]] = _sum((per_cat.get(i[4]), i[7])) if i[4] in per_cat else i[7]
        ranked = sorted(((v, c) for c, v in per_cat.items()), key=lambda vc: (
            vc[0] is None, -(vc[0] if vc[0] is not None else 0.0), vc[1]))
        premium = _sum(i[7] for i in done if i[5] == "premium")
        tiered = _sum(i[7] for i in done if i[5] is not None)
        out = {
            "units": _sum(i[6] for i in done),
            "orders_with_items": len({i[0] for i in done if i[0] is not None}),
            "distinct_categories": len({i[4] for i in done if i[4] is not None}),
            "distinct_products": len({i[3] for i in done if i[3] is not None}),
            "premium_share": _div(premium if premium is not None else 0.0, tiered if tiered is not None else 0.0),
            "top_category": ranked[0][1] if ranked else None,
        }
        by_slug: dict[str, str] = {}
        for c in per_cat:
            by_slug.setdefault(_slug(c), c)
        for col, slug in self.categories.items():
            c = by_slug.get(slug)
            share = per_cat[c] if c is not None else None  # the sum of the category's line amounts
            out[col] = _div(share if share is not None else 0.0, revenue)
        return out

    @staticmethod
    def _clv_block(orders: list, as_of: dt.date) -> dict:
        days: dict[dt.date, float | None] = {}
        for o in orders:
            if o[3] == "completed" and not o[4]:
                days[o[2]] = _sum((days.get(o[2]), o[5])) if o[2] in days else o[5]
        if not days:
            return {}
        first, last = min(days), max(days)
        x = len(days) - 1
        total = _sum(days.values())
        first_value = days[first]
        return {
            "clv_x": x,
            "clv_t_x_days": float((last - first).days),
            "clv_T_days": float((as_of - first).days - 1),
            "clv_mean_repeat_value": ((total - first_value) / x
                                      if x > 0 and total is not None and first_value is not None else None),
        }

    @staticmethod
    def _email_block(events: list) -> dict:
        # (event_time, event_type, campaign_id)
        if not events:
            return {"emails_sent": 0}
        sent = len({e[2] for e in events if e[1] == "sent" and e[2] is not None})
        opened = len({e[2] for e in events if e[1] == "open" and e[2] is not None})
        clicked = len({e[2] for e in events if e[1] == "click" and e[2] is not None})
        engaged = [e[0] for e in events if e[1] in ("open", "click") and e[0] is not None]
        open_rate, click_rate = _div(opened, sent), _div(clicked, sent)
        return {
            "emails_sent": sent,
            "email_unsubscribed": any(e[1] == "unsubscribe" for e in events),
            "email_bounced": any(e[1] == "bounce" for e in events),
            "last_email_engagement": max(engaged) if engaged else None,
            "email_open_rate": min(open_rate, 1.0) if open_rate is not None else None,
            "email_click_rate": min(click_rate, 1.0) if click_rate is not None else None,
        }

    @staticmethod
    def _browsing_block(events: list, as_of: dt.date) -> dict:
        # (event_time, event_type, session_id)
        zero = {"sessions_30d": 0, "sessions_90d": 0, "product_views_30d": 0, "product_views_90d": 0,
                "cart_adds": 0, "cart_adds_90d": 0, "cart_sessions": 0}
        if not events:
            return zero
        ages = [(as_of - e[0].date()).days if e[0] is not None else None for e in events]
        sessions: dict = {}
        for e in events:
            cart, bought = sessions.get(e[2], (False, False))
            sessions[e[2]] = (cart or e[1] == "add_to_cart", bought or e[1] == "purchase")
        carts = [s for s in sessions.values() if s[0]]

        def within(days: int, kind: str | None = None) -> int:
            return sum(1 for e, a in zip(events, ages) if a is not None and a <= days
                       and (kind is None or e[1] == kind))

        times = [e[0] for e in events if e[0] is not None]
        return {
            "sessions_30d": len({e[2] for e, a in zip(events, ages) if a is not None and a <= 30
                                 and e[2] is not None}),
            "sessions_90d": len({e[2] for e, a in zip(events, ages) if a is not None and a <= 90
                                 and e[2] is not None}),
            "product_views_30d": within(30, "product_view"),
            "product_views_90d": within(90, "product_view"),
            "cart_adds": sum(1 for e in events if e[1] == "add_to_cart"),
            "cart_adds_90d": within(90, "add_to_cart"),
            "last_visit": max(times) if times else None,
            "cart_sessions": len(carts),
            "cart_abandonment_rate": _div(sum(1 for s in carts if not s[1]), len(carts)),
        }

    @staticmethod
    def _demographics(profile: tuple, as_of: dt.date) -> dict:
        c = dict(zip(_DEMOGRAPHICS, profile))
        born = c["birth_date"]
        age = None
        if born is not None:
            had_birthday = (as_of.month, as_of.day) >= (born.month, born.day)
            age = as_of.year - born.year - (0 if had_birthday else 1)
        if age is None and c["age"] is not None:
            age = int(c["age"])
        return {"age": age, "age_band": _age_band(age), "gender": c["gender"], "country": c["country"],
                "region": c["region"], "city": c["city"], "acquisition_channel": c["acquisition_channel"],
                "loyalty_member": c["loyalty_member"], "email_consent": c["email_consent"],
                "signup_date": c["signup_date"]}

    @staticmethod
    def _surveys(responses: list) -> dict:
        # (response_time, response_id, nps, satisfaction, interests)
        if not responses:
            return {}
        latest = max(responses, key=lambda s: (s[0] is not None, s[0] or dt.datetime.min,
                                               s[1] is not None, s[1] or ""))
        return {"nps": latest[2], "satisfaction": latest[3], "stated_interests": latest[4]}


def _queries(store, cleaned) -> dict[str, str]:
    """SQL of the :data:`COLUMNS` of each cleaned table, rows with a customer, sorted by customer."""
    out = {}
    for name, cols in COLUMNS.items():
        t = cleaned.get(name)
        out[name] = str(store.ibis.compile(t.filter(t.customer_id.notnull()).select(*cols).order_by("customer_id")))
    return out


_ARROW = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(), "INTEGER": pa.int32(),
          "BIGINT": pa.int64(), "SMALLINT": pa.int16(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
          "TIMESTAMP": pa.timestamp("us")}

__all__ = ["COLUMNS", "LiveAggregates", "Rows"]
