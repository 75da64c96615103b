"""RFM scores and the segment map on hand-built customers."""

from __future__ import annotations

import pandas as pd
import pytest

from custseg.segmenters.rfm import RFMSegmenter, load_segment_map, run_rfm, segment_grid


def _features(store, recency, frequency, monetary):
    n = len(recency)
    df = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "recency_days": recency, "orders_count": frequency,
        "net_revenue": monetary, "as_of": pd.Timestamp("2024-01-01"),
    })
    store.replace("customer_features", df)
    return store.table("customer_features")


def _scores(store, seg, features):
    return store.to_pandas(seg.assign(features)).set_index("customer_id")


def test_quintile_scores_follow_rank_formula(store):
    f = _features(store, [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    seg = RFMSegmenter().fit(f, store.ibis)
    s = _scores(store, seg, f)
    assert s.r_score.tolist() == [5, 5, 4, 3, 2, 1]  # fewer days is better
    assert s.f_score.tolist() == [5, 5, 4, 3, 2, 1]
    assert s.m_score.tolist() == [1, 2, 3, 4, 5, 5]
    assert seg.thresholds_["monetary"] == [20.0, 30.0, 40.0, 50.0]
    assert seg.thresholds_["recency"] == [5.0, 4.0, 3.0, 2.0]


def test_ties_share_a_score_whatever_the_ids(store):
    f = _features(store, [10] * 6, [1, 1, 1, 2, 3, 4], [5.0] * 6)
    seg = RFMSegmenter().fit(f, store.ibis)
    s = _scores(store, seg, f)
    assert s.f_score.tolist() == [1, 1, 1, 4, 5, 5]
    assert set(s.r_score) == {1} and set(s.m_score) == {1}


def test_customers_without_orders_are_not_scored(store):
    f = _features(store, [3, None, 5], [2, 0, 1], [10.0, 0.0, 5.0])
    seg = RFMSegmenter().fit(f, store.ibis)
    assert sorted(_scores(store, seg, f).index) == ["c0", "c2"]


def test_fixed_thresholds(store):
    f = _features(store, [10, 100, 400], [1, 3, 12], [20.0, 150.0, 2000.0])
    seg = RFMSegmenter(method="fixed", thresholds={
        "recency": [365, 180, 90, 30], "frequency": [2, 3, 5, 10], "monetary": [50, 100, 500, 1000],
    }).fit(f, store.ibis)
    s = _scores(store, seg, f)
    assert s.r_score.tolist() == [5, 3, 1]
    assert s.f_score.tolist() == [1, 3, 5]
    assert s.m_score.tolist() == [1, 3, 5]


@pytest.mark.parametrize("bad", [
    {"recency": [1, 2, 3], "frequency": [1, 2, 3, 4], "monetary": [1, 2, 3, 4]},
    {"recency": [30, 90, 180, 365], "frequency": [1, 2, 3, 4], "monetary": [1, 2, 3, 4]},
    None,
])
def test_fixed_thresholds_are_validated(store, bad):
    f = _features(store, [1], [1], [1.0])
    with pytest.raises(ValueError):
        RFMSegmenter(method="fixed", thresholds=bad).fit(f, store.ibis)


def test_unfitted_segmenter_refuses_to_assign(store):
    f = _features(store, [1], [1], [1.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        RFMSegmenter().assign(f)


EXPECTED_GRID = {
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal", "Champions"],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


def test_default_map_covers_all_eleven_segments():
    grid = segment_grid(load_segment_map(None))
    for r, row in EXPECTED_GRID.items():
        assert [grid[(r, fm)] for fm in range(1, 6)] == row
    assert len(set(grid.values())) == 11


def test_hand_built_customers_land_in_their_segments(store):
    # Six customers with distinct values: c0 best on everything, c5 worst.
    f = _features(store, [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [60.0, 50.0, 40.0, 30.0, 20.0, 10.0])
    seg = RFMSegmenter().fit(f, store.ibis)
    s = _scores(store, seg, f)
    assert s.segment.tolist() == ["Champions", "Champions", "Loyal", "Need Attention", "Hibernating", "Lost"]
    # A recent one-time small buyer is a New Customer; a lapsed big spender is Can't Lose Them.
    f = _features(store, [1, 2, 3, 4, 5, 300], [1, 2, 3, 4, 5, 9], [1.0, 2.0, 3.0, 4.0, 5.0, 900.0])
    seg = RFMSegmenter().fit(f, store.ibis)
    s = _scores(store, seg, f)
    assert s.loc["c0", "segment"] == "New Customers"
    assert s.loc["c5", "segment"] == "Can't Lose Them"


def test_segment_map_override_and_validation(tmp_path, store):
    path = tmp_path / "map.yaml"
    path.write_text("- {segment: Active, r: [3, 5], fm: [1, 5]}\n- {segment: Dormant, r: [1, 2], fm: [1, 5]}\n")
    f = _features(store, [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [60.0, 50.0, 40.0, 30.0, 20.0, 10.0])
    s = _scores(store, RFMSegmenter(segment_map=str(path)).fit(f, store.ibis), f)
    assert s.segment.tolist() == ["Active"] * 4 + ["Dormant"] * 2
    path.write_text("- {segment: Active, r: [3, 5], fm: [1, 5]}\n")
    with pytest.raises(ValueError, match="does not cover R=1 FM=1"):
        load_segment_map(str(path))


def test_run_is_recorded_with_one_membership_per_buyer(store):
    f = _features(store, [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [60.0, 50.0, 40.0, 30.0, 20.0, 10.0])
    run_id = run_rfm(store, features=f)
    runs = store.to_pandas("segment_runs")
    assert runs.run_id.tolist() == [run_id] and runs.method.iloc[0] == "rfm" and runs.n_customers.iloc[0] == 6
    assert "thresholds" in runs.parameters.iloc[0]
    m = store.to_pandas("segment_memberships")
    assert len(m) == 6 and set(m.run_id) == {run_id}
    assert len(store.to_pandas("rfm_scores")) == 6
