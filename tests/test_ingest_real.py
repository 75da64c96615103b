"""The real CDNOW files (../shared/data) and a 1M-row speed check."""

from __future__ import annotations

import datetime as dt
import time

import duckdb
import pytest

from custseg.sources import ingest


def test_cdnow_master(store, shared_data):
    r = ingest(store, shared_data / "CDNOW_master.txt", "orders", preset="cdnow")
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (69_659, 69_659, 0, 0)
    assert r.format == "whitespace"
    con = store.con
    assert con.execute("SELECT count(*), count(DISTINCT customer_id), count(DISTINCT order_id) FROM orders").fetchall() == [
        (69_659, 23_570, 69_659)
    ]
    # 215 distinct rows occur more than once (255 surplus copies): every copy is kept as its own order.
    repeated = con.execute(
        "SELECT count(*), sum(n - 1) FROM (SELECT count(*) AS n FROM orders "
        "GROUP BY customer_id, order_time, items_count, total HAVING n > 1)"
    ).fetchall()
    assert repeated == [(215, 255)]
    assert con.execute("SELECT min(order_time), max(order_time), min(source_row), max(source_row) FROM orders").fetchall() == [
        (dt.datetime(1997, 1, 1), dt.datetime(1998, 6, 30), 1, 69_659)
    ]
    assert con.execute("SELECT customer_id, total, items_count FROM orders WHERE source_row = 1").fetchall() == [("00001", 11.77, 1.0)]
    again = ingest(store, shared_data / "CDNOW_master.txt", "orders", preset="cdnow")
    assert (again.read, again.accepted, again.duplicate) == (69_659, 0, 69_659)
    assert store.count("orders") == 69_659
    assert con.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]


@pytest.mark.parametrize("preset", ["cdnow_sample", "cdnow"])
def test_cdnow_sample(store, shared_data, preset):
    r = ingest(store, shared_data / "CDNOW_sample.txt", "orders", preset=preset)
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (6_919, 6_919, 0, 0)
    assert store.con.execute("SELECT count(DISTINCT customer_id) FROM orders").fetchall() == [(2_357,)]
    assert ingest(store, shared_data / "CDNOW_sample.txt", "orders", preset=preset).accepted == 0


def test_sample_rows_are_master_rows(store, shared_data):
    # The content-derived ids agree across the two layouts: the sample adds nothing to the master.
    ingest(store, shared_data / "CDNOW_master.txt", "orders", preset="cdnow")
    r = ingest(store, shared_data / "CDNOW_sample.txt", "orders", preset="cdnow_sample")
    assert (r.accepted, r.duplicate) == (0, 6_919)


@pytest.mark.slow
def test_one_million_rows_speed(store, tmp_path):
    path = tmp_path / "orders_1m.csv"
    duckdb.sql(f"""COPY (
        SELECT 'O' || i AS "Order ID", 'C' || (i % 200000) AS "Customer ID", 'User' || (i % 200000) || '@Example.com' AS "Email",
               strftime(TIMESTAMP '2022-01-01' + to_seconds(i * 31), '%d/%m/%Y %H:%M:%S') AS "Order Date",
               CASE WHEN i % 17 = 0 THEN 'Refunded' WHEN i % 23 = 0 THEN 'Cancelled' ELSE 'Paid' END AS "Status",
               round(5 + (i % 1000) * 0.37, 2) AS "Amount", 'EUR' AS "Currency", (i % 5) + 1 AS "Items"
        FROM range(1000000) t(i)) TO '{path}' (HEADER)""")
    mapping = {"table": "orders", "columns": {
        "order_id": "Order ID", "customer_id": "Customer ID", "email": "Email",
        "order_time": {"column": "Order Date", "format": "%d/%m/%Y %H:%M:%S"},
        "status": {"column": "Status", "values": {"Paid": "completed", "Refunded": "returned"}},
        "total": "Amount", "currency": "Currency", "items_count": "Items",
    }}
    t0 = time.perf_counter()
    r = ingest(store, path, mapping=mapping)
    seconds = time.perf_counter() - t0
    assert (r.read, r.accepted) == (1_000_000, 1_000_000)
    assert seconds < 60, f"1M rows took {seconds:.1f} s"
    assert store.con.execute("SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1").fetchall() == [
        ("cancelled", 40_921), ("completed", 900_255), ("returned", 58_824)
    ]
