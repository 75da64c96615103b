"""Each source format: CSV (; tab, latin-1, gz), whitespace, fixed-width, Parquet, JSONL, Excel."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custseg.sources import IngestError, ingest
from custseg.store.schema import INGESTIBLE

DATA = Path(__file__).resolve().parent / "data"


def snapshot(store) -> dict[str, int]:
    return {t: store.count(t) for t in [*INGESTIBLE, "rejects", "ingest_log"]}


def rows(store, sql: str) -> list[tuple]:
    return store.con.execute(sql).fetchall()


# -- CSV ------------------------------------------------------------------------------------
def test_semicolon_csv_with_mapping(store):
    r = ingest(store, DATA / "email_events.csv", "email_events", mapping=DATA / "email_events.yaml")
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (9, 9, 0, 0)
    assert r.delimiter == ";"
    got = dict(rows(store, "SELECT event_type, count(*) FROM email_events GROUP BY 1"))
    assert got == {"sent": 3, "open": 3, "click": 1, "bounce": 1, "unsubscribe": 1}
    # Day-first dates, lower-cased emails.
    first = rows(store, "SELECT email, event_time, campaign_id FROM email_events WHERE source_row = 1")[0]
    assert first == ("anna.schmidt@example.de", dt.datetime(2024, 3, 5, 9, 0), "spring24")
    assert rows(store, "SELECT event_time FROM email_events WHERE source_row = 7")[0][0] == dt.datetime(2024, 3, 6, 20, 15)
    # Two identical rows (Mia opened twice in the same minute) are kept as two events with distinct ids.
    assert rows(store, "SELECT count(DISTINCT event_id), count(*) FROM email_events") == [(9, 9)]


def test_tab_separated_identity_mapping(store):
    r = ingest(store, DATA / "products.tsv", "products")
    assert (r.read, r.accepted) == (4, 4)
    assert r.delimiter == "\t"
    assert rows(store, "SELECT product_id, name, category, brand, price FROM products ORDER BY source_row") == [
        ("BEA-GRY", "Merino Beanie - Grey", "Accessories", "Nordic Threads", 19.9),
        ("SOC-3PK", "Wool Socks - 3 Pack", "Socks", "Nordic Threads", 24.7),
        ("JKT-NVY", "Rain Jacket - Navy", "Outerwear", "Fjord", 89.0),
        ("GFT-CRD", "Gift Card", None, None, None),  # empty strings are NULL
    ]


@pytest.mark.parametrize("delimiter", ["\t", "\\t", "tab"])
def test_explicit_tab_delimiter(store, tmp_path, delimiter):
    path = tmp_path / "products.txt"
    shutil.copy(DATA / "products.tsv", path)
    r = ingest(store, path, "products", delimiter=delimiter, fmt="csv")
    assert r.accepted == 4


def test_latin1_csv_detected(store):
    r = ingest(store, DATA / "customers_latin1.csv", "customers")
    assert r.encoding in ("cp1252", "latin-1")
    assert rows(store, "SELECT first_name, last_name, city, email, gender FROM customers ORDER BY customer_id") == [
        ("Jörg", "Müller", "München", "jörg.müller@example.de", "m"),
        ("Zoë", "Dupré", "Orléans", "zoe@example.fr", "F"),
        ("José", "Peña", "A Coruña", "jose@example.es", "Female"),  # gender trimmed, not normalised
    ]


def test_latin1_csv_given_encoding(store):
    r = ingest(store, DATA / "customers_latin1.csv", "customers", encoding="latin-1")
    assert r.encoding == "latin-1"
    assert rows(store, "SELECT last_name FROM customers WHERE customer_id = 'C3'") == [("Peña",)]


def test_wrong_encoding_is_fatal_and_store_unchanged(store):
    before = snapshot(store)
    with pytest.raises(IngestError) as exc:
        ingest(store, DATA / "customers_latin1.csv", "customers", encoding="utf-8")
    # The first non-ASCII byte is the ö of "Jörg" on line 2.
    offset = (DATA / "customers_latin1.csv").read_bytes().index(b"\xf6")
    assert str(exc.value) == f"customers_latin1.csv: not valid utf-8 at byte {offset} (line 2); try --encoding cp1252"
    assert snapshot(store) == before


def test_bad_byte_after_detection_sample(store, tmp_path):
    # ASCII beyond the 256 kB detection sample, then one latin-1 byte on line 30002.
    head = "customer_id,first_name\n" + "".join(f"C{i},Name{i}\n" for i in range(30000))
    path = tmp_path / "late.csv"
    path.write_bytes(head.encode() + b"C30000,Ren\xe9\n")
    assert len(head) > 256 * 1024
    before = snapshot(store)
    with pytest.raises(IngestError, match=r"late.csv: not valid utf-8 at byte (\d+) \(line 30002\); try --encoding") as exc:
        ingest(store, path, "customers")
    assert f"byte {len(head) + len('C30000,Ren')} " in str(exc.value)
    assert snapshot(store) == before
    assert ingest(store, path, "customers", encoding="latin-1").accepted == 30001


def test_gzipped_csv(store, tmp_path):
    path = tmp_path / "products.csv.gz"
    path.write_bytes(gzip.compress((DATA / "products.tsv").read_bytes()))
    r = ingest(store, path, "products")
    assert (r.accepted, r.format, r.delimiter) == (4, "csv", "\t")


def test_csv_quoted_fields_and_crlf(store, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b'product_id,name,price\r\nP1,"Mug, large ""XL""",3.5\r\nP2,"two\r\nlines",4\r\n')
    ingest(store, path, "products")
    assert rows(store, "SELECT product_id, name, price FROM products ORDER BY 1") == [
        ("P1", 'Mug, large "XL"', 3.5), ("P2", "two\r\nlines", 4.0)
    ]


def test_csv_without_header_with_names(store, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("P1;Mug;3.5\nP2;Cup;2\n")
    mapping = {"table": "products", "header": False, "names": ["sku", "title", "eur"],
               "columns": {"product_id": "sku", "name": "title", "price": "eur"}}
    r = ingest(store, path, mapping=mapping)
    assert (r.accepted, r.delimiter) == (2, ";")
    assert rows(store, "SELECT * EXCLUDE (ingest_id, price_tier) FROM products ORDER BY 1") == [
        ("P1", "Mug", None, None, 3.5, 1), ("P2", "Cup", None, None, 2.0, 2)
    ]


# -- whitespace and fixed width ------------------------------------------------------------
def test_whitespace_cdnow_sample_fixture(store):
    r = ingest(store, DATA / "CDNOW_sample.txt", "orders", preset="cdnow_sample")
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (6919, 6919, 0, 0)
    assert r.format == "whitespace"
    assert rows(store, "SELECT count(DISTINCT customer_id) FROM orders") == [(2357,)]
    assert rows(store, "SELECT customer_id, order_time, items_count, total, status, currency FROM orders WHERE source_row = 1") == [
        ("00004", dt.datetime(1997, 1, 1), 2.0, 29.33, "completed", "USD")
    ]


def test_whitespace_cdnow_preset_detects_the_sample_layout(store):
    r = ingest(store, DATA / "CDNOW_sample.txt", "orders", preset="cdnow")
    assert (r.read, r.accepted) == (6919, 6919)
    assert rows(store, "SELECT count(DISTINCT customer_id) FROM orders") == [(2357,)]


def test_whitespace_with_header_line(store, tmp_path):
    path = tmp_path / "prices.txt"
    path.write_text("  currency    rate\n\n  EUR   1.0\nUSD\t0.92  \n GBP 1.17\n")
    r = ingest(store, path, "currency_rates")
    assert (r.format, r.accepted) == ("whitespace", 3)
    assert rows(store, "SELECT currency, rate, source_row FROM currency_rates ORDER BY source_row") == [
        ("EUR", 1.0, 1), ("USD", 0.92, 2), ("GBP", 1.17, 3)
    ]


def test_whitespace_ragged_line_is_fatal(store, tmp_path):
    path = tmp_path / "prices.txt"
    path.write_text("currency rate\nEUR 1.0\nUSD 0.92 extra\n")
    before = snapshot(store)
    with pytest.raises(IngestError, match=r"prices.txt: line 3 has 3 fields, expected 2"):
        ingest(store, path, "currency_rates")
    assert snapshot(store) == before


def test_fixed_width(store, tmp_path):
    path = tmp_path / "fixed.dat"
    path.write_text("P0001Merino Beanie      19.90\nP0002Wool Socks         4.70\n")
    mapping = {"table": "products", "format": "fixed", "widths": [5, 18, 6], "names": ["id", "title", "price"],
               "columns": {"product_id": "id", "name": "title", "price": "price"}}
    r = ingest(store, path, mapping=mapping)
    assert r.accepted == 2
    assert rows(store, "SELECT product_id, name, price FROM products ORDER BY 1") == [
        ("P0001", "Merino Beanie", 19.9), ("P0002", "Wool Socks", 4.7)
    ]


# -- Parquet, JSONL, Excel -----------------------------------------------------------------
def test_parquet_typed_columns(store, tmp_path):
    table = pa.table({
        "order_id": ["A1", "A2", "A3"],
        "customer_id": ["C1", None, "C2"],
        "order_time": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 2, 1), None], pa.timestamp("us")),
        "status": ["completed", "Cancelled", "completed"],
        "total": [10.5, 0.0, 3.0],
        "items_count": pa.array([2, 1, 1], pa.int64()),
        "extra": [True, False, True],
    })
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    r = ingest(store, path, "orders")
    assert (r.format, r.read, r.accepted, r.rejected) == ("parquet", 3, 2, 1)
    assert r.ignored_columns == ["extra"]
    assert rows(store, "SELECT order_id, customer_id, order_time, status, total, items_count FROM orders ORDER BY 1") == [
        ("A1", "C1", dt.datetime(2024, 1, 2, 3, 4, 5), "completed", 10.5, 2.0),
        ("A2", None, dt.datetime(2024, 2, 1), "cancelled", 0.0, 1.0),
    ]
    assert rows(store, "SELECT row_number, column_name, reason FROM rejects") == [(3, "order_time", "missing required value")]


def test_jsonl(store):
    r = ingest(store, DATA / "browsing_events.jsonl", "browsing_events")
    assert (r.format, r.read, r.accepted, r.rejected) == ("jsonl", 6, 5, 1)
    assert r.ignored_columns == ["context"]
    assert rows(store, "SELECT event_id, customer_id, event_time, event_type, search_query FROM browsing_events WHERE event_id IN ('e1', 'e5') ORDER BY 1") == [
        ("e1", None, dt.datetime(2024, 3, 5, 14, 1), "page_view", None),
        ("e5", "C2", dt.datetime(2024, 3, 6, 8, 0), "search", "wool socks"),
    ]
    rej = rows(store, "SELECT row_number, column_name, raw_value, reason, raw_row FROM rejects")
    assert rej[0][:4] == (6, "event_type", "teleport",
                          "value 'teleport' is not one of page_view, product_view, add_to_cart, remove_from_cart, "
                          "checkout_start, purchase, search, login")
    assert json.loads(rej[0][4])["event_id"] == "e6"


def test_jsonl_not_objects_is_fatal(store, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"event_id": "e1"}\n[1, 2]\n')
    with pytest.raises(IngestError, match=r"x.jsonl: record 2 is a JSON array, not an object"):
        ingest(store, path, "browsing_events")


def _write_xlsx(path: Path, header: list, data: list[list], sheet: str = "Year 2009-2010") -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Notes"
    ws.append(["This workbook holds the export on the next sheet."])
    ws2 = wb.create_sheet(sheet)
    ws2.append(header)
    for r in data:
        ws2.append(r)
    wb.save(path)


def test_excel_online_retail_ii(store, tmp_path):
    path = tmp_path / "online_retail_II.xlsx"
    t = dt.datetime(2009, 12, 1, 7, 45)
    _write_xlsx(path, ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"], [
        [489434, "85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, t, 6.95, 13085.0, "United Kingdom"],
        [489434, "79323P", "PINK CHERRY LIGHTS", 12, t, 6.75, 13085.0, "United Kingdom"],
        ["C489449", "22087", "PAPER BUNTING WHITE LACE", -12, dt.datetime(2009, 12, 1, 10, 33), 2.95, 16321.0, "Australia"],
        [489597, "20665", "RED RETROSPOT PURSE", 1, dt.datetime(2009, 12, 1, 14, 28), 5.91, None, "United Kingdom"],
    ])
    r = ingest(store, path, "orders", preset="online_retail", sheet="Year 2009-2010")
    assert r.format == "excel"
    assert {k: (v.read, v.accepted) for k, v in r.tables.items()} == {"orders": (4, 4), "order_items": (4, 4)}
    got = rows(store, "SELECT order_id, customer_id, order_time, status, round(total, 2) FROM orders ORDER BY source_row")
    assert got == [
        ("489434", "13085", t, "completed", 164.4),
        ("C489449", "16321", dt.datetime(2009, 12, 1, 10, 33), "cancelled", -35.4),
        ("489597", None, dt.datetime(2009, 12, 1, 14, 28), "completed", 5.91),
    ]
    # The sheet by 0-based number works too, and a wrong name is a clear error.
    assert ingest(store, path, "orders", preset="online_retail", sheet=1).tables["orders"].duplicate == 4
    with pytest.raises(IngestError, match=r"no sheet 'Sheet9'; sheets: Notes, Year 2009-2010"):
        ingest(store, path, "orders", preset="online_retail", sheet="Sheet9")


def test_excel_first_sheet_identity(store, tmp_path):
    import openpyxl

    path = tmp_path / "rates.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["Currency", "Rate"])
    wb.active.append(["EUR", 1])
    wb.active.append(["USD", 0.92])
    wb.active.append([None, None])
    wb.save(path)
    r = ingest(store, path, "currency_rates")
    assert r.accepted == 2
    assert rows(store, "SELECT currency, rate FROM currency_rates ORDER BY 1") == [("EUR", 1.0), ("USD", 0.92)]


def test_utf8_bom_and_txt_detected_as_csv(store, tmp_path):
    path = tmp_path / "export.txt"
    path.write_bytes("\ufeffcurrency;rate\nEUR;1\nCHF;1,05\n".encode("utf-8"))
    r = ingest(store, path, "currency_rates")
    assert (r.format, r.delimiter, r.encoding) == ("csv", ";", "utf-8-sig")
    assert r.counts == {"currency_rates": {"read": 2, "accepted": 1, "rejected": 1, "duplicate": 0, "stored": 1}}
    assert rows(store, "SELECT currency, rate FROM currency_rates") == [("EUR", 1.0)]
    assert rows(store, "SELECT column_name, raw_value, reason FROM rejects") == [("rate", "1,05", "cannot parse '1,05' as a number")]


def test_csv_header_auto(store, tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("EUR,1\nUSD,0.92\n")
    mapping = {"table": "currency_rates", "header": "auto", "names": ["code", "value"],
               "columns": {"currency": "code", "rate": "value"}}
    assert ingest(store, path, mapping=mapping).accepted == 2
    with_header = tmp_path / "rates2.csv"
    with_header.write_text("Code,Value\nGBP,1.17\n")
    assert ingest(store, with_header, mapping=mapping).accepted == 1
    assert store.count("currency_rates") == 3
