"""A seeded sample of a run's customers with their numeric features.

Separation (silhouette), the 2-D projection and the distribution plots work
on a sample, so their cost does not grow with the store. The sample is drawn
in the engine by ordering customers on ``hash(customer_id || ':' || seed)``:
the same seed gives the same customers on every run, in every thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd

from custseg.profiles.base import (
    RunInfo,
    base_customers,
    features_table,
    memberships,
    numeric_features,
    run_info,
    with_features,
)

# The feature columns RFM scores (custseg.segmenters.rfm): recency, frequency, monetary.
RFM_FEATURES = ("recency_days", "orders_count", "net_revenue")


def run_features(info: RunInfo, known: Sequence[str]) -> tuple[list[str], str]:
    """The features a run was made from, and where that came from.

    The run's ``parameters["features"]`` when it lists known numeric features
    (clusterings record theirs), the R, F and M columns for an RFM run, else
    every numeric feature.
    """
    listed = info.parameters.get("features")
    if isinstance(listed, (list, tuple)) and listed and all(isinstance(f, str) and f in known for f in listed):
        return list(dict.fromkeys(listed)), "the features the run records"
    if info.method == "rfm" and all(f in known for f in RFM_FEATURES):
        return list(RFM_FEATURES), "the RFM features"
    return list(known), "every numeric feature"


@dataclass
class FeatureSample:
    """Sampled customers of a run with their segment(s) and raw feature values.

    Attributes
    ----------
    frame : DataFrame
        ``customer_id, segment`` and one column per feature; a customer of an
        overlapping run has one row per segment.
    features : list of str
        The features that separation and the projection use (``frame`` holds every
        numeric feature).
    source : str
        Where ``features`` came from (asked for, recorded by the run, RFM's, all).
    n_customers : int
        Distinct customers sampled.
    seed : int
        The seed the sample was drawn with.
    """

    frame: pd.DataFrame
    features: list[str]
    n_customers: int
    seed: int
    source: str = "the features asked for"

    def standardised(self) -> tuple[np.ndarray, list[str]]:
        """Z-scores of the features (mean 0, standard deviation 1 over the sampled customers).

        Constant or empty features are left out; a missing value becomes 0 (the mean).

        Returns
        -------
        X : ndarray of shape (len(frame), n_used)
        used : list of str
            The features kept, in column order.
        """
        once = self.frame.drop_duplicates("customer_id")[self.features].astype("float64")
        mean = once.mean()
        std = once.std(ddof=0)
        used = [c for c in self.features if np.isfinite(std[c]) and std[c] > 0]
        values = self.frame[used].astype("float64")
        z = (values - mean[used]) / std[used]
        return z.fillna(0.0).to_numpy(), used


def feature_sample(store, run_id: str | None = None, *, size: int = 5000, seed: int = 0,
                   features: Sequence[str] | None = None) -> FeatureSample:
    """Draw a seeded sample of ``size`` customers of a run, with their features.

    Parameters
    ----------
    store : Store
    run_id : str, default=None
        The run; default the latest.
    size : int, default=5000
        Customers to draw (all of them when the run has fewer).
    seed : int, default=0
        The same seed draws the same customers.
    features : sequence of str, default=None
        Features for separation and the projection; default those of
        :func:`run_features` (recorded by the run, RFM's, else every numeric feature).

    Returns
    -------
    FeatureSample
    """
    if int(size) < 2:
        raise ValueError(f"sample size={size} must be at least 2")
    info = run_info(store, run_id)
    table = features_table(store)
    known = numeric_features(table)
    if not known:
        raise ValueError("customer_features has no numeric features to sample")
    if features is None:
        chosen, source = run_features(info, known)
    else:
        chosen, source = list(dict.fromkeys(features)), "the features asked for"
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise ValueError(f"unknown or non-numeric features {unknown}; numeric features: {', '.join(known)}")
    base = base_customers(store, info.run_id)
    key = (base.customer_id.cast("string") + ibis.literal(f":{int(seed)}")).hash()
    picked = base.mutate(_h=key).order_by(["_h", "customer_id"]).limit(int(size)).select(_pcid="customer_id")
    m = memberships(store, info.run_id)
    rows = m.inner_join(picked, m.customer_id == picked._pcid).drop("_pcid")
    rows = with_features(rows, table, known).drop("_has_features")
    frame = store.ibis.execute(rows.order_by(["customer_id", "segment"]))
    frame[known] = frame[known].astype("float64")
    return FeatureSample(frame.reset_index(drop=True), chosen, int(frame["customer_id"].nunique()), int(seed), source)
