"""CDNOW master through the whole pipeline: preset ingest, features by hand, RFM."""

from __future__ import annotations

import pandas as pd
import pytest

from custseg import pipeline
from custseg.sources import ingest


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory, request):
    from conftest import SHARED_DATA

    path = SHARED_DATA / "CDNOW_master.txt"
    if not path.exists():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present beside the team's checkout)")
    from custseg import Store

    store = Store(tmp_path_factory.mktemp("cdnow") / "cdnow.duckdb")
    result = ingest(store, path, "orders", preset="cdnow")
    pipeline.build_and_store_features(store)
    run_id = pipeline.segment_rfm(store)
    yield store, result, run_id
    store.close()


def test_every_row_accounted_for(cdnow):
    store, result, _ = cdnow
    assert result.read == 69_659
    assert result.read == result.accepted + result.rejected + result.duplicate
    assert result.accepted == 69_659  # the 255 repeat copies are kept as purchases
    assert store.con.execute("SELECT count(DISTINCT customer_id) FROM orders").fetchall()[0][0] == 23_570


def test_features_match_hand_computation(cdnow):
    store, _, _ = cdnow
    f = pipeline.features_frame(store).set_index("customer_id")
    assert len(f) == 23_570
    assert f.as_of.iloc[0] == pd.Timestamp("1998-07-01")  # day after the last purchase (1998-06-30)

    c1 = f.loc["00001"]  # one purchase: 1997-01-01, 1 CD, $11.77
    assert (c1.orders_count, c1.recency_days, c1.tenure_days) == (1, 546, 546)
    assert c1.net_revenue == pytest.approx(11.77) and c1.items_per_order == 1
    assert (c1.clv_x, c1.clv_t_x_days, c1.clv_T_days) == (0, 0, 545)

    c2 = f.loc["00002"]  # two purchases on 1997-01-12: one transaction day
    assert (c2.orders_count, c2.recency_days) == (2, 535)
    assert c2.net_revenue == pytest.approx(89.0) and c2.aov == pytest.approx(44.5)
    assert c2.items_per_order == pytest.approx(3.0) and c2.avg_days_between_orders == 0
    assert c2.clv_x == 0

    c3 = f.loc["00003"]  # six purchases from 1997-01-02 to 1998-05-28
    assert (c3.orders_count, c3.recency_days, c3.tenure_days) == (6, 34, 545)
    assert c3.net_revenue == pytest.approx(156.46)
    assert c3.items_per_order == pytest.approx(16 / 6)
    assert c3.avg_days_between_orders == pytest.approx(511 / 5)
    assert (c3.clv_x, c3.clv_t_x_days, c3.clv_T_days) == (5, 511, 544)
    assert c3.clv_mean_repeat_value == pytest.approx((20.76 + 19.54 + 57.45 + 20.96 + 16.99) / 5)

    last = f.loc["23570"]  # 1997-03-25 $51.12 and 1997-03-26 $42.96
    assert (last.orders_count, last.recency_days, last.clv_x, last.clv_t_x_days) == (2, 462, 1, 1)
    assert last.clv_mean_repeat_value == pytest.approx(42.96)


def test_rfm_run_covers_every_customer(cdnow):
    store, _, run_id = cdnow
    summary = pipeline.segment_summary(store, run_id)
    assert summary.customers.sum() == 23_570
    assert summary.share.sum() == pytest.approx(1.0) and summary.revenue_share.sum() == pytest.approx(1.0)
    seg = summary.set_index("segment")
    # CDNOW customers all joined in Q1 1997: nobody is new 18 months later, and one-time
    # buyers fill the Lost/Hibernating/About to Sleep cells.
    assert "New Customers" not in seg.index
    assert seg.loc["Champions", "avg_frequency"] > seg.loc["Loyal", "avg_frequency"] > seg.loc["Lost", "avg_frequency"]
    assert seg.loc["Lost", "avg_frequency"] == pytest.approx(1.0, abs=0.01)
