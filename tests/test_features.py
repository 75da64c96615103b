"""Customer features against hand computation and the published CDNOW summary."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from custseg.features import build_features
from handmade import load_cdnow_sample, load_handmade
from conftest import TEST_DATA

AS_OF = "2024-03-10"


@pytest.fixture
def features(store):
    load_handmade(store)
    f = store.to_pandas(build_features(store, AS_OF))
    return f.set_index("customer_id")


def test_one_row_per_customer_guests_excluded(features):
    assert sorted(features.index) == ["A", "B", "C", "D"]


def test_order_features_of_customer_a(features):
    a = features.loc["A"]
    assert a.orders_count == 3 and a.orders_all == 4
    assert a.first_order_date == pd.Timestamp("2024-01-10")
    assert a.last_order_date == pd.Timestamp("2024-03-01")
    assert a.recency_days == 9
    assert a.tenure_days == 60
    assert a.net_revenue == pytest.approx(300.0)  # the returned order nets out
    assert a.aov == pytest.approx(100.0)
    assert a.avg_days_between_orders == pytest.approx(25.5)
    assert a.discounted_order_share == pytest.approx(1 / 3)
    assert a.discount_rate == pytest.approx(5 / 305)
    assert a.return_rate == pytest.approx(0.25) and a.cancel_rate == 0


def test_item_and_category_features(features):
    a = features.loc["A"]
    assert a.items_per_order == pytest.approx(7 / 3)
    assert a.distinct_categories == 2 and a.distinct_products == 3
    assert a.top_category == "books"  # 'Books' and 'books' are one category
    assert a.cat_share_books == pytest.approx(250 / 305)
    assert a.cat_share_toys == pytest.approx(55 / 305)
    assert a.premium_share == pytest.approx(200 / 305)
    assert features.loc["B"].top_category == "toys"


def test_clv_sufficient_statistics(features):
    a, b = features.loc["A"], features.loc["B"]
    # Two orders on 2024-01-10 are one purchase day.
    assert a.clv_x == 1 and a.clv_t_x_days == 51 and a.clv_T_days == 59
    assert a.clv_mean_repeat_value == pytest.approx(230.0)
    assert b.clv_x == 0 and b.clv_t_x_days == 0 and b.clv_T_days == 23
    assert math.isnan(b.clv_mean_repeat_value)


def test_cancelled_order_and_email_resolution(features):
    b, c = features.loc["B"], features.loc["C"]
    assert b.orders_count == 1 and b.net_revenue == 100 and b.cancel_rate == 0.5
    assert b.recency_days == 24
    # C's order carries only an email (different case): joined by normalised email.
    assert c.orders_count == 1 and c.net_revenue == 30 and c.recency_days == 2


def test_email_features(features):
    a, b = features.loc["A"], features.loc["B"]
    assert a.emails_sent == 2
    assert a.email_open_rate == pytest.approx(0.5) and a.email_click_rate == pytest.approx(0.5)
    assert a.last_email_engagement == pd.Timestamp("2024-01-03")
    assert bool(b.email_unsubscribed) is True and b.email_open_rate == 0


def test_browsing_attached_through_anonymous_id(features):
    a = features.loc["A"]
    assert a.sessions_30d == 2 and a.sessions_90d == 2
    assert a.product_views_30d == 2
    assert a.cart_adds == 2 and a.cart_adds_90d == 1
    assert a.cart_sessions == 2 and a.cart_abandonment_rate == 1.0
    assert a.last_visit == pd.Timestamp("2024-03-05 00:10")


def test_demographics_and_survey(features):
    a, b, c, d = (features.loc[k] for k in "ABCD")
    assert (a.age, a.age_band, a.gender, a.country) == (33, "25-34", "female", "GB")
    assert (b.age, b.age_band, b.gender, b.country) == (54, "45-54", "male", "DE")
    assert (c.age, c.age_band, c.gender, c.country) == (40, "35-44", "other", "FR")
    assert d.country == "ATLANTIS" and d.orders_count == 0 and pd.isna(d.recency_days)
    assert a.nps == 9 and a.satisfaction == 5 and a.stated_interests == "books,toys"


def test_as_of_excludes_later_events(store):
    load_handmade(store)
    f = store.to_pandas(build_features(store, "2024-02-01")).set_index("customer_id")
    assert f.loc["A"].orders_count == 2 and f.loc["A"].recency_days == 22
    assert f.loc["C"].orders_count == 0  # C's order is on 2024-03-08
    early = store.to_pandas(build_features(store, "2023-12-01")).set_index("customer_id")
    assert "D" not in early.index  # signed up 2024-01-01, after the as-of date


def test_default_as_of_is_day_after_last_order(store):
    load_handmade(store)
    f = store.to_pandas(build_features(store))
    assert f.as_of.iloc[0] == pd.Timestamp("2024-03-09")


def test_unknown_block_is_an_error(store):
    with pytest.raises(ValueError, match="unknown feature blocks"):
        build_features(store, AS_OF, include=("orders", "horoscope"))


def test_clv_statistics_match_published_cdnow_summary(store):
    """x, t_x, T and zbar of all 2,357 customers of Fader-Hardie-Lee's sample (weeks 1-39)."""
    if not (TEST_DATA / "CDNOW_sample.txt").exists():
        pytest.skip("tests/data/CDNOW_sample.txt missing")
    df = load_cdnow_sample(store, TEST_DATA / "CDNOW_sample.txt")
    f = store.to_pandas(build_features(store, "1997-10-01", include=("orders", "clv"))).set_index("customer_id")
    summary = pd.read_csv(TEST_DATA / "cdnow_sample_summary.csv")
    ids = list(pd.unique(df.cid))  # the summary numbers customers in file order
    summary.index = [ids[i - 1] for i in summary.ID]
    m = summary.join(f, how="left")
    assert len(m) == 2357 and m.clv_x.notna().all()
    assert (m.x == m.clv_x).all()
    assert (m.t_x - m.clv_t_x_days / 7).abs().max() < 0.006  # summary rounded to 2 decimals
    assert (m["T"] - m.clv_T_days / 7).abs().max() < 0.006
    assert (m.zbar - m.clv_mean_repeat_value.fillna(0)).abs().max() < 0.006


def test_shares_are_zero_not_null_for_what_a_buyer_never_bought(features):
    b = features.loc["B"]  # bought only toys (mid tier)
    assert b.cat_share_books == 0 and b.cat_share_toys == 1
    assert b.premium_share == 0
    d = features.loc["D"]  # no order lines at all: unknown
    assert pd.isna(d.premium_share) and pd.isna(d.cat_share_books)
