"""Cleaning: from the raw canonical tables to the tables features are built on.

Every step is an Ibis expression, so the same cleaning runs on DuckDB and
Spark. The rules (documented in docs/cleaning.md):

* **Revenue netting.** A completed order counts its total. A cancelled or
  returned order counts 0; when it is a credit note (negative total, as the
  ``C`` invoices of Online Retail) it counts its negative total, so it offsets
  the order it reverses.
* **Currencies.** When ``currency_rates`` has rows, amounts are multiplied by
  the rate of their currency (units of base currency per unit); orders whose
  currency has no rate keep their amount and are flagged ``currency_unknown``.
* **Outliers.** On the log of completed order totals: an order is an outlier
  when its modified z-score ``0.6745 * (log(total) - median) / MAD`` exceeds
  3.5 (Iglewicz and Hoaglin). The upper bound ``exp(median + 3.5 * MAD /
  0.6745)`` is the cap used by ``cap_outliers``.
* **Identity.** An order, email event or survey answer without a customer id
  is joined to a customer by normalised email. Browsing under an anonymous id
  is attached to the customer that id was seen logged in as (the smallest
  such customer id when a device was shared). Orders that still have no
  customer are guests: counted, but kept out of customer features.
* **Categoricals.** Countries to ISO alpha-2, genders to female / male /
  other / unknown, emails lower-cased, labels trimmed and lower-cased.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from custseg.cleaning.normalize import (
    clean_text,
    normalize_country,
    normalize_email,
    normalize_gender,
    normalize_label,
)

OUTLIER_Z = 3.5


class CleanTables:
    """The cleaned tables of a source, computed on first use.

    With ``persist`` each table is computed once and kept as ``clean_<table>``
    (a table in the DuckDB store, a cached view on Spark), so that feature
    blocks read it instead of recomputing the cleaning; a table no block asks
    for is never computed.
    """

    _BUILDERS = {
        "customers": lambda self: clean_customers(self.source),
        "orders": lambda self: clean_orders(self.source, self.customers),
        "order_items": lambda self: clean_order_items(self.source, self.orders),
        "browsing_events": lambda self: clean_browsing(self.source),
        "email_events": lambda self: clean_email_events(self.source, self.customers),
        "survey_responses": lambda self: clean_surveys(self.source, self.customers),
    }

    def __init__(self, source, persist: bool = True):
        self.source = source
        self.persist = persist
        self._cache: dict[str, ir.Table] = {}

    def get(self, name: str) -> ir.Table:
        if name not in self._cache:
            expr = self._BUILDERS[name](self)
            self._cache[name] = self.source.persist(f"clean_{name}", expr) if self.persist else expr
        return self._cache[name]

    customers = property(lambda self: self.get("customers"))
    orders = property(lambda self: self.get("orders"))
    order_items = property(lambda self: self.get("order_items"))
    browsing_events = property(lambda self: self.get("browsing_events"))
    email_events = property(lambda self: self.get("email_events"))
    survey_responses = property(lambda self: self.get("survey_responses"))


def _email_map(customers: ir.Table) -> ir.Table:
    c = customers.filter(customers.email.notnull())
    return c.group_by(email_key=c.email).aggregate(email_customer_id=c.customer_id.min())


def clean_customers(source) -> ir.Table:
    c = source.table("customers")
    return c.mutate(
        customer_id=clean_text(c.customer_id),
        email=normalize_email(c.email),
        gender=normalize_gender(c.gender),
        country=normalize_country(c.country),
        region=clean_text(c.region),
        city=clean_text(c.city),
        acquisition_channel=normalize_label(c.acquisition_channel),
    ).filter(lambda t: t.customer_id.notnull())


def _resolve_customer(t: ir.Table, email_map: ir.Table) -> ir.Table:
    """Fill ``customer_id`` from the email map where the source has none.

    Only the rows without an id are joined (most rows have one).
    """
    known = t.filter(t.customer_id.notnull())
    unknown = t.filter(t.customer_id.isnull())
    unknown = unknown.mutate(email=normalize_email(unknown.email))
    joined = unknown.left_join(email_map, unknown.email == email_map.email_key)
    joined = joined.mutate(customer_id=joined.email_customer_id).drop("email_key", "email_customer_id")
    return known.union(joined.select(*known.columns))


def _scalar(source, expr):
    value = source.ibis.execute(expr)
    return None if value is None or value != value else float(value)


def outlier_bounds(source, orders: ir.Table) -> tuple[float | None, float | None]:
    """Median and MAD of ln(total) over completed orders with a positive total."""
    pos = orders.filter((orders.status == "completed") & (orders.total > 0))
    log_median = _scalar(source, pos.total.ln().median())
    if log_median is None:
        return None, None
    log_mad = _scalar(source, (pos.total.ln() - log_median).abs().median())
    return log_median, log_mad


def converted_orders(source) -> ir.Table:
    """``orders`` with totals and discounts in the base currency (see the module documentation),
    ``fx_rate`` and ``currency_unknown``."""
    # Ingestion has trimmed every value, turned empty strings into NULL, checked
    # statuses against the allowed set and lower-cased emails; string work on the
    # millions of order rows is limited to what that does not cover.
    o = source.table("orders")
    rates = source.table("currency_rates")
    if source.ibis.execute(rates.count()) > 0:
        rates = rates.select(rate_currency=clean_text(rates.currency).upper(), rate=rates.rate)
        o = o.left_join(rates, o.currency.upper() == rates.rate_currency)
        o = o.mutate(
            total=o.total * ibis.coalesce(o.rate, 1.0),
            discount=o.discount * ibis.coalesce(o.rate, 1.0),
            fx_rate=ibis.coalesce(o.rate, 1.0),
            currency_unknown=o.rate.isnull() & o.currency.notnull(),
        ).drop("rate_currency", "rate")
    else:
        o = o.mutate(fx_rate=ibis.literal(1.0), currency_unknown=ibis.literal(False))
    return o


def log_outlier_cap(source, orders: ir.Table) -> float | None:
    """ln of the outlier cap of ``orders`` (converted): ``median + 3.5 * MAD / 0.6745`` of ln(total)
    over completed positive totals; None when there are none or their MAD is 0."""
    log_median, log_mad = outlier_bounds(source, orders)
    return log_median + OUTLIER_Z * log_mad / 0.6745 if log_median is not None and log_mad else None


def clean_orders(source, customers: ir.Table) -> ir.Table:
    o = converted_orders(source)
    # Outliers on the log scale of completed, positive totals (bounds computed once, as numbers).
    log_cap = log_outlier_cap(source, o)
    if log_cap is not None:
        cap = ibis.literal(log_cap, type="float64").exp()  # DOUBLE, not DECIMAL
    else:
        cap = ibis.null("float64")

    o = _resolve_customer(o, _email_map(customers))
    is_credit = o.total < 0
    return o.mutate(
        is_guest=o.customer_id.isnull(),
        is_credit=is_credit,
        net_amount=ibis.cases(
            (o.status == "completed", o.total),
            (is_credit, o.total),
            else_=0.0,
        ),
        order_date=o.order_time.date(),
        outlier_cap=cap,
        is_outlier=(o.status == "completed") & (o.total > 0) & cap.notnull() & (o.total > cap),
    )


def clean_order_items(source, orders: ir.Table) -> ir.Table:
    i = source.table("order_items")
    products = source.table("products")
    p = products.select(p_product_id=products.product_id, p_category=products.category, p_price_tier=products.price_tier)
    i = i.left_join(p, i.product_id == p.p_product_id)
    i = i.mutate(
        category=ibis.coalesce(i.category, i.p_category).lower(),
        price_tier=i.p_price_tier.lower(),
    ).drop("p_product_id", "p_category", "p_price_tier")
    o = orders.select(
        o_order_id=orders.order_id,
        customer_id=orders.customer_id,
        order_time=orders.order_time,
        status=orders.status,
        is_guest=orders.is_guest,
        currency=orders.currency,
        o_fx_rate=orders.fx_rate,
    )
    i = i.inner_join(o, i.order_id == o.o_order_id)
    return i.mutate(
        unit_price=i.unit_price * i.o_fx_rate, line_amount=i.line_amount * i.o_fx_rate,
    ).drop("o_order_id", "o_fx_rate")


def clean_browsing(source) -> ir.Table:
    b = source.table("browsing_events")
    b = b.mutate(category=b.category.lower())
    seen = b.filter(b.customer_id.notnull() & b.anonymous_id.notnull())
    device = seen.group_by(device_anon=seen.anonymous_id).aggregate(device_customer_id=seen.customer_id.min())
    b = b.left_join(device, b.anonymous_id == device.device_anon)
    b = b.mutate(customer_id=ibis.coalesce(b.customer_id, b.device_customer_id)).drop("device_anon", "device_customer_id")
    return b


def clean_email_events(source, customers: ir.Table) -> ir.Table:
    return _resolve_customer(source.table("email_events"), _email_map(customers))


def clean_surveys(source, customers: ir.Table) -> ir.Table:
    return _resolve_customer(source.table("survey_responses"), _email_map(customers))


def clean(source, persist: bool | None = None) -> CleanTables:
    """The cleaned tables of ``source`` (a Store or a SparkSource), built on first use.

    ``persist`` defaults to the engine's preference (``source.persist_cleaning``):
    DuckDB fuses the cleaning into the feature queries and is faster without an
    intermediate table (2.5 s instead of 5.9 s for order features on 5M orders);
    Spark would recompute the cleaning for every block, so it caches it.
    """
    if persist is None:
        persist = getattr(source, "persist_cleaning", False)
    return CleanTables(source, persist)
