"""Offline evaluation on a time split: custseg against global popularity.

Everything the model sees is from before the split: the purchases, and the
segments, which are re-derived as of the split date (an RFM run computed from
features as of the split by default) so that no post-split information leaks
into the segment lift. The test customers are those who bought after the
split (within ``horizon_days`` when given).

A customer's *targets* are the distinct products they bought in the test
period, less the products the exclusion rule keeps out of every list (bought
before the split, in a category that is not a repeat-purchase category), so
both methods are judged on what they were allowed to recommend. Customers with
no target left are not counted.

* hit rate@N: share of the test customers with at least one target in their top N;
* recall@N: mean over the test customers of the share of their targets in their top N.

The baseline is global popularity: the N products bought by the most customers
before the split, with the same exclusion rule, from the same fitted model.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from custseg.features.build import as_date
from custseg.recommend.data import purchase_lines, require_order_items, run_as_of
from custseg.recommend.model import Recommender

NO_SEGMENT = "(no segment)"
POPULARITY_ONLY = {"segment": 0.0, "cooccurrence": 0.0, "popularity": 1.0}


def segments_as_of(store, as_of: dt.date, run_id: str | None = None) -> tuple[pd.DataFrame, str]:
    """``customer_id, segment`` as of ``as_of``, from data before it; and a label for them.

    Without ``run_id``: a quantile RFM run computed from features as of ``as_of``. With
    ``run_id``: its memberships when the run is as of ``as_of`` or earlier, else its
    segmentation re-derived as of ``as_of`` with the run's settings (RFM and cluster runs).
    Nothing is written to the store.
    """
    from custseg.features import build_features
    from custseg.segmenters.rfm import RFMSegmenter
    from custseg.segmenters.runs import run_parameters

    if run_id is None:
        features = build_features(store, as_of, include=("orders",))
        seg = RFMSegmenter().fit(features, store.ibis)
        return _frame(store.ibis.execute(seg.assign(features).select("customer_id", "segment"))), f"rfm as of {as_of}"
    from custseg.recommend.data import load_memberships

    params = run_parameters(store, run_id)
    run_date = run_as_of(store, run_id)
    if run_date is not None and run_date <= as_of:
        return load_memberships(store, run_id), run_id
    method = store.con.execute("SELECT method FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if method == "rfm":
        fixed = params.get("method") == "fixed"
        seg = RFMSegmenter(method=params.get("method", "quantile"),
                           thresholds=params.get("thresholds") if fixed else None,
                           segment_map=params.get("segment_map"))
        features = build_features(store, as_of, include=("orders",))
        seg.fit(features, store.ibis)
        assigned = seg.assign(features).select("customer_id", "segment")
    elif method.startswith("cluster:"):
        from custseg.segmenters.cluster import ClusterSegmenter

        settings = dict(params["settings"], n_refits=0)
        settings["k_range"] = tuple(settings["k_range"])
        seg = ClusterSegmenter(**settings)
        features = build_features(store, as_of)
        seg.fit(features, store.ibis)
        assigned = seg.assign(features).select("customer_id", "segment")
    else:
        raise ValueError(
            f"run {run_id!r} ({method}) is as of {run_date}, after the split {as_of}; only RFM and cluster runs "
            "can be re-derived as of the split (or give a run as of the split date or earlier)")
    return _frame(store.ibis.execute(assigned)), f"{run_id} re-derived as of {as_of}"


def _frame(assigned: pd.DataFrame) -> pd.DataFrame:
    out = assigned.dropna(subset=["customer_id", "segment"])[["customer_id", "segment"]].copy()
    out["customer_id"] = out["customer_id"].astype(str)
    return out.sort_values("customer_id").reset_index(drop=True)


def evaluate(store, split_date, n: int = 10, run_id: str | None = None, horizon_days: int | None = None,
             seed: int = 0, *, params: dict | None = None) -> dict:
    """Hit rate@n and recall@n of custseg and of global popularity, overall and per segment.

    Parameters
    ----------
    store : Store
    split_date : date or str
        Fit on purchases before it, test on purchases from it on.
    n : int, default=10
        Length of the recommendation lists.
    run_id : str, default=None
        Segmentation whose segments are used, re-derived as of the split; default a
        quantile RFM run as of the split.
    horizon_days : int, default=None
        Length of the test period in days; default up to the last purchase.
    seed : int, default=0
        Seed of the recommender's tie-breaking.
    params : dict, default=None
        Further :class:`Recommender` parameters (weights, shrinkage).

    Returns
    -------
    dict
        ``split``, ``test_end`` (exclusive, None: open), ``n``, ``segments`` (what the segments
        are), ``customers`` (test customers counted), ``customers_without_target`` (test
        customers who only re-bought excluded products), ``hit_rate``, ``recall``,
        ``popularity_hit_rate``, ``popularity_recall``, ``hit_rate_lift`` (relative improvement
        of the hit rate), ``summary`` (DataFrame: method, customers, hit_rate, recall) and
        ``by_segment`` (DataFrame: segment, customers, hit_rate, popularity_hit_rate, recall,
        popularity_recall).
    """
    require_order_items(store)
    split = as_date(split_date)
    if horizon_days is not None and horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days} must be >= 1")
    end = split + dt.timedelta(days=horizon_days) if horizon_days is not None else None
    memberships, label = segments_as_of(store, split, run_id)
    model = Recommender(n=n, seed=seed, **(params or {})).fit(store, as_of=split, run_id=label,
                                                                memberships=memberships)
    lines = purchase_lines(store, start=split, end=end)
    test = store.ibis.execute(lines.select("customer_id", "product_id").distinct())
    if test.empty:
        raise ValueError(f"no completed purchase on or after the split {split}; choose an earlier split date")
    test["customer_id"] = test["customer_id"].astype(str)
    test["product_id"] = test["product_id"].astype(str)
    targets, customers, dropped = _targets(model, test)
    rec_top, _, _ = model.top_products(customers)
    pop_top, _, _ = model.top_products(customers, weights=POPULARITY_ONLY)
    width = len(model.products_) + 1
    hits, pop_hits = _hits(rec_top, targets, width), _hits(pop_top, targets, width)
    n_targets = np.bincount(targets[0], minlength=len(customers))

    segment = pd.Series(model._segment_codes(customers)).map(dict(enumerate(model.segments_))).fillna(NO_SEGMENT)
    per = pd.DataFrame({
        "segment": segment.to_numpy(),
        "hit": hits > 0, "pop_hit": pop_hits > 0,
        "recall": hits / n_targets, "pop_recall": pop_hits / n_targets,
    })
    by_segment = per.groupby("segment").agg(
        customers=("hit", "size"), hit_rate=("hit", "mean"), popularity_hit_rate=("pop_hit", "mean"),
        recall=("recall", "mean"), popularity_recall=("pop_recall", "mean"),
    ).reset_index().sort_values(["customers", "segment"], ascending=[False, True]).reset_index(drop=True)
    hit_rate, pop_hit_rate = float(per["hit"].mean()), float(per["pop_hit"].mean())
    recall, pop_recall = float(per["recall"].mean()), float(per["pop_recall"].mean())
    summary = pd.DataFrame({
        "method": ["custseg", "popularity"], "customers": [len(per)] * 2,
        "hit_rate": [hit_rate, pop_hit_rate], "recall": [recall, pop_recall],
    })
    return {
        "split": split, "test_end": end, "n": n, "segments": label,
        "customers": len(per), "customers_without_target": dropped,
        "hit_rate": hit_rate, "recall": recall,
        "popularity_hit_rate": pop_hit_rate, "popularity_recall": pop_recall,
        "hit_rate_lift": hit_rate / pop_hit_rate - 1.0 if pop_hit_rate > 0 else float("nan"),
        "weights": dict(model.weights_),
        "summary": summary, "by_segment": by_segment,
    }


def _targets(model: Recommender, test: pd.DataFrame) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, int]:
    """Target pairs (customer position, product position) after the exclusion rule; customers; dropped count.

    Products first sold after the split stay targets with position -1 (no method can recommend them).
    """
    product_pos = pd.Index(model.products_["product_id"]).get_indexer(test["product_id"])
    rows = model._buyer_index.get_indexer(test["customer_id"])
    excluded = np.zeros(len(test), dtype=bool)
    known = (rows >= 0) & (product_pos >= 0)
    if known.any():
        owned = np.asarray(model._x[rows[known], product_pos[known]]).ravel() > 0
        excluded[np.flatnonzero(known)] = owned & model._excludable[product_pos[known]]
    kept = test[~excluded]
    all_customers = test["customer_id"].unique()
    customers, cust_pos = np.unique(kept["customer_id"].to_numpy(dtype=object).astype(str), return_inverse=True)
    return (cust_pos, product_pos[~excluded]), customers, int(len(all_customers) - len(customers))


def _hits(top: np.ndarray, targets: tuple[np.ndarray, np.ndarray], width: int) -> np.ndarray:
    """Targets of each customer found in their list (``width``: more than the largest product position)."""
    cust, prod = targets
    target_key = cust.astype(np.int64) * width + prod
    valid = top >= 0
    rec_key = (np.repeat(np.arange(top.shape[0]), top.shape[1]).reshape(top.shape).astype(np.int64) * width + top)[valid]
    found = np.isin(target_key, rec_key) & (prod >= 0)
    return np.bincount(cust[found], minlength=top.shape[0])
