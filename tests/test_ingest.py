"""Ingestion semantics: rejects, duplicates, idempotency, transactions, mapping constructs, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

import custseg.sources.loader as ingest_module
from custseg.sources import IngestError, ingest
from custseg.store.schema import INGESTIBLE

DATA = Path(__file__).resolve().parent / "data"


def snapshot(store) -> dict[str, int]:
    return {t: store.count(t) for t in [*INGESTIBLE, "rejects", "ingest_log"]}


def rows(store, sql: str, params=None) -> list[tuple]:
    return store.con.execute(sql, params or []).fetchall()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


ORDERS_MAP = {
    "table": "orders",
    "columns": {
        "order_id": "Order",
        "customer_id": "Customer",
        "order_time": {"column": "Date", "format": "%Y-%m-%d"},
        "status": {"column": "State", "values": {"Paid": "completed", "Refund": "returned"}},
        "total": "Amount",
        "currency": {"value": "EUR"},
    },
}


# -- rejects ------------------------------------------------------------------------------
def test_row_problems_go_to_rejects_with_reasons(store, tmp_path):
    path = write(tmp_path, "orders.csv", (
        "Order,Customer,Date,State,Amount\n"
        "A1,C1,2021-01-05,Paid,10.50\n"
        "A2,C1,2021-13-45,Paid,3\n"
        "A3,C2,2021-02-01,Paid,abc\n"
        "A4,C2,2021-02-02,Lost,5\n"
        ",C3,2021-02-03,Paid,5\n"
        "A6,  C3 ,2021-02-04,refund,  7  \n"
        "A7,C4,2021-02-05,Paid,inf\n"
    ))
    r = ingest(store, path, "orders", mapping=ORDERS_MAP)
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (7, 2, 5, 0)
    got = rows(store, "SELECT ingest_id, source, table_name, row_number, column_name, raw_value, reason FROM rejects ORDER BY row_number")
    src = str(path.resolve())
    assert got == [
        (r.ingest_id, src, "orders", 2, "Date", "2021-13-45", "cannot parse '2021-13-45' as a timestamp with format %Y-%m-%d"),
        (r.ingest_id, src, "orders", 3, "Amount", "abc", "cannot parse 'abc' as a number"),
        (r.ingest_id, src, "orders", 4, "State", "Lost", "value 'lost' is not one of completed, cancelled, returned"),
        (r.ingest_id, src, "orders", 5, "Order", None, "missing required value"),
        (r.ingest_id, src, "orders", 7, "Amount", "inf", "cannot parse 'inf' as a number"),
    ]
    raw = json.loads(rows(store, "SELECT raw_row FROM rejects WHERE row_number = 3")[0][0])
    assert raw == {"Order": "A3", "Customer": "C2", "Date": "2021-02-01", "State": "Paid", "Amount": "abc"}
    # Trimmed, value-mapped case-insensitively, typed.
    assert rows(store, "SELECT order_id, customer_id, order_time, status, total, currency, source_row FROM orders ORDER BY 1") == [
        ("A1", "C1", dt.datetime(2021, 1, 5), "completed", 10.5, "EUR", 1),
        ("A6", "C3", dt.datetime(2021, 2, 4), "returned", 7.0, "EUR", 6),
    ]
    log = rows(store, "SELECT rows_read, rows_accepted, rows_rejected, rows_duplicate FROM ingest_log")
    assert log == [(7, 2, 5, 0)]


def test_date_column_reason(store, tmp_path):
    path = write(tmp_path, "c.csv", "id,signup\nC1,2021-13-45\nC2,2021-03-04\n")
    mapping = {"table": "customers", "columns": {"customer_id": "id", "signup_date": {"column": "signup", "format": "%Y-%m-%d"}}}
    r = ingest(store, path, mapping=mapping)
    assert (r.accepted, r.rejected) == (1, 1)
    assert rows(store, "SELECT reason FROM rejects") == [("cannot parse '2021-13-45' as a date with format %Y-%m-%d",)]
    assert rows(store, "SELECT signup_date FROM customers") == [(dt.date(2021, 3, 4),)]


def test_types_booleans_integers_and_no_normalisation(store, tmp_path):
    path = write(tmp_path, "customers.csv", (
        "customer_id,email,gender,country,loyalty_member,age,email_consent\n"
        "C1,  Anna@Example.COM ,F, de ,Yes,34,1\n"
        "C2,,Male,Germany,no,,false\n"
        "C3,,,,maybe,,\n"
        "C4,,,,,4.5,\n"
    ))
    r = ingest(store, path, "customers")
    assert (r.accepted, r.rejected) == (2, 2)
    assert rows(store, "SELECT customer_id, email, gender, country, loyalty_member, age, email_consent FROM customers ORDER BY 1") == [
        ("C1", "anna@example.com", "F", "de", True, 34, True),
        ("C2", None, "Male", "Germany", False, None, False),
    ]
    assert rows(store, "SELECT row_number, reason FROM rejects ORDER BY 1") == [
        (3, "cannot parse 'maybe' as a boolean (expected yes/no, true/false or 1/0)"),
        (4, "cannot parse '4.5' as an integer"),
    ]


# -- duplicates and idempotency ----------------------------------------------------------
def test_duplicates_in_file_and_reingest(store, tmp_path):
    path = write(tmp_path, "orders.csv", (
        "Order,Customer,Date,State,Amount\n"
        "A1,C1,2021-01-05,Paid,10\n"
        "A2,C1,2021-01-06,Paid,3\n"
        "A1,C1,2021-01-07,Paid,99\n"
    ))
    r = ingest(store, path, "orders", mapping=ORDERS_MAP)
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (3, 2, 0, 1)
    assert rows(store, "SELECT total FROM orders WHERE order_id = 'A1'") == [(10.0,)]  # the first wins
    again = ingest(store, path, "orders", mapping=ORDERS_MAP)
    assert (again.read, again.accepted, again.duplicate) == (3, 0, 3)
    assert store.count("orders") == 2
    log = rows(store, "SELECT ingest_id, file, content_hash, table_name, rows_read, rows_accepted, rows_duplicate, options FROM ingest_log ORDER BY 1")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert [x[:7] for x in log] == [
        (1, str(path.resolve()), digest, "orders", 3, 2, 1),
        (2, str(path.resolve()), digest, "orders", 3, 0, 3),
    ]
    options = json.loads(log[0][7])
    assert options["format"] == "csv" and options["delimiter"] == "," and options["mapping"]["table"] == "orders"


def test_overlapping_export_adds_only_new_rows(store, tmp_path):
    a = write(tmp_path, "jan.csv", "Order,Customer,Date,State,Amount\nA1,C1,2021-01-05,Paid,10\nA2,C2,2021-01-06,Paid,3\n")
    b = write(tmp_path, "jan-feb.csv", (
        "Order,Customer,Date,State,Amount\nA2,C2,2021-01-06,Paid,3\nA1,C1,2021-01-05,Paid,10\nA3,C1,2021-02-01,Paid,8\n"
    ))
    assert ingest(store, a, "orders", mapping=ORDERS_MAP).accepted == 2
    r = ingest(store, b, "orders", mapping=ORDERS_MAP)
    assert (r.read, r.accepted, r.duplicate) == (3, 1, 2)
    assert rows(store, "SELECT order_id, ingest_id, source_row FROM orders ORDER BY 1") == [("A1", 1, 1), ("A2", 1, 2), ("A3", 2, 3)]


EVENTS_MAP = {"table": "email_events", "columns": {
    "email": "Email Address", "event_type": {"column": "Event", "values": {"Opened": "open"}},
    "event_time": {"column": "Timestamp", "format": "%d/%m/%Y %H:%M"},
}}


def test_derived_ids_for_sources_without_ids(store, tmp_path):
    row = "a@x.com,Opened,05/03/2024 09:00\n"
    first = write(tmp_path, "e1.csv", "Email Address,Event,Timestamp\n" + row * 2 + "b@x.com,Sent,05/03/2024 09:00\n")
    r = ingest(store, first, mapping=EVENTS_MAP)
    assert (r.accepted, r.duplicate) == (3, 0)  # two identical rows are two events
    assert ingest(store, first, mapping=EVENTS_MAP).accepted == 0
    # A later export has the same rows, a third identical open and a new event: both are added.
    later = write(tmp_path, "e2.csv", "Email Address,Event,Timestamp\nb@x.com,Sent,05/03/2024 09:00\n" + row * 3 + "c@x.com,Sent,05/03/2024 09:00\n")
    r = ingest(store, later, mapping=EVENTS_MAP)
    assert (r.read, r.accepted, r.duplicate) == (5, 2, 3)
    assert rows(store, "SELECT email, count(*) FROM email_events GROUP BY 1 ORDER BY 1") == [("a@x.com", 3), ("b@x.com", 1), ("c@x.com", 1)]
    assert rows(store, "SELECT count(DISTINCT event_id) FROM email_events") == [(5,)]


# -- transactions -------------------------------------------------------------------------
def test_failure_during_load_leaves_store_unchanged(store, tmp_path, monkeypatch):
    ingest(store, DATA / "online_retail.csv", "orders", preset="online_retail")
    before = snapshot(store)
    calls = []
    real = ingest_module._insert

    def failing_insert(con, spec, *args, **kwargs):
        calls.append(spec.name)
        if spec.name == "order_items":
            raise RuntimeError("disk full")
        return real(con, spec, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "_insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(store, DATA / "online_retail_ii.csv", "orders", preset="online_retail")
    assert calls == ["orders", "order_items"]  # orders were inserted, then rolled back
    assert snapshot(store) == before
    assert no_temp_objects(store)


def no_temp_objects(store) -> bool:
    left = store.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_\\_cs%' ESCAPE '\\' "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE view_name LIKE '\\_\\_cs%' ESCAPE '\\'"
    ).fetchall()
    return not left


def test_temp_objects_are_dropped(store, tmp_path):
    ingest(store, DATA / "shopify_orders.csv", "orders", preset="shopify_orders")
    assert no_temp_objects(store)
    with pytest.raises(IngestError):
        ingest(store, DATA / "shopify_orders.csv", "orders", mapping={"table": "orders", "columns": {
            "order_id": "Name", "order_time": "Created at", "status": "Financial Status", "total": {"expr": "Totl * 2"}}})
    assert no_temp_objects(store)


# -- mapping constructs ------------------------------------------------------------------
def test_when_rules_values_default_constant_expr(store, tmp_path):
    path = write(tmp_path, "sales.csv", (
        "Invoice,When,Qty,Unit,Note,Total\n"
        "C100,2024-01-01,2,1.5,,3\n"
        "X200,2024-01-02,1,4,VOID,4\n"
        "300,2024-01-03,3,2,returned by post,6\n"
        "400,2024-01-04,1,1,,1\n"
    ))
    mapping = {"tables": {
        "orders": {"columns": {
            "order_id": "Invoice",
            "order_time": "When",
            "status": {"column": "Invoice", "when": [
                {"startswith": "C", "then": "cancelled"},
                {"column": "Note", "equals": ["void", "voided"], "then": "cancelled"},
                {"column": "Note", "matches": "^return", "then": "returned"},
            ], "default": "completed"},
            "total": {"expr": "round(Total * 1.1, 2)"},
            "channel": {"value": "store"},
        }},
        "order_items": {"columns": {
            "order_id": "Invoice", "quantity": "Qty", "unit_price": "Unit",
            "line_amount": {"expr": "coalesce(Qty, 0) * Unit"},
        }},
    }}
    r = ingest(store, path, "orders", mapping=mapping)
    assert r.tables["orders"].accepted == 4 and r.tables["order_items"].accepted == 4
    assert rows(store, "SELECT order_id, status, total, channel FROM orders ORDER BY source_row") == [
        ("C100", "cancelled", 3.3, "store"), ("X200", "cancelled", 4.4, "store"),
        ("300", "returned", 6.6, "store"), ("400", "completed", 1.1, "store"),
    ]
    assert rows(store, "SELECT order_id, line_number, line_amount FROM order_items ORDER BY source_row") == [
        ("C100", 1, 3.0), ("X200", 1, 4.0), ("300", 1, 6.0), ("400", 1, 1.0),
    ]


def test_three_way_split_with_aggregates(store, tmp_path):
    path = write(tmp_path, "lines.csv", (
        "Order,Customer,Mail,Date,Qty,Price,Sku\n"
        "O1,C1,A@x.com,2024-01-01,2,5,P1\n"
        "O1,C1,,2024-01-01,1,10,P2\n"
        "O2,C2,b@x.com,2024-01-02,4,1,P1\n"
        "O3,C1,a@x.com,2024-01-03,1,3,P3\n"
    ))
    mapping = {"tables": {
        "customers": {"columns": {"customer_id": "Customer", "email": "Mail",
                                  "signup_date": {"agg": "first", "column": "Date"}}},
        "orders": {"columns": {
            "order_id": "Order", "customer_id": "Customer", "order_time": "Date", "status": {"value": "completed"},
            "total": {"agg": "sum", "expr": "Qty * Price"}, "items_count": {"agg": "count"},
            "discount": {"agg": "max", "column": "Price"}, "channel": {"agg": "last", "column": "Sku"}}},
        "order_items": {"columns": {"order_id": "Order", "product_id": "Sku", "quantity": "Qty",
                                    "unit_price": "Price", "line_amount": {"expr": "Qty * Price"}}},
    }}
    r = ingest(store, path, "customers", mapping=mapping)
    assert {k: (v.read, v.accepted) for k, v in r.tables.items()} == {"customers": (4, 4), "orders": (4, 4), "order_items": (4, 4)}
    assert rows(store, "SELECT customer_id, email, signup_date FROM customers ORDER BY 1") == [
        ("C1", "a@x.com", dt.date(2024, 1, 1)), ("C2", "b@x.com", dt.date(2024, 1, 2))]
    assert rows(store, "SELECT order_id, total, items_count, discount, channel FROM orders ORDER BY 1") == [
        ("O1", 20.0, 2.0, 10.0, "P2"), ("O2", 4.0, 1.0, 1.0, "P1"), ("O3", 3.0, 1.0, 3.0, "P3")]
    assert rows(store, "SELECT table_name, ingest_id FROM ingest_log ORDER BY 2") == [("customers", 1), ("orders", 2), ("order_items", 3)]


def test_skip_lines_and_optional_json(store, tmp_path):
    path = write(tmp_path, "p.csv", "Exported 2024-03-01 by ShopTool\n\nid,title,colour\nP1,Mug,red\nP2,Cup,\n")
    mapping = {"table": "products", "skip": 2, "columns": {
        "product_id": "id", "name": "title", "category": {"json": {"colour": "colour", "size": "size"}, "optional": True},
        "brand": {"value": None}}}
    assert ingest(store, path, mapping=mapping).accepted == 2
    assert rows(store, "SELECT product_id, name, category, brand FROM products ORDER BY 1") == [
        ("P1", "Mug", '{"colour":"red"}', None), ("P2", "Cup", None, None)]


def test_yes_no_value_map_and_yaml_booleans(store, tmp_path):
    path = write(tmp_path, "c.csv", "id,Newsletter,Club\nC1,Yes,Y\nC2,No,N\nC3,,?\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "table: customers\ncolumns:\n  customer_id: id\n"
        "  email_consent: {column: Newsletter, values: {Yes: true, No: false}, default: false}\n"
        "  loyalty_member: {column: Club, values: {Y: true, N: false, '?': null}}\n"
    )
    r = ingest(store, path, mapping=mapping)
    assert r.accepted == 3
    assert rows(store, "SELECT customer_id, email_consent, loyalty_member FROM customers ORDER BY 1") == [
        ("C1", True, True), ("C2", False, False), ("C3", False, None)
    ]


def test_expr_numeric_check_names_source_column(store, tmp_path):
    path = write(tmp_path, "lines.csv", "Order,Qty,Price\nA,2,1.5\nA,x,2\n")
    mapping = {"table": "order_items", "columns": {
        "order_id": "Order", "quantity": "Qty", "unit_price": "Price", "line_amount": {"expr": "Qty * Price"}}}
    r = ingest(store, path, mapping=mapping)
    assert (r.accepted, r.rejected) == (1, 1)
    assert rows(store, "SELECT row_number, column_name, raw_value, reason FROM rejects") == [(2, "Qty", "x", "cannot parse 'x' as a number")]
    assert rows(store, "SELECT order_id, line_number, line_amount FROM order_items") == [("A", 1, 3.0)]


def test_identity_mapping_case_insensitive_headers(store, tmp_path):
    path = write(tmp_path, "o.csv", "ORDER_ID, Order_Time ,STATUS,Total,Notes\nA1,2024-05-01 10:00:00,completed,9.5,x\n")
    r = ingest(store, path, "orders")
    assert r.accepted == 1 and r.ignored_columns == ["Notes"]
    assert rows(store, "SELECT order_id, order_time, total FROM orders") == [("A1", dt.datetime(2024, 5, 1, 10), 9.5)]


def test_aliases_and_column_alternatives(store, tmp_path):
    path = write(tmp_path, "p.csv", "SKU,Title,UnitPrice\nP1,Mug,3\n")
    mapping = {"table": "products", "aliases": {"Price": ["UnitPrice", "Cost"]},
               "columns": {"product_id": ["product_id", "SKU"], "name": "Title", "price": "Price"}}
    assert ingest(store, path, mapping=mapping).accepted == 1
    assert rows(store, "SELECT product_id, name, price FROM products") == [("P1", "Mug", 3.0)]


# -- fatal errors ------------------------------------------------------------------------
RETAIL_MAP = {"table": "orders", "columns": {
    "order_id": "Invoice", "order_time": "InvoiceDate", "total": "Price", "status": {"value": "completed"}}}


@pytest.mark.parametrize(("content", "kwargs", "message"), [
    ("Invoice,Price\n1,2\n", {"mapping": RETAIL_MAP},
     "orders.csv: required column 'order_time' (mapped from 'InvoiceDate') is missing; file has columns: Invoice, Price"),
    ("Invoice,Invoice Date,Price\n1,2024-01-01,2\n", {"mapping": RETAIL_MAP},
     "orders.csv: required column 'order_time' (mapped from 'InvoiceDate') is missing (did you mean 'Invoice Date'?); "
     "file has columns: Invoice, Invoice Date, Price"),
    ("Invoice,InvoiceDate,Price,Emial\n1,2024-01-01,2,a@b.c\n",
     {"mapping": {**RETAIL_MAP, "columns": {**RETAIL_MAP["columns"], "email": "Email"}}},
     "orders.csv: column 'Email' (mapped to orders.email) is not in the file (did you mean 'Emial'?); "
     "file has columns: Invoice, InvoiceDate, Price, Emial"),
    ("", {"table": "orders"}, "orders.csv: file is empty"),
    ("\n  \n", {"table": "orders"}, "orders.csv: file is empty"),
    ("order_id,total\nA,1\n", {"table": "orders"}, "orders.csv: required column 'order_time' is missing"),
    ("a,b\n1,2\n", {"preset": "shopify_order"}, "unknown preset 'shopify_order' (did you mean 'shopify_orders'?)"),
    ("a,b\n1,2\n", {"table": "order"}, "unknown table 'order' (did you mean 'orders'?)"),
    ("a,b\n1,2\n3,4,5\n", {"table": "products"}, "orders.csv: line 3 has 3 fields, expected 2 (malformed CSV)"),
    ("Invoice,InvoiceDate,Price\n1,2024-01-01,2\n",
     {"mapping": {**RETAIL_MAP, "columns": {**RETAIL_MAP["columns"], "total": {"expr": "1=1; DROP TABLE orders"}}}},
     "unsafe expression '1=1; DROP TABLE orders'"),
    ("Invoice,InvoiceDate,Price\n1,2024-01-01,2\n",
     {"mapping": {**RETAIL_MAP, "columns": {**RETAIL_MAP["columns"], "total": {"expr": "(SELECT max(total) FROM orders)"}}}},
     "unsafe expression"),
    ("Invoice,InvoiceDate,Price\n1,2024-01-01,2\n",
     {"mapping": {**RETAIL_MAP, "columns": {**RETAIL_MAP["columns"], "total": {"expr": "pg_sleep(Price)"}}}},
     "function pg_sleep() is not allowed"),
    ("a\n1\n", {"mapping": {"table": "orders", "columns": {"order_id": "a", "totl": "a"}}},
     "table orders has no column 'totl' (did you mean 'total'?)"),
    ("a\n1\n", {"mapping": {"table": "products", "columns": {"product_id": {"colum": "a"}}}},
     "products.product_id: unknown key 'colum' (did you mean 'column'?)"),
    ("a\n1\n", {"mapping": {"table": "orders", "columns": {"order_id": "a"}}},
     "required column orders.order_time is not mapped"),
    ("a\n1\n", {"preset": "cdnow", "table": "customers"}, "cdnow loads orders, not 'customers'; use table 'orders'"),
    ("a\n1\n", {"table": "products", "encoding": "klingon"}, "unknown encoding 'klingon'"),
    # Only event-like tables (and orders) get derived ids; a customer needs its id.
    ("email\na@b.c\n", {"table": "customers"}, "orders.csv: required column 'customer_id' is missing"),
    ("Mail\na@b.c\n", {"mapping": {"table": "customers", "columns": {"email": "Mail"}}},
     "required column customers.customer_id is not mapped"),
])
def test_fatal_errors_are_clear_and_change_nothing(store, tmp_path, content, kwargs, message):
    path = write(tmp_path, "orders.csv", content)
    ingest(store, DATA / "products.tsv", "products")
    before = snapshot(store)
    with pytest.raises(IngestError) as exc:
        ingest(store, path, **kwargs)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)
    assert isinstance(exc.value, ValueError)
    assert snapshot(store) == before
    assert store.has_table("orders")


def test_bad_mapping_yaml(store, tmp_path):
    path = write(tmp_path, "o.csv", "a\n1\n")
    bad = write(tmp_path, "bad.yaml", "table: orders\ncolumns:\n  order_id: [unclosed\n")
    with pytest.raises(IngestError, match=r"bad.yaml: bad mapping YAML at line \d+, column \d+"):
        ingest(store, path, mapping=bad)
    with pytest.raises(IngestError, match="mapping file .*missing.yaml not found"):
        ingest(store, path, mapping=tmp_path / "missing.yaml")
    with pytest.raises(IngestError, match="not found"):
        ingest(store, tmp_path / "nope.csv", "orders")


def test_header_only_file_reads_nothing(store, tmp_path):
    path = write(tmp_path, "o.csv", "order_id,order_time,status,total\n")
    r = ingest(store, path, "orders")
    assert (r.read, r.accepted) == (0, 0)
    assert store.count("ingest_log") == 1


def test_hostile_headers_and_values_are_only_data(store, tmp_path):
    evil = 'x"); DROP TABLE orders; --'
    path = tmp_path / "o'; DROP TABLE orders; --.csv"
    path.write_text(
        f'"{evil.replace(chr(34), chr(34) * 2)}",order_time,status,total,note\n'
        "A1,2024-01-01,completed,1,\"it's'; DROP TABLE orders; --\"\n"
        "A2,2024-01-02,weird'); DROP TABLE orders; --,2,x\n"
    )
    mapping = {"table": "orders", "columns": {
        "order_id": evil, "order_time": "order_time", "status": "status", "total": "total",
        "channel": {"column": "note", "values": {"x'); DROP TABLE orders; --": "web"}},
    }}
    r = ingest(store, path, mapping=mapping)
    assert (r.accepted, r.rejected) == (1, 1)
    assert rows(store, "SELECT order_id, channel FROM orders") == [("A1", "it's'; DROP TABLE orders; --")]
    reason, raw_row, source = rows(store, "SELECT reason, raw_row, source FROM rejects")[0]
    assert reason == "value 'weird'); drop table orders; --' is not one of completed, cancelled, returned"
    assert json.loads(raw_row)[evil] == "A2"
    assert source.endswith("o'; DROP TABLE orders; --.csv")
