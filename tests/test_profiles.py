"""Segment profiles and migration on a hand-built store: every number computed by hand.

Six customers; c6 is in no run of the first segmentation, so it stays out of that
run's base. Features (written straight into customer_features):

    cid  net_revenue orders recency age_band gender country loyalty sent open_rate
    c1   100         2      10      25-34    female GB      True    4    0.5
    c2   300         4      20      25-34    male   GB      False   2    1.0
    c3   200         3      30      35-44    female DE      True    0    -
    c4    50         1      100     35-44    female DE      False   4    0.25
    c5     0         0      -       -        male   FR      -       2    0.0
    c6   150         2      50      45-54    female GB      True    0    -

Completed order lines before 2024-06-01 (books: P1, P3; toys: P2):
c1 books 30 + toys 10, c2 toys 60, c3 books 100, c4 books 20 + toys 20, c6 toys 500.
A cancelled order of c1 (books 1000) and an order after the as-of date (books 999) do not count.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from custseg.profiles import ALL, NOT_IN_RUN, compare_runs, profile_run, segment_growth
from custseg.segmenters.runs import record_run

T = pd.Timestamp


def load_hand_store(store) -> None:
    store.append("products", pd.DataFrame({
        "product_id": ["P1", "P2", "P3"], "name": ["Atlas", "Kite", "Codex"],
        "category": ["Books", "toys", "books"]}))
    orders = [("o1", "c1", "2024-01-10", "completed"), ("o2", "c2", "2024-02-10", "completed"),
              ("o3", "c3", "2024-03-10", "completed"), ("o4", "c4", "2024-04-10", "completed"),
              ("o6", "c6", "2024-05-10", "completed"), ("o7", "c1", "2024-05-20", "cancelled"),
              ("o8", "c1", "2024-07-01", "completed")]
    store.append("orders", pd.DataFrame({
        "order_id": [o[0] for o in orders], "customer_id": [o[1] for o in orders],
        "order_time": [T(o[2]) for o in orders], "status": [o[3] for o in orders],
        "total": [40.0, 60.0, 100.0, 40.0, 500.0, 1000.0, 999.0]}))
    lines = [("o1", 1, "P1", 30.0), ("o1", 2, "P2", 10.0), ("o2", 1, "P2", 60.0), ("o3", 1, "P3", 100.0),
             ("o4", 1, "P1", 20.0), ("o4", 2, "P2", 20.0), ("o6", 1, "P2", 500.0), ("o7", 1, "P1", 1000.0),
             ("o8", 1, "P3", 999.0)]
    store.append("order_items", pd.DataFrame({
        "order_id": [x[0] for x in lines], "line_number": [x[1] for x in lines], "product_id": [x[2] for x in lines],
        "quantity": 1.0, "line_amount": [x[3] for x in lines]}))
    features = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
        "net_revenue": [100.0, 300.0, 200.0, 50.0, 0.0, 150.0],
        "orders_count": [2, 4, 3, 1, 0, 2],
        "recency_days": [10.0, 20.0, 30.0, 100.0, None, 50.0],
        "age_band": ["25-34", "25-34", "35-44", "35-44", None, "45-54"],
        "gender": ["female", "male", "female", "female", "male", "female"],
        "country": ["GB", "GB", "DE", "DE", "FR", "GB"],
        "loyalty_member": pd.array([True, False, True, False, None, True], dtype="boolean"),
        "emails_sent": [4, 2, 0, 4, 2, 0],
        "email_open_rate": [0.5, 1.0, None, 0.25, 0.0, None],
        "as_of": dt.date(2024, 6, 1),
    })
    store.replace("customer_features", features)


def record(store, run_id, method, pairs):
    frame = pd.DataFrame(pairs, columns=["customer_id", "segment"])
    return record_run(store, method, {"note": "hand-made"}, dt.date(2024, 6, 1), frame, run_id=run_id)


@pytest.fixture
def hand(store):
    load_hand_store(store)
    record(store, "hand-1", "hand", [("c1", "A"), ("c2", "A"), ("c3", "A"), ("c4", "B"), ("c5", "B")])
    record(store, "hand-2", "hand", [("c1", "A"), ("c6", "A"), ("c2", "B"), ("c3", "B"), ("c4", "C")])
    record(store, "tags-1", "rules", [("c1", "vip"), ("c1", "email_fan"), ("c2", "vip"), ("c3", "email_fan"),
                                      ("c5", "email_fan")])
    return store


def test_sizes_shares_and_revenue(hand):
    p = profile_run(hand, "hand-1")
    assert p.info.exclusive and p.info.n_customers == 5 and p.notes == []
    seg = p.segments.set_index("segment")
    assert list(seg.index) == ["A", "B"]
    assert seg.loc["A", "customers"] == 3 and seg.loc["B", "customers"] == 2
    assert seg.loc["A", "share"] == pytest.approx(3 / 5)
    # base revenue: c1..c5 = 650 (c6 is not in the run)
    assert p.revenue == pytest.approx(650.0)
    assert seg.loc["A", "revenue"] == pytest.approx(600.0)
    assert seg.loc["A", "revenue_share"] == pytest.approx(600 / 650)
    assert seg.loc["B", "revenue_share"] == pytest.approx(50 / 650)
    assert seg.loc["A", "revenue_per_customer"] == pytest.approx(200.0)
    assert seg.loc["B", "revenue_per_customer"] == pytest.approx(25.0)


def test_means_medians_and_index(hand):
    p = profile_run(hand, "hand-1")
    assert list(p.means.index) == ["A", "B", ALL]
    assert p.means.loc["A", "net_revenue"] == pytest.approx(200.0)
    assert p.means.loc[ALL, "net_revenue"] == pytest.approx(130.0)
    assert p.index.loc["A", "net_revenue"] == pytest.approx(100 * 200 / 130)
    assert p.index.loc["B", "net_revenue"] == pytest.approx(100 * 25 / 130)
    assert p.index.loc[ALL, "orders_count"] == pytest.approx(100.0)
    # orders 2, 4, 3 | 1, 0: medians 3 and 0.5, base median of 0..4 is 2
    assert p.medians.loc["A", "orders_count"] == pytest.approx(3.0)
    assert p.medians.loc["B", "orders_count"] == pytest.approx(0.5)
    assert p.medians.loc[ALL, "orders_count"] == pytest.approx(2.0)
    # recency: missing for c5; base mean (10 + 20 + 30 + 100) / 4 = 40, exact median of 10, 20, 30, 100 = 25
    assert p.means.loc["B", "recency_days"] == pytest.approx(100.0)
    assert p.means.loc[ALL, "recency_days"] == pytest.approx(40.0)
    assert p.medians.loc[ALL, "recency_days"] == pytest.approx(25.0)
    # booleans: mean = share of true among known values (A: 2 of 3, base: 2 of 4)
    assert p.means.loc["A", "loyalty_member"] == pytest.approx(2 / 3)
    assert p.index.loc["A", "loyalty_member"] == pytest.approx(100 * (2 / 3) / 0.5)


def test_category_and_product_lift(hand):
    p = profile_run(hand, "hand-1")
    cats = p.categories.set_index(["segment", "category"])
    # A: books 130 of 200, toys 70; B: books 20 of 40, toys 20; base (c1..c5): books 150 of 240, toys 90
    assert cats.loc[("A", "books"), "share"] == pytest.approx(130 / 200)
    assert cats.loc[("A", "books"), "base_share"] == pytest.approx(150 / 240)
    assert cats.loc[("A", "books"), "lift"] == pytest.approx((130 / 200) / (150 / 240))
    assert cats.loc[("A", "toys"), "lift"] == pytest.approx((70 / 200) / (90 / 240))
    assert cats.loc[("B", "toys"), "lift"] == pytest.approx((20 / 40) / (90 / 240))
    assert cats.loc[("A", "books"), "rank"] == 1 and cats.loc[("A", "toys"), "buyers"] == 2
    prods = p.products[p.products.segment == "A"]
    assert prods["product_id"].tolist() == ["P3", "P2", "P1"]
    assert prods["product_name"].tolist() == ["Codex", "Kite", "Atlas"]
    assert prods.iloc[0]["lift"] == pytest.approx((100 / 200) / (100 / 240))
    # a tie in revenue is broken by product id
    assert p.products[p.products.segment == "B"]["product_id"].tolist() == ["P1", "P2"]
    assert profile_run(hand, "hand-1", top=1).categories.groupby("segment").size().tolist() == [1, 1]


def test_mix_and_behaviour(hand):
    p = profile_run(hand, "hand-1")
    mix = p.mix.set_index(["segment", "dimension", "value"])
    assert mix.loc[("A", "gender", "female"), "customers"] == 2
    assert mix.loc[("A", "gender", "female"), "share"] == pytest.approx(2 / 3)
    assert mix.loc[("A", "gender", "female"), "base_share"] == pytest.approx(3 / 5)
    assert mix.loc[("A", "gender", "female"), "index"] == pytest.approx(100 * (2 / 3) / (3 / 5))
    assert mix.loc[("B", "age_band", "(unknown)"), "share"] == pytest.approx(0.5)
    assert mix.loc[("A", "country", "FR"), "customers"] == 0  # every base value appears for every segment
    # pooled open rate: (0.5 * 4 + 1.0 * 2) / (4 + 2) for A (c3 was sent nothing), (0.25 * 4 + 0) / 6 for B
    assert p.behaviour.loc["A", "email_open_rate"] == pytest.approx(4 / 6)
    assert p.behaviour.loc["B", "email_open_rate"] == pytest.approx(1 / 6)
    assert p.behaviour.loc[ALL, "email_open_rate"] == pytest.approx(5 / 12)
    assert p.behaviour.loc["A", "emails_sent"] == pytest.approx(2.0)


def test_overlapping_run_counts_a_customer_in_each_segment(hand):
    p = profile_run(hand, "tags-1")
    assert not p.info.exclusive and p.info.n_customers == 4 and p.info.n_memberships == 5
    seg = p.segments.set_index("segment")
    assert seg.loc["email_fan", "customers"] == 3 and seg.loc["vip", "customers"] == 2
    assert seg["share"].sum() == pytest.approx(5 / 4)  # shares of the base add up to more than 1
    assert p.revenue == pytest.approx(600.0)  # c1, c2, c3, c5 once each
    assert seg.loc["vip", "revenue_share"] == pytest.approx(400 / 600)
    assert p.means.loc[ALL, "net_revenue"] == pytest.approx(150.0)
    assert any("overlapping" in n for n in p.notes)


def test_profile_to_dict_is_plain_data(hand):
    import json

    d = profile_run(hand, "hand-1").to_dict()
    text = json.dumps(d)
    assert "NaN" not in text
    assert d["run"]["run_id"] == "hand-1" and d["segments"][0]["segment"] == "A"
    assert d["index"]["A"]["net_revenue"] == pytest.approx(100 * 200 / 130)


def test_profile_errors(store):
    with pytest.raises(ValueError, match="no segmentation runs"):
        profile_run(store)
    load_hand_store(store)
    record(store, "hand-1", "hand", [("c1", "A")])
    with pytest.raises(ValueError, match="no segmentation run 'nope'"):
        profile_run(store, "nope")
    with pytest.raises(ValueError, match="top=0"):
        profile_run(store, "hand-1", top=0)


def test_missing_features_and_as_of_mismatch_are_noted(store):
    load_hand_store(store)
    record_run(store, "hand", {}, dt.date(2024, 5, 1),
               pd.DataFrame({"customer_id": ["c1", "zz"], "segment": ["A", "A"]}), run_id="odd")
    p = profile_run(store, "odd")
    assert any("1 customers of the run have no row" in n for n in p.notes)
    assert any("features are as of 2024-06-01, the run as of 2024-05-01" in n for n in p.notes)
    assert p.means.loc["A", "net_revenue"] == pytest.approx(100.0)  # the mean of the known value


def test_migration_matrix_and_growth(hand):
    cmp = compare_runs(hand, "hand-1", "hand-2")
    assert list(cmp.counts.index) == ["A", "B", NOT_IN_RUN]
    assert list(cmp.counts.columns) == ["A", "B", "C", NOT_IN_RUN]
    expected = pd.DataFrame([[1, 2, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]],
                            index=cmp.counts.index, columns=cmp.counts.columns)
    assert (cmp.counts == expected).all().all()
    assert cmp.shares.loc["A", "B"] == pytest.approx(2 / 3)
    assert cmp.shares.loc["B", NOT_IN_RUN] == pytest.approx(1 / 2)
    assert cmp.shares.loc[NOT_IN_RUN, "A"] == pytest.approx(1.0)
    assert cmp.customers_in_both == 4 and cmp.same_segment == 1 and cmp.same_segment_share == pytest.approx(0.25)
    g = cmp.growth.set_index("segment")
    assert g.loc["A", "customers_a"] == 3 and g.loc["A", "customers_b"] == 2
    assert g.loc["A", "change"] == -1 and g.loc["A", "growth"] == pytest.approx(-1 / 3)
    assert g.loc["B", "growth"] == pytest.approx(0.0)
    assert g.loc["C", "customers_a"] == 0 and np.isnan(g.loc["C", "growth"])
    long = cmp.long()
    assert len(long) == 5 and long["customers"].sum() == 6
    assert compare_runs(hand, "hand-1", "hand-1").same_segment_share == pytest.approx(1.0)


def test_migration_into_an_overlapping_run(hand):
    cmp = compare_runs(hand, "hand-1", "tags-1")
    # c1 (A) is vip and email_fan; c2 (A) vip; c3 (A) email_fan; c4 (B) not tagged; c5 (B) email_fan
    assert cmp.counts.loc["A", "vip"] == 2 and cmp.counts.loc["A", "email_fan"] == 2
    assert cmp.shares.loc["A"].sum() == pytest.approx(4 / 3)  # a customer counts in each tag
    assert cmp.counts.loc["B", NOT_IN_RUN] == 1 and cmp.same_segment is None


def test_segment_growth_by_hand():
    before = pd.DataFrame({"segment": ["x", "y"], "customers": [10, 4]})
    after = pd.DataFrame({"segment": ["x", "z"], "customers": [15, 2]})
    g = segment_growth(before, after).set_index("segment")
    assert g.loc["x", "change"] == 5 and g.loc["x", "growth"] == pytest.approx(0.5)
    assert g.loc["y", "customers_after"] == 0 and g.loc["y", "growth"] == pytest.approx(-1.0)
    assert g.loc["z", "customers_before"] == 0 and np.isnan(g.loc["z", "growth"])
