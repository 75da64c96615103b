"""Test data loaders: a small hand-built store (features computed by hand in the tests)
and the CDNOW sample loaded straight into orders."""

from __future__ import annotations

import pandas as pd

T = pd.Timestamp


def load_handmade(store) -> None:
    store.append("customers", pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "email": ["Ann@Example.com ", "bob@example.com", "cy@example.com", None],
        "gender": ["F", " male", "x", None],
        "country": ["United Kingdom", "de", "FRA", "Atlantis"],
        "birth_date": pd.to_datetime(["1990-06-15", "1970-01-01", None, None]),
        "age": [None, None, 40, None],
        "signup_date": pd.to_datetime(["2023-01-01", "2023-01-01", "2023-06-01", "2024-01-01"]),
        "loyalty_member": [True, False, False, None],
        "email_consent": [True, True, False, None],
    }))
    store.append("products", pd.DataFrame({
        "product_id": ["P1", "P2", "P3"], "category": ["Books", "toys", "books"],
        "price": [10.0, 50.0, 200.0], "price_tier": ["budget", "mid", "premium"],
    }))
    # A: 3 completed orders on 2 distinct days + 1 returned; B: 1 completed + 1 cancelled;
    # guest order by unknown email; C's order known only by email (no customer id).
    store.append("orders", pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"],
        "customer_id": ["A", "A", "A", "A", "B", "B", None, None],
        "email": [None, None, None, None, None, None, "guest@example.com", "CY@example.com"],
        "order_time": [T("2024-01-10 09:00"), T("2024-01-10 18:00"), T("2024-03-01 12:00"), T("2024-02-01"),
                       T("2024-02-15"), T("2024-02-20"), T("2024-03-05"), T("2024-03-08")],
        "status": ["completed", "completed", "completed", "returned", "completed", "cancelled", "completed", "completed"],
        "total": [20.0, 50.0, 230.0, 10.0, 100.0, 40.0, 15.0, 30.0],
        "discount": [0.0, 5.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0],
    }))
    store.append("order_items", pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o3", "o5", "o8"],
        "line_number": [1, 1, 1, 2, 1, 1],
        "product_id": ["P1", "P2", "P3", "P1", "P2", "P1"],
        "quantity": [2.0, 1.0, 1.0, 3.0, 2.0, 3.0],
        "unit_price": [10.0, 55.0, 200.0, 10.0, 55.0, 10.0],
        "line_amount": [20.0, 55.0, 200.0, 30.0, 110.0, 30.0],
    }))
    store.append("email_events", pd.DataFrame({
        "event_id": [f"e{i}" for i in range(7)],
        "customer_id": [None, None, None, "B", "B", None, None],
        "email": ["ann@example.com", "ann@example.com", "ANN@example.com", None, None, "ann@example.com", "nobody@x.com"],
        "campaign_id": ["k1", "k2", "k1", "k1", "k1", "k1", "k1"],
        "event_time": [T("2024-01-01"), T("2024-02-01"), T("2024-01-02"), T("2024-01-01"), T("2024-01-05"),
                       T("2024-01-03"), T("2024-01-01")],
        "event_type": ["sent", "sent", "open", "sent", "unsubscribe", "click", "sent"],
    }))
    store.append("browsing_events", pd.DataFrame({
        "event_id": [f"b{i}" for i in range(6)],
        "session_id": ["s1", "s1", "s2", "s2", "s3", "s4"],
        "customer_id": [None, "A", None, None, None, None],
        "anonymous_id": ["dev1", "dev1", "dev1", "dev1", "dev2", "dev1"],
        "event_time": [T("2024-03-01 10:00"), T("2024-03-01 10:05"), T("2024-03-05"), T("2024-03-05 00:10"),
                       T("2024-03-06"), T("2023-10-01")],
        "event_type": ["product_view", "login", "product_view", "add_to_cart", "product_view", "add_to_cart"],
        "product_id": ["P1", None, "P2", "P2", "P1", "P3"],
    }))
    store.append("survey_responses", pd.DataFrame({
        "response_id": ["r1", "r2"], "customer_id": [None, "A"], "email": ["ann@example.com", None],
        "response_time": [T("2024-01-05"), T("2024-02-05")], "nps": [6, 9], "satisfaction": [3, 5],
        "interests": ["books", "books,toys"],
    }))


def load_cdnow_sample(store, path) -> pd.DataFrame:
    """The Fader-Hardie-Lee CDNOW sample as completed orders (trusted path, no ingestion)."""
    df = pd.read_csv(path, sep=r"\s+", header=None, dtype={0: str}, names=["cid", "cohort", "date", "cds", "amt"])
    store.append("orders", pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(df))], "customer_id": df.cid,
        "order_time": pd.to_datetime(df.date.astype(str)), "status": "completed",
        "total": df.amt, "items_count": df.cds.astype(float),
    }))
    return df
