"""The seeded demo store: determinism, schema, integrity, planted personas, exports, loading."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from custseg.datasets import PERSONAS, WINBACK_ID, DemoStore, load_demo, make_store, read_manifest, write_exports
from custseg.datasets.exports import (
    CUSTOMERS_HEADERS,
    EMAIL_HEADERS,
    ORDERS_HEADERS,
    SURVEY_HEADERS,
    _berlin_offset_seconds,
)
from custseg.store.schema import GENDERS, get_table

N = 3_000

_ARROW_TYPES = {
    "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(), "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"),
}


@pytest.fixture(scope="module")
def demo() -> DemoStore:
    return make_store(N, seed=11)


@pytest.fixture(scope="module")
def con(demo):
    c = duckdb.connect()
    for name, table in demo.tables().items():
        c.register(name, table)
    c.register("personas", demo.demo_personas)
    c.register("truth", demo.campaign_truth)
    yield c
    c.close()


def one(con, sql, *params):
    return con.execute(sql, list(params)).fetchone()


def by_persona(con, sql) -> dict:
    return {row[0]: row[1:] if len(row) > 2 else row[1] for row in con.execute(sql).fetchall()}


# -- determinism ------------------------------------------------------------------------


def test_same_seed_gives_identical_tables():
    a, b = make_store(2_000, seed=5), make_store(2_000, seed=5)
    for name, table in a.tables().items():
        assert table.equals(b.tables()[name]), name
    assert a.demo_personas.equals(b.demo_personas)
    assert a.campaign_truth.equals(b.campaign_truth)
    assert a.as_of == b.as_of
    assert a == b


def test_different_seed_differs():
    a, b = make_store(2_000, seed=5), make_store(2_000, seed=6)
    assert not a.orders.equals(b.orders)
    assert not a.customers.equals(b.customers)
    assert a != b


def test_repr_is_short(demo):
    text = repr(demo)
    assert text.startswith("DemoStore(seed=11") and len(text) < 400
    assert f"customers={N:,}" in text


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="400 days"):
        make_store(1_000, start="2024-01-01", end="2024-06-30")
    with pytest.raises(ValueError, match="n_customers"):
        make_store(5)


# -- schema -----------------------------------------------------------------------------


def test_every_table_has_the_canonical_columns_and_types(demo):
    for name, table in demo.tables().items():
        canon = [c for c in get_table(name).columns if c.name not in ("ingest_id", "source_row")]
        assert table.column_names == [c.name for c in canon], name
        for c in canon:
            assert table.schema.field(c.name).type == _ARROW_TYPES[c.dtype], (name, c.name)
    assert demo.demo_personas.column_names == get_table("demo_personas").column_names
    assert set(demo.campaign_truth.column_names) >= {"persona", "lift"}


def test_row_counts_and_id_styles(demo, con):
    assert demo.customers.num_rows == N
    assert 300 <= demo.products.num_rows <= 1000
    assert one(con, "SELECT count(*) FROM customers WHERE NOT regexp_full_match(customer_id, 'C\\d{6}')")[0] == 0
    assert one(con, "SELECT count(*) FROM products WHERE NOT regexp_full_match(product_id, 'P\\d{4}')")[0] == 0
    assert one(con, "SELECT count(*) FROM orders WHERE NOT regexp_full_match(order_id, 'O\\d+')")[0] == 0
    # Lines per customer in the ballpark of the 1M-customer benchmark (~10 per customer).
    assert 6 * N < demo.order_items.num_rows < 15 * N


def test_keys_are_unique(con):
    for table, key in (("customers", "customer_id"), ("customers", "email"), ("products", "product_id"),
                       ("orders", "order_id"), ("order_items", "order_id, line_number"),
                       ("browsing_events", "event_id"), ("email_events", "event_id"),
                       ("survey_responses", "response_id"), ("campaigns", "campaign_id"),
                       ("campaign_assignments", "campaign_id, customer_id")):
        n, distinct = one(con, f"SELECT count(*), count(DISTINCT ({key})) FROM {table}")
        assert n == distinct, (table, key)


# -- customers and products -------------------------------------------------------------


def test_customers_look_real(demo, con):
    assert set(pc.unique(demo.customers["gender"]).to_pylist()) <= set(GENDERS)
    bad = one(con, r"""SELECT count(*) FROM customers
                       WHERE NOT regexp_full_match(email, '[a-z0-9._]+@example\.com')""")[0]
    assert bad == 0
    consent = one(con, "SELECT avg(email_consent::INT) FROM customers")[0]
    assert 0.6 < consent < 0.8
    countries = dict(con.execute("SELECT country, count(*) FROM customers GROUP BY 1").fetchall())
    assert {"DE", "FR", "GB", "US", "NL", "ES", "IT"} <= set(countries)
    assert max(countries, key=countries.get) == "DE"
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in countries)
    nulls = one(con, """SELECT count(*) FILTER (city IS NULL OR postal_code IS NULL OR region IS NULL
                                               OR first_name IS NULL OR signup_date IS NULL
                                               OR acquisition_channel IS NULL) FROM customers""")[0]
    assert nulls == 0
    # Birth dates: adults, some unknown.
    lo, hi, missing = one(con, """SELECT min(date_diff('year', birth_date, DATE '2025-01-01')),
                                         max(date_diff('year', birth_date, DATE '2025-01-01')),
                                         avg((birth_date IS NULL)::INT) FROM customers""")
    assert 17 <= lo and hi <= 90 and 0.05 < missing < 0.2


def test_catalogue(con):
    cats = con.execute("SELECT DISTINCT category FROM products").fetchall()
    assert len(cats) == 10
    tiers = dict(con.execute("SELECT price_tier, avg(price) FROM products GROUP BY 1").fetchall())
    assert tiers["budget"] < tiers["mid"] < tiers["premium"]
    # Each category has its own price level.
    e, g = one(con, """SELECT median(price) FILTER (category = 'electronics'),
                              median(price) FILTER (category = 'grocery') FROM products""")
    assert e > 5 * g
    assert one(con, "SELECT min(price) FROM products")[0] > 0


# -- referential integrity --------------------------------------------------------------


def test_referential_integrity(con):
    checks = {
        "line without order": "SELECT count(*) FROM order_items i ANTI JOIN orders o USING (order_id)",
        "order without line": "SELECT count(*) FROM orders o ANTI JOIN order_items i USING (order_id)",
        "unknown product in lines": "SELECT count(*) FROM order_items i ANTI JOIN products p USING (product_id)",
        "unknown customer in orders": """SELECT count(*) FROM orders o ANTI JOIN customers c USING (customer_id)
                                         WHERE o.customer_id IS NOT NULL""",
        "unknown customer in browsing": """SELECT count(*) FROM browsing_events b ANTI JOIN customers c
                                           USING (customer_id) WHERE b.customer_id IS NOT NULL""",
        "unknown product in browsing": """SELECT count(*) FROM browsing_events b ANTI JOIN products p
                                          USING (product_id) WHERE b.product_id IS NOT NULL""",
        "unknown customer in email": "SELECT count(*) FROM email_events e ANTI JOIN customers c USING (customer_id)",
        "unknown campaign in email": "SELECT count(*) FROM email_events e ANTI JOIN campaigns c USING (campaign_id)",
        "unknown customer in survey": "SELECT count(*) FROM survey_responses s ANTI JOIN customers c USING (customer_id)",
        "unknown customer in assignment": """SELECT count(*) FROM campaign_assignments a
                                             ANTI JOIN customers c USING (customer_id)""",
        "email of another customer": """SELECT count(*) FROM orders o JOIN customers c USING (customer_id)
                                        WHERE o.email <> c.email""",
        "mail without consent": """SELECT count(*) FROM email_events e JOIN customers c USING (customer_id)
                                   WHERE NOT c.email_consent""",
        "line category differs": """SELECT count(*) FROM order_items i JOIN products p USING (product_id)
                                    WHERE i.category <> p.category OR i.product_name <> p.name""",
    }
    for what, sql in checks.items():
        assert one(con, sql)[0] == 0, what


def test_line_numbers_are_1_to_k(con):
    bad = one(con, """SELECT count(*) FROM (
                          SELECT order_id, min(line_number) lo, max(line_number) hi, count(*) n
                          FROM order_items GROUP BY 1) WHERE lo <> 1 OR hi <> n""")[0]
    assert bad == 0


def test_guest_orders(con):
    guests, share, in_customers = one(con, """
        SELECT count(*) FILTER (customer_id IS NULL),
               avg((customer_id IS NULL)::INT),
               count(*) FILTER (customer_id IS NULL AND email IN (SELECT email FROM customers))
        FROM orders""")
    assert guests > 0 and 0.005 < share < 0.02 and in_customers == 0
    assert one(con, "SELECT count(*) FROM orders WHERE email IS NULL")[0] == 0


# -- money ------------------------------------------------------------------------------


def test_totals_are_lines_minus_discount(con):
    worst = one(con, """
        SELECT max(abs(o.total - (l.amount - o.discount))) FROM orders o
        JOIN (SELECT order_id, sum(line_amount) amount FROM order_items GROUP BY 1) l USING (order_id)""")[0]
    assert worst <= 0.01
    assert one(con, "SELECT max(abs(line_amount - round(quantity * unit_price, 2))) FROM order_items")[0] < 1e-9
    assert one(con, "SELECT count(*) FROM orders WHERE discount < 0 OR total <= 0 OR discount >= total + discount")[0] == 0
    assert one(con, "SELECT count(*) FROM order_items WHERE quantity < 1 OR unit_price <= 0")[0] == 0


def test_status_currency_channel_mix(con):
    status = dict(con.execute("SELECT status, avg(1) * count(*) / (SELECT count(*) FROM orders) "
                              "FROM orders GROUP BY 1").fetchall())
    assert set(status) == {"completed", "cancelled", "returned"}
    assert 0.015 < status["cancelled"] < 0.05 and 0.03 < status["returned"] < 0.08
    cur = dict(con.execute("SELECT currency, count(*) FROM orders GROUP BY 1").fetchall())
    assert set(cur) <= {"EUR", "GBP", "USD"} and cur["EUR"] > 0.75 * sum(cur.values())
    assert {r[0] for r in con.execute("SELECT DISTINCT channel FROM orders").fetchall()} == {"web", "app"}
    # GBP and USD orders are priced in their own currency, at a sensible level.
    eur, gbp = one(con, """SELECT avg(unit_price) FILTER (currency = 'EUR'), avg(unit_price) FILTER (currency = 'GBP')
                           FROM order_items JOIN orders USING (order_id)""")
    assert 0.5 * eur < gbp < 1.2 * eur
    rates = dict(con.execute("SELECT currency, rate FROM currency_rates").fetchall())
    assert rates["EUR"] == 1.0 and set(cur) <= set(rates)


def test_as_of_is_day_after_last_order(demo, con):
    last = one(con, "SELECT max(order_time) FROM orders")[0]
    assert demo.as_of == last.date() + dt.timedelta(days=1)
    first = one(con, "SELECT min(order_time) FROM orders")[0]
    assert first.date() >= dt.date(2023, 1, 1)


# -- planted personas --------------------------------------------------------------------


@pytest.fixture(scope="module")
def persona_stats(con):
    rows = con.execute("""
        WITH o AS (SELECT customer_id, count(*) n, avg(total) aov, avg((discount > 0)::INT) disc,
                          max(order_time) last_order
                   FROM orders WHERE customer_id IS NOT NULL GROUP BY 1)
        SELECT persona, avg(coalesce(n, 0)), min(coalesce(n, 0)), max(coalesce(n, 0)),
               sum(n * aov) / sum(n), sum(n * disc) / sum(n), max(last_order)
        FROM personas p LEFT JOIN o USING (customer_id) GROUP BY 1""").fetchall()
    keys = ("mean_orders", "min_orders", "max_orders", "aov", "discount_share", "last_order")
    return {r[0]: dict(zip(keys, r[1:])) for r in rows}


def test_every_persona_is_present(demo, persona_stats):
    assert set(persona_stats) == set(PERSONAS)
    counts = dict(zip(*np.unique(demo.demo_personas["persona"].to_numpy(zero_copy_only=False), return_counts=True)))
    assert all(counts[p] > 0.05 * N for p in PERSONAS)


def test_one_time_buyers_order_exactly_once(persona_stats):
    s = persona_stats["one_time_buyer"]
    assert s["min_orders"] == s["max_orders"] == 1


def test_window_shoppers_browse_and_add_to_cart_but_never_buy(con, persona_stats):
    s = persona_stats["window_shopper"]
    assert s["max_orders"] == 0
    without_adds = one(con, """
        SELECT count(*) FROM personas p
        WHERE persona = 'window_shopper' AND NOT EXISTS (
            SELECT 1 FROM browsing_events b
            WHERE b.customer_id = p.customer_id AND b.event_type = 'add_to_cart')""")[0]
    assert without_adds == 0
    events = by_persona(con, """
        SELECT persona, count(b.event_id) / count(DISTINCT p.customer_id) FROM personas p
        LEFT JOIN browsing_events b USING (customer_id) GROUP BY 1""")
    assert events["window_shopper"] == max(events.values())


def test_lapsed_customers_are_silent_for_nine_months(demo, con, persona_stats):
    cutoff = demo.as_of - dt.timedelta(days=270)
    recent = one(con, """SELECT count(*) FROM orders JOIN personas USING (customer_id)
                         WHERE persona = 'lapsed' AND order_time >= ?""", cutoff)[0]
    assert recent == 0
    assert persona_stats["lapsed"]["min_orders"] >= 2  # they used to buy


def test_loyal_premium_versus_bargain_hunter(con, persona_stats):
    loyal, bargain = persona_stats["loyal_premium"], persona_stats["bargain_hunter"]
    assert loyal["mean_orders"] > bargain["mean_orders"] > persona_stats["lapsed"]["mean_orders"]
    assert loyal["aov"] > 2 * bargain["aov"]
    assert max(persona_stats, key=lambda p: persona_stats[p]["aov"] or 0) == "loyal_premium"
    shares = {p: s["discount_share"] or 0 for p, s in persona_stats.items()}
    assert max(shares, key=shares.get) == "bargain_hunter" and shares["bargain_hunter"] > 0.5
    tiers = by_persona(con, """
        SELECT persona, avg((price_tier = 'premium')::INT) FROM order_items
        JOIN orders USING (order_id) JOIN personas USING (customer_id) JOIN products USING (product_id)
        GROUP BY 1""")
    assert max(tiers, key=tiers.get) == "loyal_premium" and min(tiers, key=tiers.get) == "bargain_hunter"
    # Loyal customers are recent: nearly all ordered in the last 60 days.
    recent = one(con, """SELECT avg((last >= (SELECT max(order_time) FROM orders) - INTERVAL 60 DAY)::INT)
                         FROM (SELECT customer_id, max(order_time) last FROM orders JOIN personas USING (customer_id)
                               WHERE persona = 'loyal_premium' GROUP BY 1)""")[0]
    assert recent > 0.8


def test_gifters_buy_gifts_at_the_end_of_the_year(con, persona_stats):
    season, toys_jewelry = one(con, """
        SELECT avg((month(order_time) IN (11, 12))::INT),
               (SELECT avg((category IN ('toys', 'jewelry'))::INT) FROM order_items
                JOIN orders USING (order_id) JOIN personas USING (customer_id)
                WHERE persona = 'occasional_gifter')
        FROM orders JOIN personas USING (customer_id) WHERE persona = 'occasional_gifter'""")
    assert season > 0.6 and toys_jewelry > 0.4
    per_year = persona_stats["occasional_gifter"]["mean_orders"] / 2
    assert 0.8 < per_year < 3


def test_personas_prefer_different_categories(con):
    top = {}
    for persona, category, _n in con.execute("""
            SELECT persona, category, count(*) n FROM order_items JOIN orders USING (order_id)
            JOIN personas USING (customer_id) GROUP BY 1, 2 QUALIFY row_number() OVER (
                PARTITION BY persona ORDER BY n DESC) = 1""").fetchall():
        top[persona] = category
    assert top["occasional_gifter"] == "toys"
    assert top["bargain_hunter"] == "grocery"
    assert len(set(top.values())) >= 4


def test_email_engagement_depends_on_persona(con):
    rates = by_persona(con, """
        SELECT persona, count(*) FILTER (event_type = 'open') / count(*) FILTER (event_type = 'sent')
        FROM email_events JOIN personas USING (customer_id) GROUP BY 1""")
    assert max(rates, key=rates.get) == "loyal_premium"
    assert rates["loyal_premium"] > 2 * rates["lapsed"]
    types = {r[0] for r in con.execute("SELECT DISTINCT event_type FROM email_events").fetchall()}
    assert types == {"sent", "open", "click", "bounce", "unsubscribe"}
    # Nothing is sent to an address after it unsubscribed.
    after = one(con, """
        SELECT count(*) FROM email_events s JOIN (
            SELECT customer_id, min(event_time) t FROM email_events WHERE event_type = 'unsubscribe' GROUP BY 1) u
        USING (customer_id) WHERE s.event_type = 'sent' AND s.event_time > u.t""")[0]
    assert after == 0


# -- browsing ---------------------------------------------------------------------------


def test_browsing_sessions(con):
    assert one(con, "SELECT count(*) FROM browsing_events WHERE anonymous_id IS NULL OR session_id IS NULL")[0] == 0
    types = {r[0] for r in con.execute("SELECT DISTINCT event_type FROM browsing_events").fetchall()}
    assert types == {"page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "search", "login"}
    # A login event carries both ids.
    assert one(con, "SELECT count(*) FROM browsing_events WHERE event_type = 'login' AND customer_id IS NULL")[0] == 0
    # Times increase within a session, and a session uses one device.
    bad = one(con, """SELECT count(*) FROM (
        SELECT event_time < lag(event_time) OVER (PARTITION BY session_id ORDER BY event_id) AS back
        FROM browsing_events) WHERE back""")[0]
    assert bad == 0
    assert one(con, """SELECT count(*) FROM (SELECT session_id FROM browsing_events GROUP BY 1
                                             HAVING count(DISTINCT anonymous_id) > 1)""")[0] == 0
    # Product events carry product and category; searches carry a query.
    assert one(con, """SELECT count(*) FROM browsing_events WHERE event_type IN ('product_view', 'add_to_cart')
                       AND (product_id IS NULL OR category IS NULL)""")[0] == 0
    assert one(con, "SELECT count(*) FROM browsing_events WHERE event_type = 'search' AND search_query IS NULL")[0] == 0


def test_anonymous_sessions_are_linked_by_a_later_login(con):
    linked = one(con, """
        WITH anon AS (SELECT session_id, any_value(anonymous_id) anonymous_id, min(event_time) t
                      FROM browsing_events GROUP BY 1 HAVING count(customer_id) = 0),
             logins AS (SELECT anonymous_id, customer_id, event_time FROM browsing_events WHERE event_type = 'login')
        SELECT count(DISTINCT a.session_id) FROM anon a JOIN logins l
        ON a.anonymous_id = l.anonymous_id AND l.event_time > a.t""")[0]
    assert linked > 0
    # Before logging in, the events of a session have no customer id; after, they have.
    pre, post = one(con, """
        WITH l AS (SELECT session_id, event_time t FROM browsing_events WHERE event_type = 'login')
        SELECT count(*) FILTER (b.event_time < l.t AND b.customer_id IS NOT NULL),
               count(*) FILTER (b.event_time >= l.t AND b.customer_id IS NULL)
        FROM browsing_events b JOIN l USING (session_id)""")
    assert pre == 0 and post == 0


def test_cart_abandonment_and_tracked_purchases(con):
    abandoned, purchased = one(con, """
        SELECT count(*) FILTER (adds > 0 AND purchases = 0), count(*) FILTER (purchases > 0) FROM (
            SELECT session_id, count(*) FILTER (event_type = 'add_to_cart') adds,
                   count(*) FILTER (event_type = 'purchase') purchases
            FROM browsing_events GROUP BY 1)""")
    assert abandoned > purchased > 0
    # A purchase event coincides with an order of the same customer.
    unmatched = one(con, """
        SELECT count(*) FROM browsing_events b WHERE event_type = 'purchase' AND NOT EXISTS (
            SELECT 1 FROM orders o WHERE o.customer_id = b.customer_id AND o.order_time = b.event_time)""")[0]
    assert unmatched == 0


# -- surveys ----------------------------------------------------------------------------


def test_survey_responses(con):
    n, lo_nps, hi_nps, lo_sat, hi_sat = one(con, """SELECT count(*), min(nps), max(nps), min(satisfaction),
                                                           max(satisfaction) FROM survey_responses""")
    assert 0 < n < 0.1 * N and 0 <= lo_nps and hi_nps <= 10 and 1 <= lo_sat and hi_sat <= 5
    interests = {c for r in con.execute("SELECT interests FROM survey_responses").fetchall() for c in r[0].split(",")}
    assert interests <= {r[0] for r in con.execute("SELECT DISTINCT category FROM products").fetchall()}
    nps = by_persona(con, "SELECT persona, avg(nps) FROM survey_responses JOIN personas USING (customer_id) GROUP BY 1")
    assert nps["loyal_premium"] > nps["lapsed"]


# -- campaign ---------------------------------------------------------------------------


def test_campaign_assignment_and_truth(demo, con):
    control = one(con, "SELECT avg((arm = 'control')::INT) FROM campaign_assignments")[0]
    assert 0.07 < control < 0.13
    assert {r[0] for r in con.execute("SELECT DISTINCT campaign_id FROM campaign_assignments").fetchall()} == {WINBACK_ID}
    truth = {r["persona"]: r for r in demo.campaign_truth.to_pylist()}
    assert set(truth) == set(PERSONAS)
    assert truth["window_shopper"]["lift"] == 0 and truth["one_time_buyer"]["lift"] == 0
    assert truth["bargain_hunter"]["lift"] > truth["loyal_premium"]["lift"] > 0
    counts = dict(con.execute("SELECT arm, count(*) FROM campaign_assignments GROUP BY 1").fetchall())
    assert sum(r["n_treatment"] for r in truth.values()) == counts["treatment"]
    assert sum(r["n_control"] for r in truth.values()) == counts["control"]
    # Only the treatment arm receives the campaign email.
    mailed_control = one(con, """SELECT count(*) FROM email_events e JOIN campaign_assignments a
                                 USING (customer_id, campaign_id) WHERE a.arm = 'control'""")[0]
    assert mailed_control == 0
    # The realised effect is visible: treated customers convert more inside the window.
    row = demo.campaign_truth.to_pylist()[0]
    conv = dict(con.execute("""
        SELECT arm, avg(converted::INT) FROM (
            SELECT a.arm, EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = a.customer_id
                                  AND o.order_time >= ? AND o.order_time < ?) converted
            FROM campaign_assignments a) GROUP BY 1""", [row["window_start"], row["window_end"]]).fetchall())
    assert conv["treatment"] > conv["control"]


def test_campaign_truth_matches_the_larger_sample():
    demo = make_store(20_000, seed=3)
    c = duckdb.connect()
    for name in ("orders", "campaign_assignments"):
        c.register(name, getattr(demo, name))
    c.register("personas", demo.demo_personas)
    truth = {r["persona"]: r for r in demo.campaign_truth.to_pylist()}
    row = next(iter(truth.values()))
    rates = c.execute("""
        SELECT persona, arm, avg(converted::INT) FROM (
            SELECT p.persona, a.arm, EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = a.customer_id
                                             AND o.order_time >= ? AND o.order_time < ?) converted
            FROM campaign_assignments a JOIN personas p USING (customer_id)) GROUP BY 1, 2""",
                      [row["window_start"], row["window_end"]]).fetchall()
    rate = {(p, arm): r for p, arm, r in rates}
    for persona in ("one_time_buyer", "window_shopper"):
        assert truth[persona]["realized_lift"] == 0
    # The realised lift is close to the designed one where the sample is large.
    lapsed = truth["lapsed"]
    assert abs(lapsed["realized_lift"] - lapsed["lift"]) < 0.03
    assert rate[("lapsed", "treatment")] - rate[("lapsed", "control")] > 0


# -- exports ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(demo, tmp_path_factory):
    return write_exports(demo, tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="module")
def exports(written):
    """name -> Path of the data files."""
    return written.paths


def header(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def test_export_files_exist_with_their_headers(demo, exports):
    assert set(exports) == {"customers", "products", "orders", "browsing_events", "email_events",
                            "survey_responses", "campaigns", "campaign_assignments", "currency_rates"}
    for path in exports.values():
        assert path.exists() and path.stat().st_size > 0
    assert header(exports["customers"]) == list(CUSTOMERS_HEADERS)
    assert header(exports["orders"]) == list(ORDERS_HEADERS)
    assert header(exports["email_events"]) == list(EMAIL_HEADERS)
    assert header(exports["survey_responses"]) == list(SURVEY_HEADERS)
    assert header(exports["products"]) == ["product_id", "name", "category", "brand", "price", "price_tier"]
    for name in ("campaigns", "campaign_assignments"):
        assert header(exports[name]) == demo.tables()[name].column_names


def test_orders_export_is_one_row_per_line(demo, exports):
    with open(exports["orders"], encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    assert lines == demo.order_items.num_rows + 1
    with open(exports["orders"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        by_name.setdefault(r["Name"], []).append(r)
    assert len(by_name) == demo.orders.num_rows
    orders = {o["order_id"]: o for o in demo.orders.to_pylist()}
    for name, group in list(by_name.items())[:500]:
        o = orders["O" + name.lstrip("#")]
        first, rest = group[0], group[1:]
        assert re.fullmatch(r"#\d+", name) and first["Id"].isdigit()
        assert first["Email"] == o["email"]
        assert float(first["Total"]) == pytest.approx(o["total"], abs=0.005)
        assert float(first["Discount Amount"]) == pytest.approx(o["discount"], abs=0.005)
        assert first["Currency"] == o["currency"] and first["Source"] == o["channel"]
        status = {"completed": "paid", "returned": "refunded", "cancelled": "voided"}[o["status"]]
        assert first["Financial Status"] == status
        assert bool(first["Cancelled at"]) == (o["status"] == "cancelled")
        assert bool(first["Paid at"]) == (o["status"] != "cancelled")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+]0[12]00", first["Created at"])
        for r in rest:
            assert r["Email"] == first["Email"] and r["Created at"] == first["Created at"]
            assert r["Financial Status"] == r["Total"] == r["Currency"] == r["Billing Country"] == ""
        assert sum(float(r["Lineitem price"]) * int(r["Lineitem quantity"]) for r in group) == pytest.approx(
            o["total"] + o["discount"], abs=0.011)
    # Guests appear by email only and are not in the customers export.
    with open(exports["customers"], newline="", encoding="utf-8") as f:
        customer_emails = {r["Email"] for r in csv.DictReader(f)}
    guest_emails = {o["email"] for o in orders.values() if o["customer_id"] is None}
    assert guest_emails and not guest_emails & customer_emails


def test_created_at_is_shop_local_time(demo, exports):
    with open(exports["orders"], newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    o = demo.orders.slice(0, 1).to_pylist()[0]
    parsed = dt.datetime.strptime(first["Created at"], "%Y-%m-%d %H:%M:%S %z")
    assert parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) == o["order_time"]
    # EU daylight saving time: 2024-03-31 01:00 UTC and 2024-10-27 01:00 UTC.
    t = int(dt.datetime(2024, 3, 31, 1, tzinfo=dt.timezone.utc).timestamp())
    t2 = int(dt.datetime(2024, 10, 27, 1, tzinfo=dt.timezone.utc).timestamp())
    assert list(_berlin_offset_seconds(np.array([t - 1, t, t2 - 1, t2]))) == [3600, 7200, 7200, 3600]


def test_customers_export_is_messy_on_purpose(demo, exports):
    with open(exports["customers"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == demo.customers.num_rows
    genders = {r["Gender"] for r in rows}
    assert {"F", "M", "female", "Male"} <= genders and (" f " in genders or " m " in genders)
    countries = {r["Default Address Country Code"] for r in rows}
    assert "DE" in countries and countries & {"Germany", "United Kingdom", "uk", "France", "Spain"}
    assert {r["Accepts Email Marketing"] for r in rows} == {"yes", "no"}
    assert {r["Loyalty Member"] for r in rows} == {"Yes", "No"}
    assert all(re.fullmatch(r"C\d{6}", r["Customer ID"]) for r in rows)
    # Postal codes keep their leading zeros (Leipzig 04xxx, Barcelona 08xxx).
    zips = {r["Default Address Zip"] for r in rows if r["Default Address City"] in ("Leipzig", "Barcelona")}
    assert zips and all(z.startswith("0") for z in zips)


def test_email_and_survey_exports(demo, exports):
    with open(exports["email_events"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == demo.email_events.num_rows
    assert {r["Event"] for r in rows} == {"Sent", "Opened", "Clicked", "Bounced", "Unsubscribed"}
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", r["Timestamp"]) for r in rows[:1000])
    with open(exports["survey_responses"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == demo.survey_responses.num_rows
    assert {r["Satisfaction"] for r in rows} <= {"Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied",
                                                 "Very satisfied"}


def test_browsing_export_is_json_lines(demo, exports):
    with open(exports["browsing_events"], encoding="utf-8") as f:
        first = json.loads(next(f))
        n = 1 + sum(1 for _ in f)
    assert n == demo.browsing_events.num_rows
    assert set(first) == set(demo.browsing_events.column_names)


def test_manifest_and_mappings(written, exports):
    m = written
    assert {name: e["path"] for name, e in m.items()} == exports
    assert m["orders"]["preset"] == "shopify_orders" and m["orders"]["table"] == "orders"
    assert m["orders"]["tables"] == ["orders", "order_items"]
    for name in ("products", "campaigns", "campaign_assignments", "currency_rates", "browsing_events"):
        assert "mapping" not in m[name] and "preset" not in m[name] and m[name]["table"] == name
    assert m["browsing_events"]["format"] == "jsonl"
    for name in ("customers", "email_events", "survey_responses"):
        mapping = yaml.safe_load(m[name]["mapping"].read_text(encoding="utf-8"))
        assert mapping["table"] == name
        sources = {v if isinstance(v, str) else v["column"] for v in mapping["columns"].values()}
        assert sources <= set(header(m[name]["path"])), name
        assert set(mapping["columns"]) <= set(get_table(name).column_names)
    email = yaml.safe_load(m["email_events"]["mapping"].read_text(encoding="utf-8"))
    assert email["columns"]["event_type"]["values"]["Opened"] == "open"
    assert email["columns"]["event_time"]["format"] == "%d/%m/%Y %H:%M"
    assert "event_id" not in email["columns"]
    customers = yaml.safe_load(m["customers"]["mapping"].read_text(encoding="utf-8"))
    assert customers["columns"]["email_consent"]["values"] == {"yes": True, "no": False}
    on_disk = read_manifest(written.manifest_path.parent)
    assert on_disk == dict(m) == m.manifest
    for e in m.values():  # an entry names a preset or a mapping, never both
        assert not ("preset" in e and "mapping" in e)


def test_orders_export_in_chunks_is_the_same_file(demo, exports, tmp_path, monkeypatch):
    import custseg.datasets.exports as ex

    monkeypatch.setattr(ex, "_CHUNK_ORDERS", 997)
    chunked = write_exports(demo, tmp_path).paths
    assert chunked["orders"].read_bytes() == exports["orders"].read_bytes()
    assert not list(tmp_path.glob(".*part"))


def test_exports_are_deterministic(demo, exports, tmp_path):
    again = write_exports(demo, tmp_path).paths
    for name, path in exports.items():
        assert path.read_bytes() == again[name].read_bytes(), name


# -- loading ----------------------------------------------------------------------------


def test_load_demo_fills_a_store(demo, store):
    load_demo(store, demo)
    for name, count in demo.row_counts().items():
        assert store.count(name) == count, name
    assert store.con.execute("SELECT count(*) FROM orders WHERE ingest_id IS NOT NULL").fetchone()[0] == 0
    total = store.con.execute("SELECT round(sum(total), 2) FROM orders").fetchone()[0]
    assert total == pytest.approx(round(pc.sum(demo.orders["total"]).as_py(), 2))
    with pytest.raises(ValueError, match="empty"):
        load_demo(store, demo)


@pytest.mark.slow
def test_make_store_200k_runs():
    demo = make_store(200_000, seed=2)
    assert demo.customers.num_rows == 200_000
    assert demo.order_items.num_rows > 1_500_000
    assert demo.as_of > dt.date(2024, 12, 1)
