"""Measurement recovers the known effect of the demo's win-back campaign, and its
95% intervals cover the true lift about 95% of the time.

The coverage runs on the fast simulator (custseg.measure.simulate), which draws
campaigns with the demo's design (persona shares, baseline rates, lifts, 10%
control) and hands them to the same analyze_frame that analyze_campaign uses.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from custseg import Store
from custseg.datasets import WINBACK_ID, load_demo, make_store
from custseg.measure import (
    analyze_campaign,
    analyze_frame,
    interval_coverage,
    simulate_campaign,
)
from custseg.measure.simulate import DEMO_DESIGN, true_lifts
from custseg.profiles.base import ALL

ANY_ORDER = ("completed", "cancelled", "returned")


def _recovery(n_customers: int, seed: int, statuses=("completed",)) -> tuple[pd.DataFrame, float]:
    """Per persona: the designed lift beside the measured one; and the true overall lift."""
    demo = make_store(n_customers, seed=seed)
    truth = demo.campaign_truth.to_pandas()
    truth = truth[truth["n_treatment"] > 0]
    with Store(":memory:") as store:
        load_demo(store, demo)
        personas = store.con.execute("SELECT customer_id, persona AS segment FROM demo_personas").df()
        a = analyze_campaign(store, WINBACK_ID, segments=personas, statuses=statuses)
    overall = float((truth["lift"] * truth["n_treatment"]).sum() / truth["n_treatment"].sum())
    conv = a.conversion.merge(truth[["persona", "lift"]].rename(columns={"persona": "segment", "lift": "true_lift"}),
                              on="segment", how="left")
    conv.loc[conv["segment"] == ALL, "true_lift"] = overall
    pooled = (conv["converted_treatment"] + conv["converted_control"]) / (conv["n_treatment"] + conv["n_control"])
    conv["se"] = (pooled * (1 - pooled) * (1 / conv["n_treatment"] + 1 / conv["n_control"])) ** 0.5
    return conv, overall


def test_demo_store_recovers_the_planted_lift():
    conv, overall = _recovery(10_000, seed=2)
    first = conv.iloc[0]
    assert first["segment"] == ALL
    assert first["lift_low"] <= overall <= first["lift_high"]
    assert conv.loc[conv["segment"] == ALL, "n_treatment"].iloc[0] > 2000
    personas = conv[conv["segment"] != ALL]
    assert set(personas["segment"]) == {"loyal_premium", "bargain_hunter", "one_time_buyer", "lapsed",
                                        "window_shopper"}
    for r in personas.itertuples():
        assert r.lift_low <= r.true_lift <= r.lift_high, r
        # the point estimate is within 3 standard errors (pooled) of the truth
        se = r.se if r.se > 0 else 1e-9
        assert abs(r.lift - r.true_lift) <= 3 * se + 1e-12, r
    lapsed = personas.set_index("segment").loc["lapsed"]
    assert lapsed["lift"] == pytest.approx(0.06, abs=0.02)


def test_demo_store_any_order_measures_the_planted_quantity():
    # The planted lift is in P(any order in the window); counting cancelled and returned
    # orders too measures exactly that quantity (completed orders give a slightly smaller lift).
    conv, overall = _recovery(10_000, seed=2, statuses=ANY_ORDER)
    assert conv.iloc[0]["lift_low"] <= overall <= conv.iloc[0]["lift_high"]
    for r in conv[conv["segment"] != ALL].itertuples():
        assert r.lift_low <= r.true_lift <= r.lift_high, r


def test_simulated_campaigns_follow_the_design():
    sim = simulate_campaign(200_000, seed=7)
    o = sim.outcomes.merge(sim.segments, on="customer_id")
    assert (o["arm"] == "control").mean() == pytest.approx(0.10, abs=0.003)
    rates = o.groupby(["segment", "arm"])["converted"].mean().unstack()
    design = DEMO_DESIGN.set_index("segment")
    for seg in ("bargain_hunter", "lapsed", "one_time_buyer"):
        assert rates.loc[seg, "control"] == pytest.approx(design.loc[seg, "baseline"], abs=0.02)
        assert rates.loc[seg, "treatment"] - rates.loc[seg, "control"] == pytest.approx(design.loc[seg, "lift"],
                                                                                        abs=0.02)
    truth = true_lifts().set_index("segment")["lift"]
    assert truth[ALL] == pytest.approx((design["share"] / design["share"].sum() * design["lift"]).sum())
    a = analyze_frame(sim.outcomes, sim.segments, did=False).conversion.set_index("segment")
    assert a.loc[ALL, "lift_low"] <= truth[ALL] <= a.loc[ALL, "lift_high"]


def test_newcombe_coverage_over_200_simulated_campaigns():
    cov = interval_coverage(200, 2500, seed=0).set_index("segment")
    assert cov.loc[ALL, "campaigns"] == 200
    assert 0.90 <= cov.loc[ALL, "coverage"] <= 0.99, cov
    for seg in ("bargain_hunter", "lapsed", "one_time_buyer"):
        assert 0.90 <= cov.loc[seg, "coverage"] <= 0.99, cov
    assert cov.loc[ALL, "mean_estimate"] == pytest.approx(cov.loc[ALL, "lift"], abs=0.005)


@pytest.mark.slow
def test_newcombe_coverage_over_1000_large_campaigns():
    cov = interval_coverage(1000, 25_000, seed=1).set_index("segment")
    for seg in (ALL, "loyal_premium", "bargain_hunter", "one_time_buyer", "lapsed"):
        assert 0.93 <= cov.loc[seg, "coverage"] <= 0.97, cov
        sd = cov.loc[seg, "mean_width"] / 3.92
        assert abs(cov.loc[seg, "mean_estimate"] - cov.loc[seg, "lift"]) <= 4 * sd / math.sqrt(1000), cov


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_large_demo_store_recovers_the_planted_lift(seed):
    conv, overall = _recovery(50_000, seed=seed)
    assert conv.iloc[0]["lift_low"] <= overall <= conv.iloc[0]["lift_high"]
    for r in conv[conv["segment"] != ALL].itertuples():
        assert r.lift_low <= r.true_lift <= r.lift_high, r
