"""Every template on a demo store; on an orders-only (CDNOW) store, the ones that need more data say so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA
from handmade import load_cdnow_sample

from custseg import Store
from custseg.pipeline import build_and_store_features
from custseg.segmenters.rules.templates import (
    TEMPLATES,
    list_templates,
    run_template,
    template_set,
)

ORDERS_ONLY = {"frequent_buyers", "one_time_buyers", "budget_premium", "new_vs_loyal", "lapsed", "high_value"}
NEEDS = {
    "premium_shoppers": "needs order lines with product price tiers (column premium_share is empty in this store)",
    "discount_seekers": "needs orders with discounts (column discounted_order_share is empty in this store)",
    "email_engagement": "needs email events (columns email_open_rate, emails_sent are empty in this store)",
    "window_shoppers": "needs browsing events (columns product_views_90d, sessions_90d are empty in this store)",
    "cart_abandoners": "needs browsing events with cart adds (columns cart_abandonment_rate, cart_sessions are "
                       "empty in this store)",
    "age_band": "needs customer ages (birth date or age) (column age_band is empty in this store)",
    "gender": "needs customer genders (column gender is empty in this store)",
    "country": "needs customer countries (column country is empty in this store)",
    "top_category": "needs order lines with product categories (column top_category is empty in this store)",
    "interests": "needs order lines with product categories (column top_category is empty in this store)",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from custseg.datasets import load_demo, make_store

    store = Store(tmp_path_factory.mktemp("templates") / "demo.duckdb")
    load_demo(store, make_store(2000, seed=11))
    build_and_store_features(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("templates") / "cdnow.duckdb")
    load_cdnow_sample(store, TEST_DATA / "CDNOW_sample.txt")
    build_and_store_features(store)
    yield store
    store.close()


def run(store, name):
    run_id = run_template(store, name)
    members = store.con.execute("SELECT customer_id, segment FROM segment_memberships WHERE run_id = ?",
                                [run_id]).df()
    method, params = store.con.execute("SELECT method, parameters FROM segment_runs WHERE run_id = ?",
                                       [run_id]).fetchall()[0]
    return members, method, json.loads(params)


def test_every_orders_only_template_is_known():
    assert set(NEEDS) | ORDERS_ONLY == set(TEMPLATES)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_runs_on_the_demo_store(demo, name):
    members, method, params = run(demo, name)
    features = demo.to_pandas("customer_features")
    names = [s["name"] for s in params["segments"]] + [params["default"]["name"] if isinstance(
        params["default"], dict) else params["default"]]
    assert method == f"template:{name}" and params["template"] == name
    assert set(members.segment) <= set(names)
    assert members.segment.nunique() >= 2, "a template should split the demo store"
    if params["mode"] == "exclusive":
        assert len(members) == len(features) and members.customer_id.is_unique
    else:
        assert not members.duplicated().any() and set(members.customer_id) == set(features.customer_id)
    # Every statistic the rules use was resolved from the data and recorded.
    for key, value in params["thresholds"].items():
        assert np.isfinite(value), key


def _buyers(f):
    return f[f.orders_count > 0]


def test_high_value_thresholds_are_percentiles_of_buyers(demo):
    members, _, params = run(demo, "high_value")
    f = demo.to_pandas("customer_features")
    p90 = np.quantile(_buyers(f).net_revenue, 0.9)
    p50 = np.quantile(_buyers(f).net_revenue, 0.5)
    assert params["thresholds"] == pytest.approx({
        "p90(net_revenue) filter (where orders_count > 0)": p90,
        "p50(net_revenue) filter (where orders_count > 0)": p50})
    got = members.set_index("customer_id").segment
    expected = np.select([f.orders_count == 0, f.net_revenue >= p90, f.net_revenue >= p50],
                         ["No orders", "High value", "Mid value"], "Low value")
    assert (got.loc[f.customer_id].to_numpy() == expected).all()


def test_lapsed_uses_the_store_typical_time_between_orders(demo):
    members, _, params = run(demo, "lapsed")
    f = demo.to_pandas("customer_features")
    cycle = f.avg_days_between_orders.median()
    assert params["thresholds"] == pytest.approx({"median(avg_days_between_orders)": cycle})
    expected = np.select([f.orders_count == 0, f.recency_days <= 2 * cycle, f.recency_days <= 4 * cycle],
                         ["No orders", "Active", "Lapsed"], "Inactive")
    assert (members.set_index("customer_id").segment.loc[f.customer_id].to_numpy() == expected).all()


def test_frequent_and_budget_premium_match_pandas(demo):
    f = demo.to_pandas("customer_features").set_index("customer_id")
    members, _, params = run(demo, "frequent_buyers")
    p75 = max(2.0, np.quantile(_buyers(f).orders_count, 0.75))
    expected = np.select([f.orders_count == 0, f.orders_count >= p75], ["No orders", "Frequent buyers"],
                         "Occasional buyers")
    assert (members.set_index("customer_id").segment.loc[f.index].to_numpy() == expected).all()

    members, _, params = run(demo, "budget_premium")
    aov = f.aov.dropna()
    hi, lo = np.quantile(aov, 0.8), np.quantile(aov, 0.2)
    assert params["thresholds"] == pytest.approx({"p80(aov)": hi, "p20(aov)": lo})
    expected = np.select([f.orders_count == 0, f.aov >= hi, f.aov <= lo], ["No orders", "Premium", "Budget"],
                         "Mid-range")
    assert (members.set_index("customer_id").segment.loc[f.index].to_numpy() == expected).all()


def test_data_driven_segments_follow_the_data(demo):
    f = demo.to_pandas("customer_features")
    members, _, params = run(demo, "country")
    top = f.country.value_counts()
    biggest = [s["name"] for s in params["segments"][:-1]]
    assert biggest[0] == top.index[0] and len(biggest) == min(10, f.country.nunique())
    assert (members.segment == top.index[0]).sum() == top.iloc[0]

    members, _, params = run(demo, "interests")
    assert params["mode"] == "overlapping"
    shares = [c for c in f.columns if c.startswith("cat_share_")]
    assert len(params["segments"]) == len(shares)
    col = shares[0]
    name = params["segments"][0]["name"]
    tagged = set(members[members.segment == name].customer_id)
    assert tagged == set(f[f[col] >= f[col].median()].customer_id)


def test_email_engagement_unsubscribed_before_engaged(demo):
    members, _, _ = run(demo, "email_engagement")
    f = demo.to_pandas("customer_features").merge(members, on="customer_id")
    assert (f[f.segment == "Unsubscribed"].email_unsubscribed == True).all()
    assert (f[f.segment == "Not emailed"].emails_sent == 0).all()
    assert f[f.segment == "Engaged"].email_open_rate.min() > 0


@pytest.mark.parametrize("name", sorted(ORDERS_ONLY))
def test_orders_templates_run_on_an_orders_only_store(cdnow, name):
    members, _, _ = run(cdnow, name)
    assert len(members) == 2357 and members.customer_id.is_unique
    assert members.segment.nunique() >= 2


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_templates_needing_more_data_say_which(cdnow, name):
    with pytest.raises(ValueError) as info:
        run_template(cdnow, name)
    assert str(info.value) == f"template '{name}' {NEEDS[name]}"


def test_missing_columns_and_unknown_templates(cdnow):
    features = cdnow.table("customer_features").drop("emails_sent")
    with pytest.raises(ValueError, match=r"template 'email_engagement' needs email events \(column emails_sent is "
                                         r"not in the features; build all feature blocks"):
        template_set("email_engagement", features, cdnow.ibis)
    with pytest.raises(ValueError, match=r"unknown template 'high_valu', did you mean 'high_value'\?"):
        template_set("high_valu", features, cdnow.ibis)


def test_list_says_what_each_template_needs():
    table = list_templates()
    assert list(table.template) == list(TEMPLATES)
    row = table.set_index("template").loc["email_engagement"]
    assert row.needs == "email events" and row.columns == "emails_sent, email_open_rate"
    assert isinstance(table, pd.DataFrame)
