"""Segments from predictions: value tiers, churn-risk bands and the value × risk grid.

From one run of CLV predictions (``clv_predictions``):

* **value tier** by the rank of predicted CLV: the top ``value_shares[0]``
  (default 20%) are ``High value``, the next ``value_shares[1]`` (30%)
  ``Mid value``, the rest ``Low value``; customers with equal CLV share a tier;
* **risk band** by the probability of being alive: below ``risk_bands[0]``
  (0.3) ``likely lost``, below ``risk_bands[1]`` (0.7) ``at risk``, else
  ``active``;
* the segment is ``"<tier> · <band>"``, for example ``High value · at risk``.

The run is recorded like every segmentation (``segment_runs`` with method
``value``; the thresholds, the prediction id and the segments' priority order
are in its parameters), so ``custseg profile`` and ``custseg compare`` work on
it. The priority order puts the segments where action pays most first: high
value at risk, high value likely lost, mid value at risk, ...
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIERS = ("High value", "Mid value", "Low value")
BANDS = ("active", "at risk", "likely lost")
#: Which segments to act on first: valuable customers who may be slipping away.
PRIORITY = (
    "High value · at risk", "High value · likely lost", "Mid value · at risk", "High value · active",
    "Mid value · likely lost", "Mid value · active", "Low value · at risk", "Low value · active",
    "Low value · likely lost",
)


def value_risk_segments(predictions: pd.DataFrame, *, value_shares=(0.2, 0.3), risk_bands=(0.3, 0.7)) -> pd.DataFrame:
    """``customer_id``, ``value_tier``, ``risk_band`` and ``segment`` per customer of ``predictions``."""
    top, mid = (float(v) for v in value_shares)
    lo, hi = (float(v) for v in risk_bands)
    if not (0 < top and 0 <= mid and top + mid <= 1):
        raise ValueError(f"value shares {value_shares} must be positive and sum to at most 1 (e.g. 0.2,0.3)")
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"risk bands {risk_bands} must be two probabilities in increasing order (e.g. 0.3,0.7)")
    clv = predictions["clv"].to_numpy(float)
    # Share of customers with a CLV at least as high: ties get the same tier.
    order = pd.Series(clv).rank(method="max", ascending=False).to_numpy() / len(clv)
    tier = np.where(order <= top + 1e-12, 0, np.where(order <= top + mid + 1e-12, 1, 2))
    p = predictions["p_alive"].to_numpy(float)
    band = np.where(p < lo, 2, np.where(p < hi, 1, 0))
    tiers = np.array(TIERS, dtype=object)[tier]
    bands = np.array(BANDS, dtype=object)[band]
    return pd.DataFrame({"customer_id": predictions["customer_id"].to_numpy(), "value_tier": tiers,
                         "risk_band": bands, "segment": [f"{t} · {b}" for t, b in zip(tiers, bands)]})


def run_value_segments(store, prediction_id: str | None = None, *, value_shares=(0.2, 0.3),
                       risk_bands=(0.3, 0.7)) -> str:
    """Record the value × risk segmentation of a prediction run (default: the newest); return the run id."""
    from custseg.clv.predict import load_predictions
    from custseg.segmenters.runs import record_run

    pred = load_predictions(store, prediction_id)
    seg = value_risk_segments(pred, value_shares=value_shares, risk_bands=risk_bands)
    clv = pred["clv"].to_numpy(float)
    ranked = np.sort(clv)[::-1]
    n = len(ranked)
    cut = {"high_value_min_clv": float(ranked[max(int(np.ceil(value_shares[0] * n)) - 1, 0)]),
           "mid_value_min_clv": float(ranked[max(int(np.ceil((value_shares[0] + value_shares[1]) * n)) - 1, 0)])}
    params = {
        "prediction_id": str(pred["prediction_id"].iloc[0]),
        "model_id": pred["model_id"].iloc[0],
        "spend_model_id": pred["spend_model_id"].iloc[0],
        "horizon_days": float(pred["horizon_days"].iloc[0]),
        "value_shares": [float(v) for v in value_shares],
        "risk_bands": [float(v) for v in risk_bands],
        **cut,
        "priority": [s for s in PRIORITY if s in set(seg["segment"])],
    }
    as_of = pd.to_datetime(pred["as_of"].iloc[0]).date()
    return record_run(store, "value", params, as_of, seg[["customer_id", "segment"]])


def value_summary(store, run_id: str) -> pd.DataFrame:
    """Per segment of a value run, in priority order: customers, share, CLV (sum, mean, share), mean P(alive)."""
    from custseg.segmenters.runs import run_parameters

    params = run_parameters(store, run_id)
    df = store.con.execute(
        "SELECT m.segment, count(*) AS customers, sum(p.clv) AS clv, avg(p.clv) AS mean_clv, "
        "avg(p.p_alive) AS mean_p_alive, avg(p.expected_purchases) AS mean_expected_purchases "
        "FROM segment_memberships m JOIN clv_predictions p ON p.customer_id = m.customer_id "
        "AND p.prediction_id = ? WHERE m.run_id = ? GROUP BY m.segment", [params["prediction_id"], run_id]).df()
    df["share"] = df["customers"] / df["customers"].sum()
    total = df["clv"].sum()
    df["clv_share"] = df["clv"] / total if total else np.nan
    rank = {s: i for i, s in enumerate(params["priority"])}
    df["priority"] = df["segment"].map(rank).astype(int) + 1
    df = df.sort_values("priority")
    return df[["priority", "segment", "customers", "share", "clv", "clv_share", "mean_clv", "mean_p_alive",
               "mean_expected_purchases"]].reset_index(drop=True)
