"""Evaluation of runs: attractiveness by hand, weights, separation, stability and growth."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from custseg.profiles import (
    attractiveness,
    evaluate_run,
    feature_sample,
    parse_weights,
    profile_run,
    stability_from_parameters,
)
from custseg.segmenters.runs import record_run
from test_profiles import load_hand_store, record


def pop_z(values):
    x = np.asarray(values, dtype=float)
    return (x - x.mean()) / x.std(ddof=0)


def test_attractiveness_by_hand_without_growth():
    seg = pd.DataFrame({"segment": ["a", "b", "c"], "customers": [10, 20, 30],
                        "revenue_per_customer": [30.0, 10.0, 20.0], "growth": np.nan})
    ranked, used = attractiveness(seg, "size=0.3,value=0.5,growth=0.2")
    # growth is not available: size and value renormalised to 0.3/0.8 and 0.5/0.8
    assert used == pytest.approx({"size": 0.375, "value": 0.625, "growth": 0.0})
    z = math.sqrt(1.5)  # z-scores of 10, 20, 30 (population sd) are -1.2247, 0, 1.2247
    by = ranked.set_index("segment")
    assert by.loc["a", "size_z"] == pytest.approx(-z)
    assert by.loc["a", "value_z"] == pytest.approx(z)
    assert by.loc["a", "score"] == pytest.approx(0.375 * -z + 0.625 * z)
    assert by.loc["b", "score"] == pytest.approx(0.625 * -z)
    assert by.loc["c", "score"] == pytest.approx(0.375 * z)
    assert ranked["segment"].tolist() == ["c", "a", "b"] and ranked["rank"].tolist() == [1, 2, 3]


def test_attractiveness_ties_share_a_rank_and_constant_terms_score_zero():
    seg = pd.DataFrame({"segment": ["a", "b", "c"], "customers": [5, 5, 1],
                        "revenue_per_customer": [7.0, 7.0, 7.0]})
    ranked, _ = attractiveness(seg, {"size": 1})
    assert ranked["rank"].tolist() == [1, 1, 3]
    assert (ranked["value_z"] == 0).all()


@pytest.mark.parametrize("spec, expected", [
    (None, {"size": 0.3, "value": 0.5, "growth": 0.2}),
    ("value=1", {"size": 0.0, "value": 1.0, "growth": 0.0}),
    (" size = 2 , growth=1 ", {"size": 2.0, "value": 0.0, "growth": 1.0}),
    ({"value": 0.4, "growth": 0.6}, {"size": 0.0, "value": 0.4, "growth": 0.6}),
])
def test_parse_weights(spec, expected):
    assert parse_weights(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("size=0.3,worth=1", "unknown weight 'worth'"),
    ("size", "must look like term=number"),
    ("size=abc", "is not a number"),
    ("size=-1", "non-negative"),
    ("size=0", "add up to 0"),
    ("missing.yaml", "does not exist"),
])
def test_parse_weights_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_weights(spec)


def test_parse_weights_from_yaml(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("size: 1\nvalue: 3\n")
    assert parse_weights(str(path)) == {"size": 1.0, "value": 3.0, "growth": 0.0}


def test_growth_since_the_previous_run_and_ranking(store):
    load_hand_store(store)
    record(store, "hand-1", "hand", [("c1", "A"), ("c2", "A"), ("c3", "A"), ("c4", "B"), ("c5", "B")])
    record(store, "other", "rules", [("c1", "A")])  # another method: never the previous run
    record(store, "hand-2", "hand", [("c1", "A"), ("c6", "A"), ("c2", "B"), ("c3", "B"), ("c4", "C")])
    first = evaluate_run(store, "hand-1")
    assert first.previous_run_id is None and first.segments["growth"].isna().all()

    ev = evaluate_run(store, "hand-2", weights="size=0.3,value=0.5,growth=0.2")
    assert ev.previous_run_id == "hand-1"
    by = ev.segments.set_index("segment")
    assert by.loc["A", "customers_before"] == 3 and by.loc["A", "change"] == -1
    assert by.loc["A", "growth"] == pytest.approx(-1 / 3) and np.isnan(by.loc["C", "growth"])
    # revenue per customer: A (c1, c6) 125, B (c2, c3) 250, C (c4) 50
    assert by["revenue_per_customer"].to_dict() == pytest.approx({"A": 125.0, "B": 250.0, "C": 50.0})
    size_z, value_z = pop_z([2, 2, 1]), pop_z([125, 250, 50])
    growth_z = [-1.0, 1.0, 0.0]  # z of -1/3 and 0; the new segment C counts as average
    expected = {s: 0.3 * size_z[i] + 0.5 * value_z[i] + 0.2 * growth_z[i] for i, s in enumerate("ABC")}
    assert by["score"].to_dict() == pytest.approx(expected)
    assert ev.segments["segment"].tolist() == ["B", "A", "C"]
    assert evaluate_run(store, "hand-2", weights="size=1").segments["rank"].tolist() == [1, 1, 3]


def _blobs(store, n_per: int = 60, seed: int = 1):
    rng = np.random.default_rng(seed)
    centres = {"north": (0.0, 10.0), "east": (10.0, 0.0), "south": (0.0, -10.0)}
    rows, labels = [], []
    for name, (x, y) in centres.items():
        for i in range(n_per):
            cid = f"{name}{i:03d}"
            rows.append((cid, x + rng.normal(), y + rng.normal(), rng.normal()))
            labels.append((cid, name))
    store.replace("customer_features", pd.DataFrame(rows, columns=["customer_id", "x1", "x2", "noise"])
                  .assign(as_of=dt.date(2024, 6, 1)))
    return pd.DataFrame(labels, columns=["customer_id", "segment"])


def test_separation_of_separable_segments_and_recorded_stability(store):
    labels = _blobs(store)
    params = {"features": ["x1", "x2"], "k": 3, "stability": {"ari": 0.91, "resamples": 20}}
    record_run(store, "cluster:kmeans", params, dt.date(2024, 6, 1), labels, run_id="km")
    ev = evaluate_run(store, "km")
    assert ev.separation > 0.5
    assert "2 standardised features (the features the run records)" in ev.separation_note
    assert ev.stability == pytest.approx(0.91) and "['stability']['ari']" in ev.stability_note
    # shuffled labels are not separated
    shuffled = labels.assign(segment=labels["segment"].sample(frac=1, random_state=0).to_numpy())
    record_run(store, "cluster:kmeans", {}, dt.date(2024, 6, 1), shuffled, run_id="random")
    assert abs(evaluate_run(store, "random", features=["x1", "x2"]).separation) < 0.1
    # a run of another method profiles without net_revenue (revenue not available)
    p = profile_run(store, "km")
    assert np.isnan(p.revenue) and any("net_revenue" in n for n in p.notes)
    assert p.index.loc["east", "x1"] == pytest.approx(100 * p.means.loc["east", "x1"] / p.means.iloc[-1]["x1"])


def test_separation_is_skipped_for_overlapping_runs(store):
    labels = _blobs(store, n_per=10)
    tags = pd.concat([labels, labels.head(5).assign(segment="vip")])
    record_run(store, "rules", {}, dt.date(2024, 6, 1), tags, run_id="tags")
    ev = evaluate_run(store, "tags")
    assert ev.separation is None and "overlapping" in ev.separation_note
    assert ev.stability is None and "not available" in ev.stability_note


def test_sample_is_seeded_and_standardised(store):
    labels = _blobs(store, n_per=40)
    record_run(store, "cluster:kmeans", {}, dt.date(2024, 6, 1), labels, run_id="km")
    a = feature_sample(store, "km", size=50, seed=7)
    b = feature_sample(store, "km", size=50, seed=7)
    c = feature_sample(store, "km", size=50, seed=8)
    assert a.n_customers == 50 and a.frame["customer_id"].tolist() == b.frame["customer_id"].tolist()
    assert a.frame["customer_id"].tolist() != c.frame["customer_id"].tolist()
    assert a.features == ["x1", "x2", "noise"] and a.source == "every numeric feature"
    X, used = a.standardised()
    assert used == ["x1", "x2", "noise"]
    assert X.mean(axis=0) == pytest.approx([0, 0, 0], abs=1e-9) and X.std(axis=0) == pytest.approx([1, 1, 1])
    assert feature_sample(store, "km", size=10_000).n_customers == 120
    with pytest.raises(ValueError, match="unknown or non-numeric features"):
        feature_sample(store, "km", features=["nope"])


@pytest.mark.parametrize("params, expected", [
    ({"stability_ari": 0.8}, 0.8),
    ({"stability": 0.7}, 0.7),
    ({"stability": {"mean_ari": 0.6}}, 0.6),
    ({"diagnostics": {"ari": 0.5}}, 0.5),
    ({"stability": True}, None),
    ({"k": 4}, None),
    ({}, None),
])
def test_stability_from_parameters(params, expected):
    value, note = stability_from_parameters(params)
    assert value == (pytest.approx(expected) if expected is not None else None)
    assert ("not available" in note) == (expected is None)


def test_separation_needs_two_segments_and_bad_features_are_errors(store):
    labels = _blobs(store, n_per=10)
    record_run(store, "cluster:kmeans", {}, dt.date(2024, 6, 1), labels.assign(segment="all"), run_id="one")
    ev = evaluate_run(store, "one")
    assert ev.separation is None and "needs 2 <= segments (1)" in ev.separation_note
    with pytest.raises(ValueError, match="unknown or non-numeric features"):
        evaluate_run(store, "one", features=["x1", "nope"])
    record_run(store, "rules", {}, None, labels.head(0), run_id="empty")
    with pytest.raises(ValueError, match="run empty has no customers"):
        profile_run(store, "empty")
