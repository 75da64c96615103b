"""The demo store through the pipeline: planted structure shows up in features and RFM,
and the CLV statistics agree with lifetimes."""

from __future__ import annotations

import pandas as pd
import pytest

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store
from custseg.features import build_features


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    load_demo(store, make_store(4000, seed=11))
    pipeline.build_and_store_features(store)
    run_id = pipeline.segment_rfm(store)
    yield store, run_id
    store.close()


def _with_personas(store, run_id):
    return store.con.execute(
        """SELECT p.persona, m.segment, f.* EXCLUDE (customer_id)
           FROM demo_personas p JOIN customer_features f USING (customer_id)
           LEFT JOIN segment_memberships m ON m.customer_id = p.customer_id AND m.run_id = ?""",
        [run_id]).df()


def test_planted_personas_show_in_features(demo_store):
    df = _with_personas(*demo_store)
    by = df.groupby("persona")
    assert (by.get_group("window_shopper").orders_count == 0).all()
    assert (by.get_group("window_shopper").cart_adds > 0).mean() > 0.9
    assert (by.get_group("one_time_buyer").orders_all == 1).all()  # one order (which may be cancelled)
    means = by[["aov", "discount_rate", "orders_count", "recency_days", "premium_share"]].mean()
    assert means.aov.idxmax() == "loyal_premium"
    assert means.discount_rate.idxmax() == "bargain_hunter"
    assert means.premium_share.idxmax() == "loyal_premium"
    assert means.recency_days["lapsed"] > 270


def test_planted_personas_land_in_the_expected_rfm_segments(demo_store):
    df = _with_personas(*demo_store)
    share = pd.crosstab(df.persona, df.segment, normalize="index")
    good = ["Champions", "Loyal"]
    asleep = ["At Risk", "Can't Lose Them", "Hibernating", "Lost", "About to Sleep"]
    assert share.loc["loyal_premium", good].sum() > 0.8
    assert share.loc["lapsed", [c for c in asleep if c in share.columns]].sum() > 0.8
    # Window shoppers never bought: not in the RFM run.
    assert df[df.persona == "window_shopper"].segment.isna().all()


def test_clv_statistics_equal_lifetimes_summary(demo_store):
    lifetimes_utils = pytest.importorskip("lifetimes.utils", reason="lifetimes not installed")
    store, _ = demo_store
    as_of = "2024-07-01"
    f = store.to_pandas(build_features(store, as_of, include=("orders", "clv")))
    f = f[f.orders_count > 0].set_index("customer_id")
    tx = store.con.execute(
        "SELECT customer_id, order_time, total * coalesce(rate, 1.0) AS total "  # in the base currency
        "FROM orders LEFT JOIN currency_rates USING (currency) "
        "WHERE status = 'completed' AND total >= 0 AND customer_id IS NOT NULL AND order_time < DATE '2024-07-01'"
    ).df()
    s = lifetimes_utils.summary_data_from_transaction_data(
        tx, "customer_id", "order_time", monetary_value_col="total",
        observation_period_end=pd.Timestamp(as_of) - pd.Timedelta(days=1), freq="D")
    m = s.join(f, how="inner")
    assert len(m) == len(s) == len(f)
    assert (m.frequency == m.clv_x).all()
    assert (m.recency == m.clv_t_x_days).all()
    assert (m["T"] == m.clv_T_days).all()
    repeat = m[m.frequency > 0]
    assert (repeat.monetary_value - repeat.clv_mean_repeat_value).abs().max() < 1e-6
