"""Cluster analysis on synthetic data with known structure: k selection, methods, assignment in
the engine equal to numpy, preprocessing round trip, names, rules, stability, errors."""

from __future__ import annotations

import json

import ibis
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from custseg.segmenters.cluster import ClusterSegmenter, choose_k, fit_preprocessing
from custseg.segmenters.cluster.assign import assign_table
from custseg.segmenters.cluster.explain import explain
from custseg.segmenters.cluster.methods import fit_method, kprototypes
from custseg.segmenters.cluster.naming import cluster_words, name_clusters
from custseg.segmenters.cluster.sample import sample_frame
from custseg.segmenters.cluster.segmenter import fitted_from_parameters


@pytest.fixture
def con():
    backend = ibis.duckdb.connect()
    yield backend
    backend.disconnect()


def _table(con, frame: pd.DataFrame, name: str = "f"):
    return con.create_table(name, frame, overwrite=True)


def _blobs(n=2000, centers=4, seed=0, dim=3):
    x, y = make_blobs(n_samples=n, centers=centers, n_features=dim, cluster_std=1.0, center_box=(-20, 20),
                      random_state=seed)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(dim)])
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(n)])
    return frame, y


# -- choosing k on data with known structure ---------------------------------------------------

@pytest.mark.parametrize("method", ["kmeans", "gmm", "agglomerative"])
def test_k_selection_finds_the_four_blobs(con, method):
    frame, y = _blobs()
    seg = ClusterSegmenter(method=method, features=["x0", "x1", "x2"], n_refits=2).fit(_table(con, frame), con)
    assert seg.k_ == 4, seg.k_scores_
    assert list(seg.k_scores_.k) == list(range(2, 11))
    assert seg.k_reason_.startswith("k=4: lowest mean rank")
    labels = seg.predict(frame)
    assert adjusted_rand_score(y, labels) > 0.99
    assert seg.stability_["ari_min"] > 0.99
    if method == "gmm":
        assert "bic" in seg.k_scores_.columns and seg.k_scores_.set_index("k").bic.idxmin() == 4


def test_hdbscan_finds_the_blobs_itself(con):
    frame, y = _blobs(n=1500, centers=3, seed=2)
    seg = ClusterSegmenter(method="hdbscan", features=["x0", "x1", "x2"], n_refits=1).fit(_table(con, frame), con)
    assert seg.k_ == 3
    assert "found by HDBSCAN" in seg.k_reason_
    assert adjusted_rand_score(y, seg.predict(frame)) > 0.98


def test_kprototypes_recovers_mixed_groups(con):
    rng = np.random.default_rng(4)
    n = 1800
    group = rng.integers(0, 3, n)
    x = rng.normal(0, 1, n) + group * 0.8  # numeric part alone overlaps
    levels = np.array([["red", "green", "blue"][g] for g in group])
    noisy = rng.random(n) < 0.05
    levels[noisy] = rng.choice(["red", "green", "blue"], noisy.sum())
    frame = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)], "spend": x, "colour": levels})
    seg = ClusterSegmenter(method="kprototypes", features=["spend", "colour"], k_range=(2, 6), n_refits=2,
                           categorical_weight=4.0).fit(_table(con, frame), con)
    assert seg.k_ == 3
    assert adjusted_rand_score(group, seg.predict(frame)) > 0.8
    assert seg.fit_.modes is not None and sorted(seg.fit_.modes[:, 0].tolist()) == [0, 1, 2]


def test_kprototypes_function_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    c = rng.integers(0, 3, (300, 1))
    a = kprototypes(x, c, 3, seed=5)
    b = kprototypes(x, c, 3, seed=5)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_choose_k_rule_and_ties():
    table = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.5, 0.6, 0.4],
                          "calinski_harabasz": [10.0, 9.0, 11.0], "davies_bouldin": [0.9, 0.5, 0.7]})
    table["mean_rank"] = [(2 + 2 + 3) / 3, (1 + 3 + 1) / 3, (3 + 1 + 2) / 3]
    k, reason = choose_k(table)
    assert k == 3 and "silhouette rank 1" in reason and "Davies-Bouldin rank 1" in reason
    tied = table.assign(mean_rank=[2.0, 2.0, 2.0])
    assert choose_k(tied)[0] == 3  # the higher silhouette wins a tie


# -- assignment in the engine equals numpy --------------------------------------------------------

@pytest.mark.parametrize("method,extra", [
    ("kmeans", {}), ("gmm", {}), ("gmm", {"covariance_type": "diag"}), ("agglomerative", {}),
    ("hdbscan", {}), ("kprototypes", {}), ("kmeans", {"pca": 2}),
])
def test_engine_assignment_equals_numpy(con, method, extra):
    frame, _ = _blobs(n=900, centers=3, seed=1)
    frame["tier"] = np.where(frame.x0 > 0, "premium", np.where(frame.x1 > 0, "mid", None))
    frame.loc[::7, "x2"] = np.nan  # a median fill with an indicator
    t = _table(con, frame)
    features = ["x0", "x1", "x2", "tier"]
    kwargs = {} if method == "hdbscan" else {"k": 3}
    seg = ClusterSegmenter(method=method, features=features, n_refits=0, **kwargs, **extra).fit(t, con)
    engine = con.execute(seg.assign(t)).sort_values("customer_id")
    np.testing.assert_array_equal(engine.cluster.to_numpy(), seg.predict(frame))
    assert engine.segment.tolist() == [seg.labels_names_[c] for c in engine.cluster]


def test_recorded_parameters_assign_without_refitting(con):
    frame, _ = _blobs(n=600, centers=3, seed=3)
    t = _table(con, frame)
    seg = ClusterSegmenter(k=3, features=["x0", "x1", "x2"], n_refits=0).fit(t, con)
    params = json.loads(json.dumps(seg.parameters()))  # what a run stores
    prep, fit, names = fitted_from_parameters(params)
    again = con.execute(assign_table(prep, fit, t, names)).sort_values("customer_id")
    first = con.execute(seg.assign(t)).sort_values("customer_id")
    assert again.cluster.tolist() == first.cluster.tolist() and names == seg.labels_names_
    assert params["k_selection"]["reason"] == "k=3: given"
    assert params["preprocessing"]["numeric"][0]["name"] == "x0"


# -- preprocessing ------------------------------------------------------------------------------

def _mixed_frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "orders_count": rng.poisson(2, n).astype("int64"),
        "net_revenue": rng.lognormal(4, 1.2, n),
        "recency_days": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(1, 700, n)), dtype="Int64"),
        "aov": np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(3.5, 0.7, n)),
        "discount_rate": np.where(rng.random(n) < 0.8, 0.0, rng.random(n) * 0.3),
        "score": np.where(rng.random(n) < 0.1, np.nan, rng.normal(5, 2, n)),
        "loyalty_member": rng.random(n) < 0.3,
        "country": rng.choice(["DE", "FR", "GB", "NL", None], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
    })
    return f


@pytest.mark.parametrize("encoding,pca", [("onehot", None), ("codes", None), ("onehot", 3), ("onehot", 0.8)])
def test_ibis_preprocessing_equals_numpy(con, encoding, pca):
    frame = _mixed_frame()
    numeric = ["orders_count", "net_revenue", "recency_days", "aov", "discount_rate", "score", "loyalty_member"]
    prep = fit_preprocessing(frame, numeric, ["country"], encoding=encoding, pca=pca, max_levels=3)
    matrix, codes = prep.transform(frame)
    t = _table(con, frame)
    cols, code_exprs = prep.to_ibis(t)
    out = con.execute(t.select("customer_id", **{f"c{i}": c for i, c in enumerate(cols)},
                               **{f"k{j}": c for j, c in enumerate(code_exprs)}).order_by("customer_id"))
    np.testing.assert_allclose(out[[f"c{i}" for i in range(len(cols))]].to_numpy(), matrix, rtol=1e-12, atol=1e-12)
    assert matrix.shape[1] == len(prep.columns)
    if encoding == "codes":
        np.testing.assert_array_equal(out[[f"k{j}" for j in range(len(code_exprs))]].to_numpy(), codes)


def test_fill_rules_log_and_scaling():
    frame = _mixed_frame()
    prep = fit_preprocessing(frame, ["orders_count", "net_revenue", "recency_days", "aov", "discount_rate", "score"])
    steps = {s.name: s for s in prep.numeric}
    assert steps["recency_days"].fill_rule == "max"
    assert steps["recency_days"].fill == float(frame.recency_days.max())
    # aov of a customer without orders is undefined: the median of the others, no indicator.
    assert steps["aov"].fill_rule == "center" and not steps["aov"].indicator
    assert steps["aov"].fill == pytest.approx(float(frame.aov.median()))
    assert steps["net_revenue"].fill_rule == "zero"
    assert steps["score"].fill_rule == "median" and steps["score"].indicator  # unknown column: median + indicator
    assert steps["score"].fill == pytest.approx(float(frame.score.median()))
    assert "z_score_missing" in prep.columns
    assert steps["net_revenue"].log1p  # skewed money
    assert not steps["discount_rate"].log1p  # a rate in [0, 1] stays linear
    # discount_rate: 80% are 0, so its IQR is 0 -> scaled by the standard deviation.
    assert steps["discount_rate"].center == 0.0
    assert steps["discount_rate"].scale == pytest.approx(float(frame.discount_rate.std(ddof=0)))
    none = fit_preprocessing(frame, ["net_revenue"], log_transform="none")
    assert not none.numeric[0].log1p
    with pytest.raises(ValueError, match="not numeric features"):
        fit_preprocessing(frame, ["net_revenue"], log_transform=["aov"])


def test_clipping_bounds_extreme_customers():
    frame = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"], "x": [1.0, 2.0, 3.0, 4.0, 1e6]})
    prep = fit_preprocessing(frame, ["x"], log_transform="none", clip=5.0)
    assert prep.transform(frame)[0].max() == 5.0


# -- sample ---------------------------------------------------------------------------------------

def test_sample_is_seeded_and_sized(con):
    frame, _ = _blobs(n=5000, centers=2)
    t = _table(con, frame)
    a, n = sample_frame(t, con, ["x0"], 1000, seed=7)
    b, _ = sample_frame(t, con, ["x0"], 1000, seed=7)
    c, _ = sample_frame(t, con, ["x0"], 1000, seed=8)
    assert n == 5000 and 850 <= len(a) <= 1150
    assert a.customer_id.tolist() == b.customer_id.tolist() == sorted(a.customer_id)
    assert len(set(a.customer_id) & set(c.customer_id)) < 0.5 * len(a)
    everything, _ = sample_frame(t, con, ["x0"], 10_000, seed=7)
    assert len(everything) == 5000


# -- names ----------------------------------------------------------------------------------------

def _profile(effects: dict[int, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"cluster": c, "feature": f, "effect": e} for c, fe in effects.items() for f, e in fe.items()])


def test_names_come_from_the_strongest_differences():
    prof = _profile({
        0: {"net_revenue": 1.5, "orders_count": 1.1, "recency_days": -0.9, "discount_rate": 0.1},
        1: {"net_revenue": -0.2, "orders_count": -0.7, "recency_days": 0.1, "discount_rate": 1.8},
        2: {"net_revenue": -1.5, "orders_count": -1.5, "recency_days": 1.5, "discount_rate": -0.5, },
        3: {"net_revenue": 0.1, "orders_count": 0.0, "recency_days": 0.2, "discount_rate": 0.0},
    })
    words = cluster_words(prof, no_orders_share=[0.0, 0.0, 1.0, 0.0])
    names = name_clusters(words)
    assert names == ["High spend · frequent · recent", "Discount-driven · occasional", "No orders", "Typical"]


def test_names_are_unique_and_deterministic():
    words = [["premium", "recent", "email engaged"], ["premium", "recent", "browsers"], ["premium", "recent"],
             ["premium", "recent"]]
    names = name_clusters(words, max_words=2)
    assert names == ["Premium · recent · email engaged", "Premium · recent · browsers", "Premium · recent (1)",
                     "Premium · recent (2)"]
    assert name_clusters(words, max_words=2) == names


def test_fitted_names_are_deterministic(con):
    frame = _mixed_frame(n=600, seed=5)
    t = _table(con, frame)
    feats = ["orders_count", "net_revenue", "recency_days", "aov", "discount_rate"]
    a = ClusterSegmenter(k=4, features=feats, n_refits=0).fit(t, con)
    b = ClusterSegmenter(k=4, features=feats, n_refits=0).fit(t, con)
    assert a.labels_names_ == b.labels_names_
    assert len(set(a.labels_names_)) == 4
    np.testing.assert_array_equal(a.centers_, b.centers_)


# -- rules ------------------------------------------------------------------------------------------

def test_rules_reproduce_axis_aligned_clusters():
    rng = np.random.default_rng(0)
    n = 1200
    orders = rng.integers(0, 12, n)
    aov = np.where(rng.random(n) < 0.5, rng.uniform(10, 50, n), rng.uniform(150, 300, n))
    recency = np.where(orders == 0, np.nan, rng.integers(1, 600, n).astype(float))
    frame = pd.DataFrame({"orders_count": orders, "aov": np.where(orders == 0, np.nan, aov),
                          "recency_days": recency})
    labels = np.where(orders == 0, 0, np.where(aov > 100, 1, 2))
    prep = fit_preprocessing(frame, ["orders_count", "aov", "recency_days"])
    exp = explain(frame, prep, labels, ["Browsers", "Big baskets", "Small baskets"], depth=3)
    assert exp.fidelity == 1.0
    texts = {r.name: r.text for r in exp.rules}
    assert "is null" in texts["Browsers"]  # browsers are the customers without orders, aov or recency
    assert "aov >" in texts["Big baskets"] and "is null" not in texts["Big baskets"]
    doc = exp.segment_set("Clusters")
    assert doc["mode"] == "exclusive" and [s["name"] for s in doc["segments"]] == list(texts)
    assert "mode: exclusive" in exp.yaml("Clusters")


def test_rule_text_says_when_missing_values_match():
    frame = pd.DataFrame({"recency_days": [5.0, 10.0, 400.0, 500.0, np.nan, np.nan] * 20})
    labels = np.array([0, 0, 1, 1, 1, 1] * 20)
    prep = fit_preprocessing(frame, ["recency_days"])  # missing -> max (500)
    exp = explain(frame, prep, labels, ["Recent", "Lapsed"], depth=1)
    texts = {r.name: r.text for r in exp.rules}
    assert texts["Recent"] == "recency_days <= 205"
    assert texts["Lapsed"] == "(recency_days >= 206 or recency_days is null)"
    assert exp.fidelity == 1.0


# -- errors -------------------------------------------------------------------------------------------

def test_unfitted_segmenter_refuses(con):
    seg = ClusterSegmenter()
    frame, _ = _blobs(n=50)
    for call in (lambda: seg.assign(_table(con, frame)), lambda: seg.predict(frame), seg.summary, seg.parameters):
        with pytest.raises(RuntimeError, match="not fitted yet"):
            call()


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "dbscan"}, "method='dbscan' must be one of"),
    ({"method": "hdbscan", "k": 3}, "hdbscan finds its own number of clusters"),
    ({"k": 1}, "k=1 must be an integer >= 2"),
    ({"k_range": (5, 3)}, "must be .low, high. with 2 <= low <= high"),
    ({"features": ["x0", "nope"]}, "features missing from the feature table: nope"),
    ({"features": ["x0", "x0"]}, "features named twice: x0"),
    ({"features": ["x0", "day"]}, "feature day is of type timestamp"),
    ({"method": "kprototypes", "features": ["x0"]}, "kprototypes needs at least one categorical"),
    ({"sample_size": 2}, "sample_size=2 must be an integer >= 3"),
    ({"features": ["x0"], "k": 60}, "n_samples=50 should be >= n_clusters=60"),
])
def test_bad_parameters_are_reported(con, kwargs, message):
    frame, _ = _blobs(n=50)
    frame["day"] = pd.Timestamp("2024-01-01")
    with pytest.raises(ValueError, match=message):
        ClusterSegmenter(**{"features": ["x0", "x1"], **kwargs}).fit(_table(con, frame), con)


def test_init_only_stores_parameters():
    seg = ClusterSegmenter(method="nonsense", k=-3, features="a,b")
    assert seg.get_params()["method"] == "nonsense" and seg.k == -3 and seg.features == "a,b"


def test_fit_method_gmm_keeps_what_predict_needs():
    x, _ = make_blobs(300, centers=2, random_state=0)
    fit = fit_method("gmm", x, None, 2, 0)
    assert fit.precisions_cholesky.shape == (2, 2, 2) and fit.weights.sum() == pytest.approx(1.0)


def test_an_integer_bound_that_pins_one_value_is_a_number_not_text():
    """A tree path `orders_count > 0.5 and <= 1.5` becomes `orders_count = 1`, a number."""
    from custseg.segmenters.cluster.explain import Condition
    from custseg.segmenters.rules import parse_rule

    assert Condition("orders_count", "=", 1.0).text() == "orders_count = 1"
    assert Condition("country", "=", "DE").text() == "country = 'DE'"
    assert Condition("country", "!=", "O'Neil", or_null=True).text() == "(country != 'O''Neil' or country is null)"
    parse_rule("orders_count = 1", {"orders_count": "int64"})
