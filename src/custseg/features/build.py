"""Customer features: one row per customer as of a date, as Ibis expressions.

The same code runs on DuckDB and on Spark. ``as_of`` is exclusive: the
features describe the customer at the start of that day, from everything
that happened before it. The default is the day after the last order.

Time unit: every duration is in days and says so in its name
(``recency_days``, ``clv_t_x_days``). The CLV sufficient statistics follow
Fader, Hardie and Lee: all orders of one day are one transaction;
``clv_x`` is the number of repeat purchase days, ``clv_t_x_days`` the days
from the first to the last purchase day, ``clv_T_days`` the days from the
first purchase day to the last observed day (``as_of - 1``), and
``clv_mean_repeat_value`` the mean value of the repeat purchase days.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir

from custseg.cleaning.clean import CleanTables, clean

BLOCKS = ("orders", "items", "clv", "email", "browsing", "demographics", "surveys")
ORDER_BLOCKS = ("orders", "clv")
MAX_CATEGORY_SHARES = 12
#: Decimal places every floating-point feature is rounded to (DuckDB's ``round``: half away from zero).
FLOAT_DIGITS = 9
AGE_BANDS = ((18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55-64"), (65, "65+"))


def default_as_of(source) -> dt.date:
    """The day after the last order in ``source``."""
    last = source.ibis.execute(source.table("orders").order_time.max())
    if last is None or str(last) in ("NaT", "nan", "None"):
        raise ValueError("the store has no orders; give --as-of or ingest orders first")
    return (last.date() if hasattr(last, "date") else last) + dt.timedelta(days=1)


def _days(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    return later.delta(earlier, unit="day")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "blank"


def _safe_div(num, den):
    return ibis.ifelse(den > 0, num / den, ibis.null("float64"))


def _orders_block(orders: ir.Table, as_of: ir.DateScalar, cap: bool) -> ir.Table:
    o = orders
    completed = (o.status == "completed") & ~o.is_credit
    amount = o.net_amount
    if cap:
        amount = ibis.ifelse(o.is_outlier, o.outlier_cap, o.net_amount)
    o = o.mutate(_completed=completed, _amount=amount)
    agg = o.group_by("customer_id").aggregate(
        orders_count=o.count(where=o._completed),
        orders_all=o.count(),
        first_order_date=o.order_date.min(where=o._completed),
        last_order_date=o.order_date.max(where=o._completed),
        net_revenue=o._amount.sum(),
        completed_value=o._amount.sum(where=o._completed),
        discounted_orders=o.count(where=o._completed & (o.discount.fill_null(0) > 0)),
        discount_total=o.discount.fill_null(0).sum(where=o._completed),
        cancelled_orders=o.count(where=o.status == "cancelled"),
        returned_orders=o.count(where=o.status == "returned"),
        outlier_orders=o.count(where=o.is_outlier),
        units_from_orders=o.items_count.sum(where=o._completed),
    )
    return agg.mutate(
        recency_days=_days(as_of, agg.last_order_date),
        tenure_days=_days(as_of, agg.first_order_date),
        aov=_safe_div(agg.completed_value, agg.orders_count),
        avg_days_between_orders=ibis.ifelse(
            agg.orders_count > 1,
            _days(agg.last_order_date, agg.first_order_date) / (agg.orders_count - 1),
            ibis.null("float64"),
        ),
        discounted_order_share=_safe_div(agg.discounted_orders, agg.orders_count),
        discount_rate=_safe_div(agg.discount_total, agg.completed_value + agg.discount_total),
        cancel_rate=_safe_div(agg.cancelled_orders, agg.orders_all),
        return_rate=_safe_div(agg.returned_orders, agg.orders_all),
    ).drop("completed_value", "discounted_orders", "discount_total")


def _top_categories(items: ir.Table, source) -> list[str]:
    i = items.filter(items.category.notnull() & (items.status == "completed"))
    top = (
        i.group_by("category").aggregate(revenue=i.line_amount.sum())
        .order_by([ibis.desc("revenue"), "category"]).limit(MAX_CATEGORY_SHARES)
    )
    return [c for c in source.ibis.execute(top)["category"].tolist()]


def _items_block(items: ir.Table, categories: Sequence[str]) -> ir.Table:
    i = items.filter(items.status == "completed")
    per_cat = i.group_by(["customer_id", "category"]).aggregate(cat_revenue=i.line_amount.sum())
    per_cat = per_cat.filter(per_cat.category.notnull())
    ranked = per_cat.mutate(
        _rank=ibis.row_number().over(
            group_by=per_cat.customer_id, order_by=[ibis.desc(per_cat.cat_revenue), per_cat.category]
        )
    )
    top = ranked.filter(ranked._rank == 0).select(tc_customer_id="customer_id", top_category="category")
    # A category the customer never bought is a share of 0 (not NULL) once they have lines.
    shares = {
        f"cat_share_{_slug(c)}": ibis.coalesce(i.line_amount.sum(where=i.category == c), 0.0) for c in categories
    }
    tiered = i.price_tier.notnull()
    agg = i.group_by("customer_id").aggregate(
        units=i.quantity.sum(),
        orders_with_items=i.order_id.nunique(),
        distinct_categories=i.category.nunique(),
        distinct_products=i.product_id.nunique(),
        # Share of revenue in premium products among lines whose tier is known: 0 for a buyer of
        # tiered products who bought no premium one, NULL when the catalogue has no tiers.
        premium_share=_safe_div(
            ibis.coalesce(i.line_amount.sum(where=i.price_tier == "premium"), 0.0),
            ibis.coalesce(i.line_amount.sum(where=tiered), 0.0),
        ),
        _items_revenue=i.line_amount.sum(),
        **shares,
    )
    agg = agg.mutate(**{k: _safe_div(agg[k], agg._items_revenue) for k in shares}).drop("_items_revenue")
    agg = agg.left_join(top, agg.customer_id == top.tc_customer_id).drop("tc_customer_id")
    return agg


def _clv_block(orders: ir.Table, as_of: ir.DateScalar) -> ir.Table:
    o = orders.filter((orders.status == "completed") & ~orders.is_credit)
    days = o.group_by(["customer_id", "order_date"]).aggregate(day_value=o.net_amount.sum())
    # Purchase days are distinct per customer, so the first day's value is well defined
    # (no ties for argmin): repeat value = all days - the first day.
    agg = days.group_by("customer_id").aggregate(
        _n_days=days.count(),
        _first_day=days.order_date.min(),
        _last_day=days.order_date.max(),
        _total_value=days.day_value.sum(),
        _first_value=days.day_value.argmin(days.order_date),
    )
    x = agg._n_days - 1
    return agg.select(
        "customer_id",
        clv_x=x.cast("int64"),
        clv_t_x_days=_days(agg._last_day, agg._first_day).cast("float64"),
        clv_T_days=(_days(as_of, agg._first_day) - 1).cast("float64"),
        clv_mean_repeat_value=ibis.ifelse(x > 0, (agg._total_value - agg._first_value) / x, ibis.null("float64")),
    )


def _email_block(events: ir.Table) -> ir.Table:
    e = events.filter(events.customer_id.notnull())
    sent = e.campaign_id.nunique(where=e.event_type == "sent")
    agg = e.group_by("customer_id").aggregate(
        emails_sent=sent,
        _opened=e.campaign_id.nunique(where=e.event_type == "open"),
        _clicked=e.campaign_id.nunique(where=e.event_type == "click"),
        email_unsubscribed=(e.event_type == "unsubscribe").any(),
        email_bounced=(e.event_type == "bounce").any(),
        last_email_engagement=e.event_time.max(where=e.event_type.isin(["open", "click"])),
    )
    return agg.mutate(
        email_open_rate=ibis.least(_safe_div(agg._opened, agg.emails_sent), 1.0),
        email_click_rate=ibis.least(_safe_div(agg._clicked, agg.emails_sent), 1.0),
    ).drop("_opened", "_clicked")


def _browsing_block(events: ir.Table, as_of: ir.DateScalar) -> ir.Table:
    b = events.filter(events.customer_id.notnull())
    age = _days(as_of, b.event_time.date())
    sessions = b.group_by(["customer_id", "session_id"]).aggregate(
        _cart=(b.event_type == "add_to_cart").any(),
        _bought=(b.event_type == "purchase").any(),
    )
    abandon = sessions.group_by(ab_customer_id=sessions.customer_id).aggregate(
        cart_sessions=sessions.count(where=sessions._cart),
        cart_abandonment_rate=_safe_div(
            sessions.count(where=sessions._cart & ~sessions._bought), sessions.count(where=sessions._cart)
        ),
    )
    agg = b.group_by("customer_id").aggregate(
        sessions_30d=b.session_id.nunique(where=age <= 30),
        sessions_90d=b.session_id.nunique(where=age <= 90),
        product_views_30d=b.count(where=(b.event_type == "product_view") & (age <= 30)),
        product_views_90d=b.count(where=(b.event_type == "product_view") & (age <= 90)),
        cart_adds=b.count(where=b.event_type == "add_to_cart"),
        cart_adds_90d=b.count(where=(b.event_type == "add_to_cart") & (age <= 90)),
        last_visit=b.event_time.max(),
    )
    agg = agg.left_join(abandon, agg.customer_id == abandon.ab_customer_id).drop("ab_customer_id")
    return agg


def _age_band(age: ir.IntegerValue) -> ir.StringValue:
    cases = [(age < 18, "<18")]
    uppers = [lo for lo, _ in AGE_BANDS[1:]] + [None]
    for (lo, label), hi in zip(AGE_BANDS, uppers):
        cases.append(((age >= lo) & (age < hi), label) if hi is not None else (age >= lo, label))
    return ibis.cases(*cases, else_=ibis.null("string"))


def _demographics_block(customers: ir.Table, as_of: ir.DateScalar) -> ir.Table:
    c = customers
    born = c.birth_date
    years = as_of.year() - born.year()
    had_birthday = (as_of.month() > born.month()) | ((as_of.month() == born.month()) & (as_of.day() >= born.day()))
    age_from_birth = years - ibis.ifelse(had_birthday, 0, 1)
    age = ibis.coalesce(age_from_birth, c.age).cast("int64")
    return c.select(
        "customer_id",
        age=age,
        age_band=_age_band(age),
        gender=c.gender,
        country=c.country,
        region=c.region,
        city=c.city,
        acquisition_channel=c.acquisition_channel,
        loyalty_member=c.loyalty_member,
        email_consent=c.email_consent,
        signup_date=c.signup_date,
    )


def _surveys_block(responses: ir.Table) -> ir.Table:
    s = responses.filter(responses.customer_id.notnull())
    s = s.mutate(
        _rank=ibis.row_number().over(
            group_by=s.customer_id, order_by=[ibis.desc(s.response_time), ibis.desc(s.response_id)]
        )
    )
    latest = s.filter(s._rank == 0)
    return latest.select("customer_id", nps=latest.nps, satisfaction=latest.satisfaction,
                         stated_interests=latest.interests)


def build_features(
    source,
    as_of: dt.date | str | None = None,
    *,
    include: Iterable[str] = BLOCKS,
    cap_outliers: bool = False,
    cleaned: CleanTables | None = None,
) -> ir.Table:
    """One row per customer with their features as of ``as_of``.

    Parameters
    ----------
    source : Store or SparkSource
        Where the canonical tables are.
    as_of : date or str, default=None
        Exclusive end of the observation window; default the day after the last order.
    include : iterable of str, default=all blocks
        Feature blocks among ``orders, items, clv, email, browsing, demographics, surveys``.
    cap_outliers : bool, default=False
        Count outlier orders at the outlier cap in monetary features.

    Returns
    -------
    ibis.Table
        An expression; run it with ``source.ibis.execute`` or store it.
    """
    include = tuple(include)
    unknown = set(include) - set(BLOCKS)
    if unknown:
        raise ValueError(f"unknown feature blocks {sorted(unknown)}; known: {', '.join(BLOCKS)}")
    as_of_date = as_date(as_of) if as_of is not None else default_as_of(source)
    cleaned = cleaned or clean(source)
    cut = ibis.timestamp(dt.datetime.combine(as_of_date, dt.time()))
    as_of_lit = ibis.date(as_of_date)

    orders = cleaned.orders.filter(cleaned.orders.order_time < cut)
    orders = orders.filter(orders.customer_id.notnull())
    customers = cleaned.customers.filter(
        cleaned.customers.signup_date.isnull() | (cleaned.customers.signup_date < as_of_lit)
    )

    universe = customers.select("customer_id").union(orders.select("customer_id"), distinct=True)
    result = universe
    blocks: list[ir.Table] = []
    if "orders" in include:
        blocks.append(_orders_block(orders, as_of_lit, cap_outliers))
    if "items" in include:
        items = cleaned.order_items.filter(
            (cleaned.order_items.order_time < cut) & cleaned.order_items.customer_id.notnull()
        )
        blocks.append(_items_block(items, _top_categories(items, source)))
    if "clv" in include:
        blocks.append(_clv_block(orders, as_of_lit))
    if "email" in include:
        e = cleaned.email_events
        blocks.append(_email_block(e.filter(e.event_time < cut)))
    if "browsing" in include:
        b = cleaned.browsing_events
        blocks.append(_browsing_block(b.filter(b.event_time < cut), as_of_lit))
    if "demographics" in include:
        blocks.append(_demographics_block(customers, as_of_lit))
    if "surveys" in include:
        s = cleaned.survey_responses
        blocks.append(_surveys_block(s.filter(s.response_time < cut)))

    for i, block in enumerate(blocks):
        key = f"_k{i}"
        block = block.rename({key: "customer_id"})
        result = result.left_join(block, result.customer_id == block[key]).drop(key)

    fills = {}
    if "orders" in include:
        fills.update(orders_count=0, orders_all=0, net_revenue=0.0, cancelled_orders=0,
                     returned_orders=0, outlier_orders=0)
    if "items" in include:
        fills.update(distinct_categories=0, distinct_products=0)
    if "browsing" in include:
        fills.update(sessions_30d=0, sessions_90d=0, product_views_30d=0, product_views_90d=0,
                     cart_adds=0, cart_adds_90d=0, cart_sessions=0)
    if "email" in include:
        fills.update(emails_sent=0)
    result = result.mutate(**{k: result[k].fill_null(v) for k, v in fills.items()})
    if "orders" in include and "items" in include:
        result = result.mutate(
            items_per_order=_safe_div(ibis.coalesce(result.units, result.units_from_orders), result.orders_count)
        )
    elif "orders" in include:
        result = result.mutate(items_per_order=_safe_div(result.units_from_orders, result.orders_count))
    # Sums of floating-point amounts depend on the order rows are added in (threads, engines, the
    # live service's running aggregates) by a unit in the last place; rounded, the same data gives
    # the same value, so a customer whose share equals a rule's cut point (a quantile is one
    # customer's value) lands on the same side of it everywhere.
    result = result.mutate(**{c: result[c].round(FLOAT_DIGITS) for c, t in result.schema().items()
                              if t.is_floating()})
    result = result.mutate(as_of=as_of_lit)
    return result.order_by("customer_id")


def as_date(value) -> dt.date | None:
    """A date from a date, datetime, pandas Timestamp or ISO string; None for a missing value.

    Raises
    ------
    ValueError
        For text that is not an ISO date (``YYYY-MM-DD``).
    """
    if value is None or (isinstance(value, float) and value != value) or str(value) in ("NaT", "None", "nan"):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime().date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"as_of {value!r} is not a date (YYYY-MM-DD)") from None
