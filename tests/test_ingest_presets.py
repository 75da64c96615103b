"""The built-in presets on their fixtures, and split (orders + order_items) semantics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from custseg.sources import IngestError, ingest, list_presets, load_preset
from custseg.store.schema import INGESTIBLE

DATA = Path(__file__).resolve().parent / "data"


def snapshot(store) -> dict[str, int]:
    return {t: store.count(t) for t in [*INGESTIBLE, "rejects", "ingest_log"]}


def rows(store, sql: str) -> list[tuple]:
    return store.con.execute(sql).fetchall()


def counts(result) -> dict[str, tuple[int, int, int, int]]:
    return {k: (v.read, v.accepted, v.rejected, v.duplicate) for k, v in result.tables.items()}


def test_list_presets():
    presets = {p["name"]: p for p in list_presets()}
    assert set(presets) == {"cdnow", "cdnow_sample", "online_retail", "shopify_orders", "shopify_customers"}
    assert presets["online_retail"]["tables"] == ["orders", "order_items"]
    assert presets["shopify_customers"]["tables"] == ["customers"]
    assert all(p["description"] for p in presets.values())
    assert load_preset("cdnow").names == {4: ["customer_id", "date", "cds", "dollars"],
                                          5: ["customer_id", "cohort_id", "date", "cds", "dollars"]}


# -- Online Retail ------------------------------------------------------------------------
def test_online_retail_ii(store):
    r = ingest(store, DATA / "online_retail_ii.csv", "orders", preset="online_retail")
    # Counted per source row: the 12 lines of 6 invoices.
    assert counts(r) == {"orders": (12, 12, 0, 0), "order_items": (12, 12, 0, 0)}
    assert r.ignored_columns == ["Country"]
    assert store.count("orders") == 6 and store.count("order_items") == 12
    got = rows(store, "SELECT order_id, customer_id, order_time, status, currency, round(total, 2), items_count, source_row FROM orders ORDER BY source_row")
    assert got == [
        ("489434", "13085", dt.datetime(2009, 12, 1, 7, 45), "completed", "GBP", round(12 * 6.95 + 12 * 6.75 * 2 + 48 * 2.10, 2), 84.0, 1),
        ("489435", "13085", dt.datetime(2009, 12, 1, 7, 46), "completed", "GBP", 75.6, 24.0, 4),
        ("489436", "13078", dt.datetime(2009, 12, 1, 9, 6), "completed", "GBP", 59.5, 10.0, 6),
        ("C489449", "16321", dt.datetime(2009, 12, 1, 10, 33), "cancelled", "GBP", -45.3, -18.0, 7),
        ("489464", None, dt.datetime(2009, 12, 1, 10, 52), "completed", "GBP", 0.0, -96.0, 9),  # guest order
        ("489597", None, dt.datetime(2009, 12, 1, 14, 28), "completed", "GBP", 9.31, 3.0, 10),
    ]
    # line_number: position of the line in its order, in file order (the last row is line 4 of 489434).
    items = rows(store, "SELECT order_id, line_number, product_id, product_name, quantity, unit_price, round(line_amount, 2), source_row FROM order_items WHERE order_id = '489434' ORDER BY line_number")
    assert items == [
        ("489434", 1, "85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12.0, 6.95, 83.4, 1),
        ("489434", 2, "79323P", "PINK CHERRY LIGHTS", 12.0, 6.75, 81.0, 2),
        ("489434", 3, "79323W", "WHITE CHERRY LIGHTS", 12.0, 6.75, 81.0, 3),
        ("489434", 4, "22041", 'RECORD FRAME 7" SINGLE SIZE', 48.0, 2.1, 100.8, 12),
    ]
    assert rows(store, "SELECT quantity FROM order_items WHERE order_id = 'C489449' ORDER BY line_number") == [(-12.0,), (-6.0,)]
    log = rows(store, "SELECT ingest_id, table_name, rows_read, rows_accepted FROM ingest_log ORDER BY 1")
    assert log == [(1, "orders", 12, 12), (2, "order_items", 12, 12)]
    again = ingest(store, DATA / "online_retail_ii.csv", "orders", preset="online_retail")
    assert counts(again) == {"orders": (12, 0, 0, 12), "order_items": (12, 0, 0, 12)}


def test_online_retail_i_header_spellings(store):
    r = ingest(store, DATA / "online_retail.csv", "orders", preset="online_retail")
    assert counts(r) == {"orders": (10, 10, 0, 0), "order_items": (10, 10, 0, 0)}
    assert rows(store, "SELECT order_id, customer_id, order_time, status, round(total, 2) FROM orders ORDER BY source_row") == [
        ("536365", "17850", dt.datetime(2010, 12, 1, 8, 26), "completed", 57.64),
        ("536366", "17850", dt.datetime(2010, 12, 1, 8, 28), "completed", 22.2),
        ("C536379", "14527", dt.datetime(2010, 12, 1, 9, 41), "cancelled", -27.5),
        ("C536383", "15311", dt.datetime(2010, 12, 1, 9, 49), "cancelled", -4.65),
        ("536414", None, dt.datetime(2010, 12, 1, 11, 52), "completed", 0.0),
        ("536544", None, dt.datetime(2010, 12, 1, 14, 32), "completed", 7.53),
    ]
    assert rows(store, "SELECT product_name FROM order_items WHERE order_id = '536414'") == [(None,)]


def test_split_rejected_order_rejects_its_lines(store, tmp_path):
    path = tmp_path / "retail.csv"
    path.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "1001,A,Mug,2,2010-12-01 08:00:00,3.00,17850,UK\n"
        "1002,B,Cup,1,2010-13-45 09:00:00,2.00,17850,UK\n"
        "1002,C,Jug,1,,5.00,17850,UK\n"
        "1003,D,Pot,x,2010-12-02 10:00:00,4.00,,UK\n"
        "1003,E,Pan,1,2010-12-02 10:00:00,4.00,,UK\n"
    )
    r = ingest(store, path, "orders", preset="online_retail")
    # 1002 has a bad date (both its lines count as rejected orders rows); 1003 has a bad quantity on row 4,
    # so its total cannot be computed. Lines of a rejected order are rejected too.
    assert counts(r) == {"orders": (5, 1, 4, 0), "order_items": (5, 1, 4, 0)}
    assert rows(store, "SELECT order_id FROM orders") == [("1001",)]
    assert rows(store, "SELECT order_id, line_number FROM order_items ORDER BY source_row") == [("1001", 1)]
    rej = rows(store, "SELECT table_name, row_number, column_name, raw_value, reason FROM rejects ORDER BY table_name DESC, row_number")
    fmts = "%Y-%m-%d %H:%M:%S or %Y-%m-%d %H:%M or %m/%d/%Y %H:%M or %m/%d/%y %H:%M or %d/%m/%Y %H:%M"
    assert rej == [
        ("orders", 2, "InvoiceDate", "2010-13-45 09:00:00", f"cannot parse '2010-13-45 09:00:00' as a timestamp with formats {fmts}"),
        ("orders", 4, "total", "x", "cannot parse 'x' as a number in 'Quantity' (row 4)"),
        ("order_items", 2, "order_id", "1002", f"orders row '1002' was rejected: cannot parse '2010-13-45 09:00:00' as a timestamp with formats {fmts}"),
        ("order_items", 3, "order_id", "1002", f"orders row '1002' was rejected: cannot parse '2010-13-45 09:00:00' as a timestamp with formats {fmts}"),
        ("order_items", 4, "Quantity", "x", "cannot parse 'x' as a number"),
        ("order_items", 5, "order_id", "1003", "orders row '1003' was rejected: cannot parse 'x' as a number in 'Quantity' (row 4)"),
    ]
    assert json.loads(rows(store, "SELECT raw_row FROM rejects WHERE table_name = 'orders' AND row_number = 4")[0][0])["StockCode"] == "D"


# -- Shopify ------------------------------------------------------------------------------
def test_shopify_orders(store):
    r = ingest(store, DATA / "shopify_orders.csv", "orders", preset="shopify_orders")
    assert counts(r) == {"orders": (10, 10, 0, 0), "order_items": (10, 10, 0, 0)}
    # Ten line rows make fewer orders: "stored" says what each table gained.
    assert r.tables["orders"].stored == rows(store, "SELECT count(*) FROM orders")[0][0] < 10
    assert r.tables["order_items"].stored == 10
    assert "Vendor" in r.ignored_columns and "Risk Level" in r.ignored_columns  # extra columns are ignored
    got = rows(store, "SELECT order_id, customer_id, email, order_time, status, currency, total, discount, channel, items_count FROM orders ORDER BY source_row")
    assert got == [
        ("#1001", None, "anna.schmidt@example.de", dt.datetime(2024, 3, 5, 13, 22, 10), "completed", "EUR", 64.4, 5.0, "web", 3.0),
        ("#1002", None, "lars.berg@example.se", dt.datetime(2024, 3, 6, 8, 1, 40), "returned", "EUR", 89.0, 0.0, "web", 1.0),
        ("#1003", None, "mia.jones@example.com", dt.datetime(2024, 3, 7, 17, 30), "cancelled", "EUR", 24.8, 0.0, "web", 1.0),
        ("#1004", None, "tom.weber@example.de", dt.datetime(2024, 3, 8, 10, 15), "cancelled", "EUR", 54.3, 0.0, "web", 3.0),
        ("#1005", None, "mia.jones@example.com", dt.datetime(2024, 3, 9, 9, 0), "returned", "EUR", 133.6, 0.0, "pos", 3.0),
        ("#1006", None, "sam.lee@example.com", dt.datetime(2024, 3, 10, 4, 59, 59), "completed", "USD", 45.8, 0.0, "web", 2.0),
    ]
    items = rows(store, "SELECT order_id, line_number, product_id, product_name, quantity, unit_price, line_amount FROM order_items WHERE order_id IN ('#1004', '#1005') ORDER BY 1, 2")
    assert items == [
        ("#1004", 1, "SOC-3PK", "Wool Socks - 3 Pack", 2.0, 24.7, 49.4),
        ("#1004", 2, None, "Gift Card", 1.0, 0.0, 0.0),
        ("#1005", 1, "JKT-NVY", "Rain Jacket - Navy", 1.0, 89.0, 89.0),
        ("#1005", 2, "BEA-GRY", "Merino Beanie - Grey", 1.0, 19.9, 19.9),
        ("#1005", 3, "SOC-3PK", "Wool Socks - 3 Pack", 1.0, 24.7, 24.7),
    ]


def test_shopify_unknown_financial_status_is_rejected(store, tmp_path):
    text = (DATA / "shopify_orders.csv").read_text().replace(",refunded,", ",chargeback_pending,", 1)
    path = tmp_path / "orders_export.csv"
    path.write_text(text)
    r = ingest(store, path, "orders", preset="shopify_orders")
    assert r.tables["orders"].rejected == 1 and r.tables["order_items"].rejected == 1
    assert rows(store, "SELECT column_name, raw_value, reason FROM rejects WHERE table_name = 'orders'") == [
        ("Financial Status", "chargeback_pending", "value 'chargeback_pending' is not one of completed, cancelled, returned")
    ]


@pytest.mark.parametrize("name", ["shopify_customers.csv", "shopify_customers_basic.csv"])
def test_shopify_customers(store, name):
    r = ingest(store, DATA / name, "customers", preset="shopify_customers")
    assert (r.read, r.accepted, r.rejected) == (4, 4, 0)
    got = rows(store, "SELECT customer_id, email, first_name, last_name, email_consent, city, region, country, postal_code, attributes FROM customers ORDER BY 1")
    assert got == [
        ("7165069623521", "anna.schmidt@example.de", "Anna", "Schmidt", True, "Berlin", "BE", "DE", "10115", '{"tags":"vip, newsletter"}'),
        ("7165069623522", "lars.berg@example.se", "Lars", "Berg", False, "Göteborg", "O", "SE", "411 38", None),
        ("7165069623523", "mia.jones@example.com", "Mia", "Jones", True, "London", None, "GB", "SW1A 1AA", '{"tags":"newsletter"}'),
        ("7165069623524", "tom.weber@example.de", "Tom", "Weber", False, None, None, None, None, None),
    ]
    optional = rows(store, "SELECT gender, birth_date, signup_date, acquisition_channel, loyalty_member FROM customers ORDER BY customer_id")
    if name == "shopify_customers.csv":
        assert optional == [
            ("female", dt.date(1988, 4, 12), dt.date(2023, 1, 15), "organic", True),
            ("M", dt.date(1975, 11, 2), dt.date(2023, 2, 3), "paid_search", False),  # gender as given
            ("Female", None, dt.date(2023, 5, 20), "social", None),
            (None, None, dt.date(2024, 3, 8), None, None),
        ]
    else:
        assert optional == [(None,) * 5] * 4


def test_split_preset_needs_its_primary_table(store):
    before = snapshot(store)
    with pytest.raises(IngestError, match="online_retail loads orders \\+ order_items, not 'order_items'; use table 'orders'"):
        ingest(store, DATA / "online_retail.csv", "order_items", preset="online_retail")
    assert snapshot(store) == before
