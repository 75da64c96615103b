"""suggest_mapping: a first mapping from headers and sample values."""

from __future__ import annotations

from pathlib import Path

from custseg.sources import ingest, suggest_mapping, suggest_mapping_yaml
from custseg.sources.mapping import parse_yaml
from custseg.sources.presets import load_preset_data

DATA = Path(__file__).resolve().parent / "data"


def test_email_tool_export(store):
    m = suggest_mapping(DATA / "email_events.csv")
    assert m == {
        "table": "email_events",
        "delimiter": ";",
        "columns": {
            "email": "Email Address",
            "campaign_id": "Campaign",
            "event_time": {"column": "Timestamp", "format": "%d/%m/%Y %H:%M"},
            "event_type": {"column": "Event", "values": {
                "Bounced": "bounce", "Clicked": "click", "Opened": "open", "Unsubscribed": "unsubscribe"}},
        },
    }
    r = ingest(store, DATA / "email_events.csv", mapping=m)
    assert (r.accepted, r.rejected) == (9, 0)


def test_generic_orders_export(store, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Order Number,Customer ID,E-mail,Created At,Amount,Order Status,Notes\n"
        "1001,C1,a@x.com,2024-03-05 14:22,19.90,Paid,\n"
        "1002,C2,b@x.com,2024-03-06 09:00,5.00,Refunded,gift\n"
        "1003,C1,a@x.com,2024-03-07 10:00,7.50,Cancelled,\n"
    )
    m = suggest_mapping(path)
    assert m["table"] == "orders"
    assert m["columns"] == {
        "order_id": "Order Number",
        "customer_id": "Customer ID",
        "email": "E-mail",
        "order_time": "Created At",
        "status": {"column": "Order Status", "values": {"Paid": "completed", "Refunded": "returned"}},  # Cancelled is lower-cased
        "total": "Amount",
    }
    r = ingest(store, path, mapping=m)
    assert r.accepted == 3
    assert store.con.execute("SELECT status FROM orders ORDER BY order_id").fetchall() == [("completed",), ("returned",), ("cancelled",)]


def test_cdnow_without_header_gets_constant_status(tmp_path):
    m = suggest_mapping(DATA / "CDNOW_sample.txt", "orders")
    assert m["format"] == "whitespace" and m["header"] is False
    assert m["columns"]["status"] == {"value": "completed"}


def test_known_layout_returns_the_preset():
    m = suggest_mapping(DATA / "online_retail.csv")
    preset = load_preset_data("online_retail")
    assert m == {k: v for k, v in preset.items() if k not in ("description", "detect")}
    text = suggest_mapping_yaml(DATA / "shopify_orders.csv")
    assert "headers match the built-in preset 'shopify_orders'" in text
    assert parse_yaml(text)["tables"]["orders"]["columns"]["order_id"] == "Name"


def test_yaml_round_trip_for_a_table(tmp_path):
    text = suggest_mapping_yaml(DATA / "shopify_customers.csv", "customers")
    data = parse_yaml(text)
    assert data == suggest_mapping(DATA / "shopify_customers.csv", "customers")
    assert data["columns"]["customer_id"] == "Customer ID"
    assert data["columns"]["first_name"] == "First Name"
    assert data["columns"]["email_consent"] == "Accepts Email Marketing"
    assert data["columns"]["postal_code"] == "Default Address Zip"
