"""Built-in segment sets for the segments marketers name most.

Each template is a segment set whose thresholds come from the store's own
data where a fixed number would be wrong for another store: percentiles of
the customer base (``p80(aov)``) or the store's typical time between orders
(``median(avg_days_between_orders)``, the median over repeat buyers). Some
templates take their segments from the data too (the biggest countries and
categories). A template says which data it needs; on a store without it (an
orders-only store has no email, browsing or demographics) it fails with a
message naming the template, the data and the empty columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd

from custseg.segmenters.rules.definitions import SegmentSet, load_segment_set
from custseg.segmenters.rules.syntax import suggest

NO_ORDERS = {"name": "No orders", "description": "no completed order yet", "rule": "orders_count = 0"}
CYCLE = "median(avg_days_between_orders)"  # the store's typical time between orders, in days
BUYERS = "filter (where orders_count > 0)"
TOP_VALUES = 10


@dataclass(frozen=True)
class Template:
    """A built-in segment set.

    Attributes
    ----------
    name : str
        What ``custseg segment template NAME`` takes.
    title : str
        What it divides customers into.
    needs : str
        The data it needs, in words (``"email events"``).
    columns : tuple of str
        Feature columns that must hold data (not all NULL or 0).
    build : callable
        ``build(features, backend)`` returns the segment set as a mapping.
    """

    name: str
    title: str
    needs: str
    columns: tuple[str, ...]
    build: Callable[[ir.Table, object], dict]


def _static(name: str, mode: str, segments: list[dict], default=None, description: str = "") -> Callable:
    spec = {"name": name, "description": description, "mode": mode, "segments": segments}
    if default is not None:
        spec["default"] = default
    return lambda features, backend: spec


def _top_values(features: ir.Table, backend, column: str, n: int = TOP_VALUES) -> list[str]:
    col = features[column]
    counts = (features.filter(col.notnull()).group_by(column).aggregate(n=lambda t: t.count())
              .order_by([ibis.desc("n"), column]).limit(n))
    return [str(v) for v in backend.execute(counts)[column].tolist()]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _country(features, backend) -> dict:
    top = _top_values(features, backend, "country")
    segments = [{"name": c, "description": f"customers in {c}", "rule": f"country = {_quote(c)}"} for c in top]
    segments.append({"name": "Other countries", "description": f"countries beyond the {len(top)} biggest",
                     "rule": "country is not null"})
    return {"name": "Country", "description": f"The {len(top)} countries with most customers", "mode": "exclusive",
            "segments": segments, "default": {"name": "Unknown country", "description": "no country on record"}}


def _top_category(features, backend) -> dict:
    top = _top_values(features, backend, "top_category")
    segments = [{"name": c.title(), "description": f"most of their spend in {c}", "rule": f"top_category = {_quote(c)}"}
                for c in top]
    segments.append({"name": "Other categories", "description": f"top category beyond the {len(top)} biggest",
                     "rule": "top_category is not null"})
    return {"name": "Top category", "description": "Customers by the category they spend most in",
            "mode": "exclusive", "segments": segments,
            "default": {"name": "No category", "description": "no order line with a category"}}


def _slug(name: str) -> str:
    # The same slug the feature builder gives cat_share_<category> columns.
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "blank"


def _interests(features, backend) -> dict:
    shares = [c for c in features.columns if c.startswith("cat_share_")]
    names = {_slug(v): v for v in _top_values(features, backend, "top_category", n=1000)}
    segments = []
    for col in shares:
        slug = col.removeprefix("cat_share_")
        label = names.get(slug, slug.replace("_", " ")).title()
        segments.append({"name": label, "description": f"spend share in {label} at least the median of its buyers",
                         "rule": f"{col} >= p50({col})"})
    return {"name": "Interests", "description": "Tags: a customer gets every category they spend much of their "
            "money in (share at or above the median share among the category's buyers)", "mode": "overlapping",
            "segments": segments, "default": {"name": "No interests", "description": "no category purchases"}}


def _bands() -> list[dict]:
    from custseg.features.build import AGE_BANDS

    labels = ["<18"] + [label for _, label in AGE_BANDS]
    return [{"name": f"Age {b}", "rule": f"age_band = {_quote(b)}"} for b in labels]


TEMPLATES: dict[str, Template] = {t.name: t for t in [
    Template("frequent_buyers", "Frequent vs occasional buyers", "orders", ("orders_count",), _static(
        "Frequent vs occasional buyers", "exclusive", [
            NO_ORDERS,
            {"name": "Frequent buyers", "description": "as many orders as the top quarter of buyers, and at least 2",
             "rule": f"orders_count >= greatest(2, p75(orders_count) {BUYERS})"},
        ], {"name": "Occasional buyers", "description": "buyers with fewer orders"})),
    Template("one_time_buyers", "One-time vs repeat buyers", "orders", ("orders_count",), _static(
        "One-time vs repeat buyers", "exclusive", [
            NO_ORDERS,
            {"name": "One-time buyers", "description": "exactly one completed order", "rule": "orders_count = 1"},
        ], {"name": "Repeat buyers", "description": "two or more completed orders"})),
    Template("budget_premium", "Budget vs premium by order value", "orders", ("aov",), _static(
        "Budget vs premium (order value)", "exclusive", [
            NO_ORDERS,
            {"name": "Premium", "description": "average order value in the top 20%", "rule": "aov >= p80(aov)"},
            {"name": "Budget", "description": "average order value in the bottom 20%", "rule": "aov <= p20(aov)"},
        ], {"name": "Mid-range", "description": "average order value between the 20th and 80th percentiles"})),
    Template("premium_shoppers", "Premium vs budget by price tier", "order lines with product price tiers",
             ("premium_share",), _static("Premium vs budget (price tiers)", "exclusive", [
                 NO_ORDERS,
                 {"name": "Premium shoppers",
                  "description": "premium share of spend in the top quarter of premium buyers",
                  "rule": "premium_share >= p75(premium_share)"},
                 {"name": "Budget shoppers", "description": "never bought a premium product",
                  "rule": "coalesce(premium_share, 0) = 0"},
             ], {"name": "Mixed shoppers", "description": "some premium purchases"})),
    Template("new_vs_loyal", "New vs loyal customers", "repeat purchases",
             ("orders_count", "tenure_days", "avg_days_between_orders"), _static(
                 "New vs loyal customers", "exclusive", [
                     NO_ORDERS,
                     {"name": "New", "description": "first order within one typical time between orders",
                      "rule": f"tenure_days <= {CYCLE}"},
                     {"name": "Loyal", "description": "at least as many orders as the median repeat buyer (and 3), "
                      "last order within two typical times between orders",
                      "rule": "orders_count >= greatest(3, p50(orders_count) filter (where orders_count > 1)) "
                              f"and recency_days <= 2 * {CYCLE}"},
                 ], {"name": "Other buyers", "description": "neither new nor loyal"})),
    Template("lapsed", "Active, lapsed and inactive customers", "repeat purchases",
             ("recency_days", "avg_days_between_orders"), _static(
                 "Active, lapsed and inactive", "exclusive", [
                     NO_ORDERS,
                     {"name": "Active", "description": "last order within two typical times between orders",
                      "rule": f"recency_days <= 2 * {CYCLE}"},
                     {"name": "Lapsed", "description": "last order two to four typical times between orders ago",
                      "rule": f"recency_days <= 4 * {CYCLE}"},
                 ], {"name": "Inactive", "description": "no order for over four typical times between orders"})),
    Template("high_value", "High, mid and low value customers", "orders", ("net_revenue",), _static(
        "Customer value", "exclusive", [
            NO_ORDERS,
            {"name": "High value", "description": "revenue in the top 10% of buyers",
             "rule": f"net_revenue >= p90(net_revenue) {BUYERS}"},
            {"name": "Mid value", "description": "revenue above the median buyer's",
             "rule": f"net_revenue >= p50(net_revenue) {BUYERS}"},
        ], {"name": "Low value", "description": "revenue below the median buyer's"})),
    Template("discount_seekers", "Discount seekers vs full-price buyers", "orders with discounts",
             ("discounted_order_share",), _static("Discount seekers", "exclusive", [
                 NO_ORDERS,
                 {"name": "Discount seekers",
                  "description": "discounted share of orders in the top quarter of buyers, and at least half",
                  "rule": "discounted_order_share >= greatest(0.5, p75(discounted_order_share))"},
                 {"name": "Occasional discount users", "description": "some discounted orders",
                  "rule": "discounted_order_share > 0"},
             ], {"name": "Full-price buyers", "description": "never used a discount"})),
    Template("email_engagement", "Engaged vs disengaged email subscribers", "email events",
             ("emails_sent", "email_open_rate"), _static("Email engagement", "exclusive", [
                 {"name": "Not emailed", "description": "no campaign sent", "rule": "emails_sent = 0"},
                 {"name": "Unsubscribed", "description": "unsubscribed from email",
                  "rule": "email_unsubscribed is true"},
                 {"name": "Engaged", "description": "opens at least as often as the median emailed customer",
                  "rule": "email_open_rate > 0 and email_open_rate >= p50(email_open_rate) "
                          "filter (where emails_sent > 0)"},
             ], {"name": "Disengaged", "description": "emailed, opens less than the median"})),
    Template("window_shoppers", "Window shoppers (browse, never buy)", "browsing events",
             ("sessions_90d", "product_views_90d"), _static("Window shoppers", "exclusive", [
                 {"name": "Window shoppers", "description": "visited in the last 90 days, never ordered",
                  "rule": "orders_count = 0 and (sessions_90d > 0 or product_views_90d > 0)"},
                 {"name": "Buyers", "description": "at least one completed order", "rule": "orders_count > 0"},
             ], {"name": "Not browsing", "description": "no order and no visit in the last 90 days"})),
    Template("cart_abandoners", "Cart abandoners", "browsing events with cart adds",
             ("cart_sessions", "cart_abandonment_rate"), _static("Cart abandoners", "exclusive", [
                 {"name": "Abandoned, never bought", "description": "added to a cart, never ordered",
                  "rule": "cart_sessions > 0 and orders_count = 0"},
                 {"name": "Cart abandoners",
                  "description": "cart add in the last 90 days, abandon at least as often as the median cart user",
                  "rule": "cart_adds_90d > 0 and cart_abandonment_rate > 0 "
                          "and cart_abandonment_rate >= p50(cart_abandonment_rate)"},
             ], {"name": "Others", "description": "no recent abandoned carts"})),
    Template("age_band", "Age bands", "customer ages (birth date or age)", ("age_band",),
             lambda f, b: {"name": "Age bands", "mode": "exclusive", "segments": _bands(),
                           "default": {"name": "Unknown age", "description": "no age on record"}}),
    Template("gender", "Gender", "customer genders", ("gender",), _static("Gender", "exclusive", [
        {"name": "Women", "rule": "gender = 'female'"},
        {"name": "Men", "rule": "gender = 'male'"},
        {"name": "Other gender", "rule": "gender = 'other'"},
    ], {"name": "Unknown gender", "description": "not stated"})),
    Template("country", "Countries (geographic)", "customer countries", ("country",), _country),
    Template("top_category", "Top category (interest)", "order lines with product categories",
             ("top_category",), _top_category),
    Template("interests", "Category interests (tags)", "order lines with product categories",
             ("top_category",), _interests),
]}


def list_templates() -> pd.DataFrame:
    """Every template: ``template``, ``segments`` (what it divides customers into), ``needs``, ``columns``."""
    return pd.DataFrame([{"template": t.name, "segments": t.title, "needs": t.needs, "columns": ", ".join(t.columns)}
                         for t in TEMPLATES.values()])


def get_template(name: str) -> Template:
    """The template called ``name``; an error suggests the closest name."""
    if name not in TEMPLATES:
        close = suggest(name, TEMPLATES)
        hint = f", did you mean '{close}'?" if close else ""
        raise ValueError(f"unknown template '{name}'{hint} (see `custseg segment template --list`)")
    return TEMPLATES[name]


def template_set(name: str, features: ir.Table, backend) -> SegmentSet:
    """The segment set of template ``name`` for these features.

    Raises
    ------
    ValueError
        When the features lack the data the template needs, naming the template, the data and
        the columns: ``template 'email_engagement' needs email events (columns email_open_rate,
        emails_sent are empty in this store)``.
    """
    template = get_template(name)
    columns = list(template.columns)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise ValueError(f"template '{name}' needs {template.needs} ({_columns(missing)} not in the features; "
                         "build all feature blocks with `custseg features`)")
    empty = _empty_columns(features, backend, columns)
    if empty:
        raise ValueError(f"template '{name}' needs {template.needs} ({_columns(sorted(empty))} empty in this store)")
    if name == "interests" and not any(c.startswith("cat_share_") for c in features.columns):
        raise ValueError(f"template '{name}' needs {template.needs} (the features have no cat_share_<category> "
                         "columns; rebuild them with `custseg features`)")
    return load_segment_set(template.build(features, backend))


def run_template(store, name: str, *, features: ir.Table | None = None) -> str:
    """Segment the stored features with template ``name`` and record the run (method ``template:<name>``)."""
    from custseg.pipeline import _features_table
    from custseg.segmenters.rules.segmenter import RuleSegmenter, run_rules

    features = _features_table(store) if features is None else features
    segmenter = RuleSegmenter(template_set(name, features, store.ibis))
    return run_rules(store, segmenter, method=f"template:{name}", features=features, extra={"template": name})


def _columns(names: list[str]) -> str:
    return f"column {names[0]} is" if len(names) == 1 else f"columns {', '.join(names)} are"


def _empty_columns(features: ir.Table, backend, columns: list[str]) -> list[str]:
    """Columns without a single value that is not NULL, 0, false or blank text."""
    counts = {}
    for i, c in enumerate(columns):
        col = features[c]
        dtype = col.type()
        if dtype.is_numeric():
            has = col.notnull() & (col != 0)
        elif dtype.is_string():
            has = col.notnull() & (col.strip() != "")
        elif dtype.is_boolean():
            has = col.fill_null(False)
        else:
            has = col.notnull()
        counts[f"c{i}"] = features.count(where=has)
    row = backend.execute(features.aggregate(**counts)).iloc[0]
    return [c for i, c in enumerate(columns) if int(row[f"c{i}"]) == 0]
