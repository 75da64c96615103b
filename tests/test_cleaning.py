"""Cleaning rules: netting, currencies, outliers, identity, normalisation; the quality report."""

from __future__ import annotations

import math

import ibis
import pandas as pd
import pytest

from custseg.cleaning.clean import clean
from custseg.cleaning.normalize import normalize_country, normalize_gender
from custseg.cleaning.quality import quality_report
from custseg.features import build_features
from handmade import load_handmade

T = pd.Timestamp


@pytest.mark.parametrize("raw, code", [
    ("United Kingdom", "GB"), (" uk ", "GB"), ("GBR", "GB"), ("gb", "GB"), ("Deutschland", "DE"),
    ("usa", "US"), ("United States of America", "US"), ("EIRE", "IE"), ("Narnia", "NARNIA"), ("", None),
])
def test_country_normalisation(raw, code):
    assert ibis.duckdb.connect().execute(normalize_country(ibis.literal(raw))) == code


@pytest.mark.parametrize("raw, gender", [
    ("F", "female"), (" f ", "female"), ("Female", "female"), ("M", "male"), ("male", "male"),
    ("Mr.", "male"), ("x", "other"), ("n/a", "unknown"), ("banana", "unknown"),
])
def test_gender_normalisation(raw, gender):
    assert ibis.duckdb.connect().execute(normalize_gender(ibis.literal(raw))) == gender


def _orders(store, totals, statuses=None, currencies=None):
    n = len(totals)
    store.append("orders", pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)], "customer_id": [f"c{i % 5}" for i in range(n)],
        "order_time": [T("2024-01-01") + pd.Timedelta(days=i) for i in range(n)],
        "status": statuses or ["completed"] * n, "total": totals,
        "currency": currencies or ["EUR"] * n,
    }))


def test_outlier_rule_flags_the_far_order_and_caps_it(store):
    totals = [20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 28.0, 33.0, 100_000.0]
    _orders(store, totals)
    o = store.to_pandas(clean(store).orders).set_index("order_id")
    assert o.is_outlier.sum() == 1 and bool(o.loc["o9", "is_outlier"])
    logs = pd.Series(totals[:]).apply(math.log)
    med = logs.median()
    mad = (logs - med).abs().median()
    assert o.loc["o0", "outlier_cap"] == pytest.approx(math.exp(med + 3.5 * mad / 0.6745))
    capped = store.to_pandas(build_features(store, "2024-02-01", include=("orders",), cap_outliers=True))
    raw = store.to_pandas(build_features(store, "2024-02-01", include=("orders",)))
    c4 = lambda f: f.set_index("customer_id").loc["c4", "net_revenue"]  # noqa: E731
    assert c4(raw) == pytest.approx(40.0 + 100_000.0)
    assert c4(capped) == pytest.approx(40.0 + o.loc["o0", "outlier_cap"])


def test_credit_notes_offset_revenue(store):
    # Online Retail style: an invoice and its C-invoice (cancelled, negative).
    _orders(store, [100.0, -100.0, 50.0, 60.0], ["completed", "cancelled", "returned", "cancelled"])
    o = store.to_pandas(clean(store).orders).set_index("order_id")
    assert o.net_amount.tolist() == [100.0, -100.0, 0.0, 0.0]
    assert o.is_credit.tolist() == [False, True, False, False]


def test_currency_conversion_with_rate_table(store):
    _orders(store, [10.0, 10.0, 10.0], currencies=["EUR", "GBP", "JPY"])
    store.append("currency_rates", pd.DataFrame({"currency": ["EUR", "GBP"], "rate": [1.0, 1.17]}))
    o = store.to_pandas(clean(store).orders).set_index("order_id")
    assert o.total.tolist() == pytest.approx([10.0, 11.7, 10.0])
    assert o.currency_unknown.tolist() == [False, False, True]


def test_no_rate_table_means_no_conversion(store):
    _orders(store, [10.0, 10.0], currencies=["EUR", "GBP"])
    o = store.to_pandas(clean(store).orders)
    assert o.total.tolist() == [10.0, 10.0] and not o.currency_unknown.any()


def test_quality_report_on_handmade_store(store):
    load_handmade(store)
    # Plant one exact duplicate order row (different derived id) and a reject.
    store.con.execute("INSERT INTO orders SELECT * REPLACE ('o1-copy' AS order_id) FROM orders WHERE order_id = 'o1'")
    store.con.execute("INSERT INTO rejects (table_name, reason) VALUES ('orders', 'cannot parse date')")
    report = quality_report(store)
    tables = report.tables.set_index("table")
    assert tables.loc["orders", "rows"] == 9
    assert tables.loc["orders", "exact_duplicates"] == 1
    assert tables.loc["orders", "first"] == T("2024-01-10 09:00")
    checks = dict(zip(report.anomalies.check, report.anomalies.rows))
    assert checks["guest orders (no customer id or known email; kept out of customer features)"] == 1
    assert checks["country not recognised"] == 1  # Atlantis
    assert checks["status returned"] == 1 and checks["status cancelled"] == 1
    assert checks["rows matching no customer (no id, unknown email)"] == 1  # nobody@x.com
    missing = report.missing.set_index(["table", "column"])
    assert missing.loc[("customers", "email"), "missing"] == 1
    assert report.rejects.rows.tolist() == [1]
    assert set(report.to_dict()) == {"tables", "missing", "rejects", "anomalies"}
