"""Churn labels by hand, the horizon check, and the churn model on the demo store and CDNOW."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from custseg import Store
from custseg.clv import churn
from custseg.clv._fit import ClvFitError
from custseg.clv.churn import ChurnModel, churn_dataset, lift_at
from custseg.datasets import load_demo, make_store

T = pd.Timestamp
SPLIT = "2024-06-01"


def load_churn_orders(store) -> None:
    """Customers around the split 2024-06-01; the last order is on 2024-07-15."""
    store.append("customers", pd.DataFrame({
        "customer_id": list("ABCDEFGH"),
        "email": [f"{c.lower()}@example.com" for c in "ABCDEFGH"],
    }))
    rows = [
        # A buys again at the first instant of the horizon.
        ("A", None, "2024-05-01 10:00", "completed", 50.0),
        ("A", None, "2024-06-01 00:00", "completed", 20.0),
        ("A", None, "2024-07-15 12:00", "completed", 20.0),  # the last order in the data
        # B's next purchase is exactly at the (exclusive) end of a 30-day horizon.
        ("B", None, "2024-05-10 09:00", "completed", 30.0),
        ("B", None, "2024-07-01 00:00", "completed", 30.0),
        # C buys again in the last minute of a 30-day horizon.
        ("C", None, "2024-05-10 09:00", "completed", 40.0),
        ("C", None, "2024-06-30 23:59", "completed", 40.0),
        # D buys the second before the split; afterwards only cancels and returns.
        ("D", None, "2024-05-31 23:59:59", "completed", 60.0),
        ("D", None, "2024-06-10 10:00", "cancelled", 60.0),
        ("D", None, "2024-06-15 10:00", "returned", 60.0),
        # E had only a cancelled order before the split: not a customer yet.
        ("E", None, "2024-05-01 10:00", "cancelled", 10.0),
        ("E", None, "2024-06-05 10:00", "completed", 10.0),
        # F first buys in the horizon.
        ("F", None, "2024-06-01 08:00", "completed", 15.0),
        # G's purchase in the horizon carries only an email (different case).
        ("G", None, "2024-04-01 10:00", "completed", 25.0),
        (None, "G@Example.com", "2024-06-20 10:00", "completed", 25.0),
        # H's only order in the horizon is a credit note (negative completed total).
        ("H", None, "2024-03-01 10:00", "completed", 80.0),
        ("H", None, "2024-06-12 10:00", "completed", -20.0),
    ]
    cid, email, when, status, total = zip(*rows)
    store.append("orders", pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(rows))], "customer_id": list(cid), "email": list(email),
        "order_time": pd.to_datetime(list(when), format="ISO8601"), "status": list(status), "total": list(total),
    }))


@pytest.fixture
def churn_store(store):
    load_churn_orders(store)
    return store


@pytest.mark.parametrize("horizon, churned", [
    (30, {"A": 0, "B": 1, "C": 0, "D": 1, "G": 0, "H": 1}),
    # Ends on 2024-07-16, the day after the last order: the longest horizon allowed.
    (45, {"A": 0, "B": 0, "C": 0, "D": 1, "G": 0, "H": 1}),
    (1, {"A": 0, "B": 1, "C": 1, "D": 1, "G": 1, "H": 1}),
])
def test_labels_by_hand(churn_store, horizon, churned):
    data = churn_dataset(churn_store, SPLIT, horizon, include=["orders"])
    assert dict(zip(data.customer_id, data.churned)) == churned  # E and F had not bought before the split


def test_features_are_as_of_the_split(churn_store):
    data = churn_dataset(churn_store, SPLIT, 30, include=["orders", "clv"]).set_index("customer_id")
    d = data.loc["D"]
    assert d.orders_count == 1 and d.recency_days == 1 and d.cancelled_orders == 0
    a = data.loc["A"]
    assert a.orders_count == 1 and a.net_revenue == 50.0 and a.clv_x == 0
    assert (data.as_of == T(SPLIT)).all()
    assert "churned" in data.columns and not {"horizon_purchases", "_later_purchases"} & set(data.columns)


def test_horizon_past_the_data_names_the_dates(churn_store):
    with pytest.raises(ValueError) as err:
        churn_dataset(churn_store, SPLIT, 46, include=["orders"])
    msg = str(err.value)
    assert "2024-07-17" in msg and "2024-07-15" in msg and "2024-07-16" in msg and "horizon_days <= 45" in msg


@pytest.mark.parametrize("horizon", [0, -5, 2.5, True])
def test_horizon_must_be_whole_days(churn_store, horizon):
    with pytest.raises(ValueError, match="horizon_days"):
        churn_dataset(churn_store, SPLIT, horizon, include=["orders"])


def test_too_few_customers(churn_store):
    with pytest.raises(ValueError, match=r"6 customers bought before 2024-06-01; .* at least 20"):
        ChurnModel(horizon_days=30, include=["orders"]).fit(churn_store, SPLIT)


def test_single_class(store):
    ids = [f"c{i:02d}" for i in range(30)]
    store.append("orders", pd.DataFrame({
        "order_id": [f"o{i}" for i in range(90)], "customer_id": ids * 3,
        "order_time": [T("2024-01-01")] * 30 + [T("2024-02-01")] * 30 + [T("2024-04-01")] * 30,
        "status": "completed", "total": 10.0,
    }))
    with pytest.raises(ValueError, match=r"of 30 customers, 0 churned and 30 bought again within 60 days"):
        ChurnModel(horizon_days=60, include=["orders"]).fit(store, "2024-01-15")


def test_unfitted_model_refuses_to_score():
    with pytest.raises(NotFittedError):
        ChurnModel().predict_proba(pd.DataFrame({"recency_days": [1.0]}))


@pytest.mark.parametrize("score, share, expected", [
    ([0.9, 0.8, 0.1, 0.2], 0.5, 2.0),  # both top scores churned; base rate 1/2
    ([0.5, 0.5, 0.5, 0.5], 0.25, 1.0),  # all tied: the top quarter churns at the base rate
    ([0.9, 0.5, 0.5, 0.1], 0.5, 1.5),  # one certain churner, then half of a tie at rate 1/2
])
def test_lift_at(score, share, expected):
    assert lift_at(np.array([1, 1, 0, 0]), np.array(score), share) == pytest.approx(expected)


# -- the demo store -------------------------------------------------------------------
DEMO_SPLIT, DEMO_HORIZON = "2024-07-01", 180
# Unpenalised, the demo's BG/NBD likelihood has no interior maximum (a, b -> infinity).
DEMO_PARAMS = {"horizon_days": DEMO_HORIZON, "seed": 0, "n_repeats": 2, "baseline_penalizer": 0.001}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("churn") / "demo.duckdb")
    load_demo(store, make_store(3000, seed=2))
    model = ChurnModel(**DEMO_PARAMS).fit(store, DEMO_SPLIT)
    yield store, model
    store.close()


def test_demo_model_beats_the_p_alive_baseline(demo):
    _, model = demo
    ev = model.evaluation_
    assert ev["n_customers"] == 2264 and ev["n_train"] == 1584 and ev["n_test"] == 680
    assert ev["churn_rate"] == pytest.approx(0.4704, abs=1e-4)
    # Measured: model AUC 0.989, lift 2.13 (the maximum, 1 / 0.47) in the top 10% and 20%.
    # BG/NBD: 1 - P(alive) AUC 0.579, lift 2.06 / 1.95 (one-time buyers get P(alive) = 1, and
    # here they all churn); expected purchases in the horizon AUC 0.806, lift 2.09 / 2.09.
    assert ev["model"]["auc"] >= 0.97
    assert ev["model"]["lift_top_10pct"] >= 2.0 and ev["model"]["lift_top_20pct"] >= 2.0
    assert ev["baseline_error"] is None
    assert ev["baseline_p_alive"]["auc"] == pytest.approx(0.579, abs=0.02)
    assert ev["model"]["auc"] >= ev["baseline_p_alive"]["auc"] + 0.3
    assert ev["model"]["auc"] >= ev["baseline_expected_purchases"]["auc"] + 0.1
    assert "recency_days" in set(model.feature_importances_.feature.head(3))


def test_baseline_that_cannot_be_fitted_is_reported(demo, monkeypatch):
    class Unfittable:
        def __init__(self, penalizer=0.0):
            pass

        def fit(self, x, t_x, T):
            raise ClvFitError("BetaGeoModel did not converge; try penalizer=0.001")

    monkeypatch.setattr(churn, "BetaGeoModel", Unfittable)
    store, _ = demo
    model = ChurnModel(horizon_days=DEMO_HORIZON, include=["orders"], n_repeats=1).fit(store, DEMO_SPLIT)
    ev = model.evaluation_
    assert ev["model"]["auc"] >= 0.97  # the churn model is fitted all the same
    assert ev["baseline_p_alive"] is None and ev["baseline_expected_purchases"] is None
    assert ev["baseline_error"] == "BG/NBD baseline not fitted: BetaGeoModel did not converge; try penalizer=0.001"


def test_demo_lapsed_customers_are_labelled_churned(demo):
    store, _ = demo
    data = churn_dataset(store, DEMO_SPLIT, DEMO_HORIZON, include=["orders"])
    personas = store.to_pandas("demo_personas")
    labelled = data.merge(personas, on="customer_id")
    by_persona = labelled.groupby("persona").churned.mean()
    assert by_persona["lapsed"] > 0.95
    assert by_persona["loyal_premium"] < 0.05
    assert "window_shopper" not in by_persona  # never bought: not in the data set


def test_demo_seeded_reproducibility(demo):
    store, model = demo
    again = ChurnModel(**DEMO_PARAMS).fit(store, DEMO_SPLIT)
    assert again.evaluation_ == model.evaluation_
    pd.testing.assert_frame_equal(again.feature_importances_, model.feature_importances_)


def test_demo_score_store_and_pickle(demo):
    store, model = demo
    scores = model.score_store(store)  # as of 2025-01-01
    assert list(scores.columns) == ["customer_id", "churn_probability"]
    assert scores.customer_id.is_unique and scores.churn_probability.between(0, 1).all()
    personas = store.to_pandas("demo_personas").set_index("customer_id").persona
    by_persona = scores.groupby(scores.customer_id.map(personas)).churn_probability.mean()
    assert by_persona["lapsed"] > 0.9 and by_persona["loyal_premium"] < 0.1
    restored = pickle.loads(pickle.dumps(model))
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.exponential(30.0, (50, model.n_features_in_)), columns=model.feature_names_in_)
    features.iloc[::7, 0] = np.nan
    np.testing.assert_array_equal(restored.predict_proba(features), model.predict_proba(features))


# -- CDNOW master: the realistic check ----------------------------------------------------
def test_cdnow_master(shared_data, tmp_path):
    from custseg.sources import ingest

    with Store(tmp_path / "cdnow.duckdb") as store:
        ingest(store, shared_data / "CDNOW_master.txt", "orders", preset="cdnow")
        model = ChurnModel(horizon_days=270, seed=0, n_repeats=1).fit(store, "1997-10-01")  # horizon to 1998-06-28
    ev = model.evaluation_
    assert ev["n_customers"] == 23_570 and ev["churn_rate"] == pytest.approx(0.7012, abs=1e-4)
    # Measured: model AUC 0.778, lift 1.27 / 1.25 (top 10% / 20%; at most 1 / 0.70 = 1.43).
    # BG/NBD: 1 - P(alive) AUC 0.315, lift 1.00 / 0.87 (one-time buyers rank safest);
    # expected purchases in the horizon AUC 0.773, lift 1.22 / 1.23.
    assert ev["baseline_error"] is None
    assert ev["model"]["auc"] >= 0.76
    assert ev["model"]["lift_top_10pct"] >= 1.2
    assert ev["baseline_p_alive"]["auc"] < 0.4  # worse than chance
    assert ev["model"]["auc"] >= ev["baseline_p_alive"]["auc"]
    assert ev["model"]["auc"] >= ev["baseline_expected_purchases"]["auc"] - 0.01
