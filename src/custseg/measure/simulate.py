"""A fast simulator of randomised campaigns with a known lift, to check the analysis.

The design copies the demo store's win-back test (``CAMP-WINBACK``,
docs/demo-store.md): customers of five personas in the demo's proportions,
about 10% drawn into the control, a persona-specific chance of ordering in the
window anyway (``baseline``) and a designed absolute ``lift``. As in the demo
generator, a treated customer who would not have ordered converts because of
the campaign with probability ``q = lift / (1 - baseline)``, so that
``P(convert | treated) - P(convert | control) = lift`` exactly.

The outcomes come out as the per-customer frame :func:`analyze_frame`
reads, so a simulated campaign is measured by the same code as a stored one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from custseg.measure.campaign import analyze_frame
from custseg.profiles.base import ALL

# Measured on make_store(200_000, seed=5): the assigned customers' personas, their
# rate of ordering inside the window without the campaign (any status), window AOV,
# rate of ordering in the 90 days after the window, and email open / click rates.
# occasional_gifter is never eligible (they all ordered in the 90 days before).
DEMO_DESIGN = pd.DataFrame({
    "segment": ["loyal_premium", "bargain_hunter", "one_time_buyer", "lapsed", "window_shopper"],
    "share": [0.0047, 0.0701, 0.3515, 0.3166, 0.2571],
    "baseline": [0.48, 0.35, 0.026, 0.002, 0.0],
    "lift": [0.03, 0.09, 0.0, 0.06, 0.0],
    "aov": [380.0, 43.0, 45.0, 60.0, 50.0],
    "followup_rate": [0.90, 0.70, 0.11, 0.0, 0.0],
    "open_rate": [0.7, 0.4, 0.13, 0.2, 0.28],
    "click_rate": [0.2, 0.16, 0.02, 0.02, 0.08],
    "pre_rate": [0.0, 0.0, 0.0, 0.0, 0.0],
})
DESIGN_COLUMNS = ("segment", "share", "baseline", "lift")


@dataclass
class SimulatedCampaign:
    """One simulated campaign.

    Attributes
    ----------
    outcomes : DataFrame
        One row per customer, the columns :func:`analyze_frame` reads.
    segments : DataFrame
        ``customer_id, segment``.
    truth : DataFrame
        ``segment, lift``: the designed lift per segment and, first, overall
        (``(all customers)``: the shares' weighted mean of the lifts).
    """

    outcomes: pd.DataFrame
    segments: pd.DataFrame
    truth: pd.DataFrame


def _design(design: pd.DataFrame | None) -> pd.DataFrame:
    d = (DEMO_DESIGN if design is None else design).copy()
    missing = [c for c in DESIGN_COLUMNS if c not in d.columns]
    if missing:
        raise ValueError(f"the design lacks {missing}; it needs {list(DESIGN_COLUMNS)}")
    defaults = {"aov": 50.0, "followup_rate": 0.0, "open_rate": 0.2, "click_rate": 0.03, "pre_rate": 0.0}
    for col, value in defaults.items():
        if col not in d.columns:
            d[col] = value
    if (d["share"] < 0).any() or d["share"].sum() <= 0:
        raise ValueError("design shares should be non-negative with a positive sum")
    d["share"] = d["share"] / d["share"].sum()
    bad = d[(d["baseline"] < 0) | (d["baseline"] + d["lift"] > 1) | (d["baseline"] + d["lift"] < 0)]
    if len(bad):
        raise ValueError(f"baseline + lift should stay between 0 and 1; check {bad['segment'].tolist()}")
    return d.reset_index(drop=True)


def true_lifts(design: pd.DataFrame | None = None) -> pd.DataFrame:
    """``segment, lift``: overall first (share-weighted mean), then each segment of the design."""
    d = _design(design)
    overall = float((d["share"] * d["lift"]).sum())
    return pd.DataFrame({"segment": [ALL, *d["segment"]], "lift": [overall, *d["lift"]]})


def simulate_campaign(n_customers: int = 2500, *, design: pd.DataFrame | None = None,
                      control_share: float = 0.10, seed: int = 0) -> SimulatedCampaign:
    """Draw one randomised campaign with a known lift per segment.

    Parameters
    ----------
    n_customers : int, default=2500
        Customers assigned (a 10,000-customer demo store assigns about 2,500).
    design : DataFrame, optional
        ``segment, share, baseline, lift`` and optionally ``aov, followup_rate,
        open_rate, click_rate, pre_rate``; default :data:`DEMO_DESIGN`.
    control_share : float, default=0.10
        Chance of each customer to be drawn into the control.
    seed : int, default=0

    Returns
    -------
    SimulatedCampaign

    Examples
    --------
    >>> sim = simulate_campaign(1000, seed=1)
    >>> sorted(sim.outcomes["arm"].unique())
    ['control', 'treatment']
    """
    if n_customers < 2:
        raise ValueError(f"n_customers={n_customers} should be at least 2")
    if not 0 < control_share < 1:
        raise ValueError(f"control_share={control_share} should be between 0 and 1")
    d = _design(design)
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    k = rng.choice(len(d), size=n, p=d["share"].to_numpy())
    col = {c: d[c].to_numpy("float64")[k] for c in
           ("baseline", "lift", "aov", "followup_rate", "open_rate", "click_rate", "pre_rate")}
    control = rng.random(n) < control_share
    base = rng.random(n) < col["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(np.where(col["baseline"] < 1, col["lift"] / (1 - col["baseline"]), 0.0), 0.0, 1.0)
    extra = ~control & ~base & (rng.random(n) < q)
    converted = base | extra
    orders = np.where(converted, 1 + rng.poisson(0.15, n), 0)
    shape = np.where(orders > 0, 2.0 * orders, 1.0)  # a sum of `orders` Gamma(2, aov/2) order values
    revenue = np.where(orders > 0, rng.gamma(shape, col["aov"] / 2.0), 0.0).round(2)
    treated = ~control
    opened = treated & (rng.random(n) < col["open_rate"])
    with np.errstate(divide="ignore", invalid="ignore"):
        click_given_open = np.where(col["open_rate"] > 0, col["click_rate"] / col["open_rate"], 0.0)
    clicked = opened & (rng.random(n) < click_given_open)
    ids = np.char.add("S", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    outcomes = pd.DataFrame({
        "customer_id": ids,
        "arm": np.where(control, "control", "treatment"),
        "converted": converted.astype("int64"),
        "orders": orders.astype("int64"),
        "revenue": revenue,
        "pre_converted": (rng.random(n) < col["pre_rate"]).astype("int64"),
        "followup_converted": (rng.random(n) < col["followup_rate"]).astype("int64"),
        "sent": treated.astype("int64"),
        "bounced": np.zeros(n, dtype="int64"),
        "opened": opened.astype("int64"),
        "clicked": clicked.astype("int64"),
        "unsubscribed": np.zeros(n, dtype="int64"),
    })
    segments = pd.DataFrame({"customer_id": ids, "segment": d["segment"].to_numpy()[k]})
    return SimulatedCampaign(outcomes, segments, true_lifts(d))


def interval_coverage(n_campaigns: int = 200, n_customers: int = 2500, *, design: pd.DataFrame | None = None,
                      control_share: float = 0.10, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """How often the analysis's conversion-lift intervals contain the designed lift.

    Simulates ``n_campaigns`` campaigns (campaign ``i`` with seed ``[seed, i]``),
    analyses each with :func:`analyze_frame` and counts, per segment and
    overall, the intervals (Newcombe) that contain the true lift.

    Returns
    -------
    DataFrame
        ``segment, lift, campaigns`` (with a defined interval), ``covered,
        coverage, below`` (intervals entirely below the truth), ``above``,
        ``mean_width``, ``mean_estimate``.
    """
    truth = true_lifts(design)
    rows = []
    for i in range(int(n_campaigns)):
        sim = simulate_campaign(n_customers, design=design, control_share=control_share,
                                seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]))
        conv = analyze_frame(sim.outcomes, sim.segments, alpha=alpha, did=False).conversion
        rows.append(conv[["segment", "lift", "lift_low", "lift_high"]].assign(campaign=i))
    est = pd.concat(rows, ignore_index=True).merge(truth.rename(columns={"lift": "true_lift"}), on="segment")
    est = est[est["lift_low"].notna()]
    est["covered"] = (est["lift_low"] <= est["true_lift"]) & (est["true_lift"] <= est["lift_high"])
    est["below"] = est["lift_high"] < est["true_lift"]
    est["above"] = est["lift_low"] > est["true_lift"]
    est["width"] = est["lift_high"] - est["lift_low"]
    g = est.groupby("segment", sort=False)
    out = pd.DataFrame({
        "lift": g["true_lift"].first(), "campaigns": g.size(), "covered": g["covered"].sum(),
        "below": g["below"].sum(), "above": g["above"].sum(),
        "mean_width": g["width"].mean(), "mean_estimate": g["lift"].mean(),
    })
    out["coverage"] = out["covered"] / out["campaigns"]
    order = [s for s in truth["segment"] if s in out.index]
    out = out.reindex(order).reset_index()
    return out[["segment", "lift", "campaigns", "covered", "coverage", "below", "above", "mean_width",
                "mean_estimate"]]
