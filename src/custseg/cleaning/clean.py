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

from dataclasses import dataclass

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


@dataclass
class CleanTables:
    """The cleaned tables, as Ibis expressions over the source."""

    customers: ir.Table
    orders: ir.Table
    order_items: ir.Table
    browsing_events: ir.Table
    email_events: ir.Table
    survey_responses: ir.Table


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
    """Fill ``customer_id`` from the email map where the source has none."""
    joined = t.left_join(email_map, t.email == email_map.email_key)
    joined = joined.mutate(customer_id=ibis.coalesce(joined.customer_id, joined.email_customer_id))
    return joined.drop("email_key", "email_customer_id")


def clean_orders(source, customers: ir.Table) -> ir.Table:
    o = source.table("orders")
    o = o.mutate(
        customer_id=clean_text(o.customer_id),
        email=normalize_email(o.email),
        status=normalize_label(o.status),
        currency=clean_text(o.currency).upper(),
        channel=normalize_label(o.channel),
    )
    o = _resolve_customer(o, _email_map(customers))

    rates = source.table("currency_rates")
    rates = rates.select(rate_currency=clean_text(rates.currency).upper(), rate=rates.rate)
    o = o.left_join(rates, o.currency == rates.rate_currency)
    has_rates = rates.count() > 0
    factor = ibis.ifelse(has_rates, ibis.coalesce(o.rate, 1.0), 1.0)
    o = o.mutate(
        total=o.total * factor,
        discount=o.discount * factor,
        currency_unknown=has_rates & o.rate.isnull() & o.currency.notnull(),
    ).drop("rate_currency", "rate")

    is_credit = o.total < 0
    o = o.mutate(
        is_guest=o.customer_id.isnull(),
        is_credit=is_credit,
        net_amount=ibis.cases(
            (o.status == "completed", o.total),
            (is_credit, o.total),
            else_=0.0,
        ),
        order_date=o.order_time.date(),
    )
    # Outliers on the log scale of completed, positive totals.
    pos = o.filter((o.status == "completed") & (o.total > 0))
    log_total = pos.total.ln()
    med = log_total.median()
    bounds = pos.aggregate(log_median=med).cross_join(
        pos.mutate(dev=(pos.total.ln() - med.as_scalar()).abs()).aggregate(log_mad=lambda t: t.dev.median())
    )
    o = o.cross_join(bounds)
    upper = (o.log_median + OUTLIER_Z * o.log_mad / 0.6745).exp()
    o = o.mutate(
        outlier_cap=ibis.ifelse(o.log_mad > 0, upper, ibis.null("float64")),
    )
    o = o.mutate(
        is_outlier=(o.status == "completed") & (o.total > 0) & o.outlier_cap.notnull() & (o.total > o.outlier_cap),
    ).drop("log_median", "log_mad")
    return o


def clean_order_items(source, orders: ir.Table) -> ir.Table:
    i = source.table("order_items")
    products = source.table("products")
    p = products.select(p_product_id=products.product_id, p_category=products.category, p_price_tier=products.price_tier)
    i = i.left_join(p, i.product_id == p.p_product_id)
    i = i.mutate(
        category=normalize_label(ibis.coalesce(clean_text(i.category), i.p_category)),
        price_tier=normalize_label(i.p_price_tier),
    ).drop("p_product_id", "p_category", "p_price_tier")
    o = orders.select(
        o_order_id=orders.order_id,
        customer_id=orders.customer_id,
        order_time=orders.order_time,
        status=orders.status,
        is_guest=orders.is_guest,
        currency=orders.currency,
    )
    i = i.inner_join(o, i.order_id == o.o_order_id).drop("o_order_id")
    return i


def clean_browsing(source) -> ir.Table:
    b = source.table("browsing_events")
    b = b.mutate(customer_id=clean_text(b.customer_id), anonymous_id=clean_text(b.anonymous_id),
                 event_type=normalize_label(b.event_type), category=normalize_label(b.category))
    seen = b.filter(b.customer_id.notnull() & b.anonymous_id.notnull())
    device = seen.group_by(device_anon=seen.anonymous_id).aggregate(device_customer_id=seen.customer_id.min())
    b = b.left_join(device, b.anonymous_id == device.device_anon)
    b = b.mutate(customer_id=ibis.coalesce(b.customer_id, b.device_customer_id)).drop("device_anon", "device_customer_id")
    return b


def clean_email_events(source, customers: ir.Table) -> ir.Table:
    e = source.table("email_events")
    e = e.mutate(customer_id=clean_text(e.customer_id), email=normalize_email(e.email),
                 event_type=normalize_label(e.event_type))
    return _resolve_customer(e, _email_map(customers))


def clean_surveys(source, customers: ir.Table) -> ir.Table:
    s = source.table("survey_responses")
    s = s.mutate(customer_id=clean_text(s.customer_id), email=normalize_email(s.email))
    return _resolve_customer(s, _email_map(customers))


def clean(source, persist: bool = True) -> CleanTables:
    """Clean every table of ``source`` (a Store or a SparkSource).

    With ``persist`` (default) each cleaned table is computed once and kept as
    ``clean_<table>`` (a table in the DuckDB store, a cached view on Spark), so
    that features read it instead of recomputing the cleaning for every block.
    """
    def keep(name: str, expr: ir.Table) -> ir.Table:
        return source.persist(f"clean_{name}", expr) if persist else expr

    customers = keep("customers", clean_customers(source))
    orders = keep("orders", clean_orders(source, customers))
    return CleanTables(
        customers=customers,
        orders=orders,
        order_items=keep("order_items", clean_order_items(source, orders)),
        browsing_events=keep("browsing_events", clean_browsing(source)),
        email_events=keep("email_events", clean_email_events(source, customers)),
        survey_responses=keep("survey_responses", clean_surveys(source, customers)),
    )
