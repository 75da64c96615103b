"""Campaign analysis on a hand-built store: every number computed by hand.

Campaign C1 is sent 2024-03-01 09:00 and ends 2024-03-08 00:00, so its window is
the 7 days 2024-03-01 .. 2024-03-07 (order days), the pre-period 2024-02-23 ..
2024-02-29 and, with followup_days=30, the follow-up 2024-03-08 .. 2024-04-06.

    cust arm  seg  window orders (net)        pre    follow-up  email
    t1   T    A    03-02 100                         03-20 50   sent, open, click
    t2   T    A    03-05 40, 03-06 20                           sent, open, unsubscribe
    t3   T    A    03-03 70 cancelled (net 0)                   sent, bounce
    t4   T    B    03-01 08:00 30 (before the send: counts)     sent, open
    t5   T    B    03-07 20                02-28  03-08 00:00   sent, open (by email only)
    t6   T    B    03-02 80 (by email only)                     sent (by email only)
    c1   C    A    03-04 60                02-25
    c2   C    A    (06-01 15, after everything)
    c3   C    B    03-07 23:59 45
    c4   C    B

A guest order (unknown email) in the window counts for nobody. Conversion:
overall 5/6 vs 2/4, A 2/3 vs 1/2, B 3/3 vs 1/2.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from custseg import Store
from custseg.measure import analyze_campaign, analyze_frame
from custseg.measure.outcomes import CampaignWindow
from custseg.profiles.base import ALL, NOT_IN_RUN
from custseg.segmenters.runs import record_run

T = pd.Timestamp
TREATED = ["t1", "t2", "t3", "t4", "t5", "t6"]
CONTROL = ["c1", "c2", "c3", "c4"]
SEGMENTS = pd.DataFrame({"customer_id": ["t1", "t2", "t3", "c1", "c2", "t4", "t5", "t6", "c3", "c4"],
                         "segment": ["A"] * 5 + ["B"] * 5})


def load_campaign_store(store) -> None:
    ids = TREATED + CONTROL
    store.append("customers", pd.DataFrame({"customer_id": ids, "email": [f"{c}@example.com" for c in ids]}))
    store.append("campaigns", pd.DataFrame({
        "campaign_id": ["C1", "C2"], "name": ["Spring voucher", "Newsletter"], "channel": ["email", "email"],
        "start_time": [T("2024-03-01 09:00"), T("2024-02-10 09:00")],
        "end_time": [T("2024-03-08 00:00"), T("2024-02-17 00:00")]}))
    store.append("campaign_assignments", pd.DataFrame({
        "campaign_id": "C1", "customer_id": ids,
        "arm": ["treatment"] * 5 + ["Treatment "] + ["control"] * 4,
        "assigned_at": T("2024-03-01 06:00")}))
    orders = [  # id, customer, email, time, status, total
        ("o1", "t1", None, "2024-03-02 10:00", "completed", 100.0),
        ("o2", "t1", None, "2024-03-20 12:00", "completed", 50.0),
        ("o3", "t2", None, "2024-03-05 12:00", "completed", 40.0),
        ("o4", "t2", None, "2024-03-06 12:00", "completed", 20.0),
        ("o5", "t3", None, "2024-03-03 12:00", "cancelled", 70.0),
        ("o6", "c1", None, "2024-03-04 12:00", "completed", 60.0),
        ("o7", "c1", None, "2024-02-25 12:00", "completed", 10.0),
        ("o8", "t4", None, "2024-03-01 08:00", "completed", 30.0),
        ("o9", "t5", None, "2024-02-28 12:00", "completed", 25.0),
        ("o10", "t5", None, "2024-03-08 00:00", "completed", 99.0),
        ("o11", "t5", None, "2024-03-07 12:00", "completed", 20.0),
        ("o12", "c3", None, "2024-03-07 23:59", "completed", 45.0),
        ("o13", None, "T6@Example.com", "2024-03-02 12:00", "completed", 80.0),
        ("o14", None, "guest@example.net", "2024-03-03 12:00", "completed", 500.0),
        ("o15", "c2", None, "2024-06-01 12:00", "completed", 15.0),
    ]
    store.append("orders", pd.DataFrame({
        "order_id": [o[0] for o in orders], "customer_id": [o[1] for o in orders],
        "email": [o[2] for o in orders], "order_time": [T(o[3]) for o in orders],
        "status": [o[4] for o in orders], "total": [o[5] for o in orders]}))
    events = [  # customer, email, campaign, time, type
        ("t1", None, "C1", "2024-03-01 09:05", "sent"), ("t2", None, "C1", "2024-03-01 09:05", "sent"),
        ("t3", None, "C1", "2024-03-01 09:05", "sent"), ("t4", None, "C1", "2024-03-01 09:05", "sent"),
        ("t5", None, "C1", "2024-03-01 09:05", "sent"), (None, "t6@example.com", "C1", "2024-03-01 09:05", "sent"),
        ("t3", None, "C1", "2024-03-01 09:06", "bounce"),
        ("t1", None, "C1", "2024-03-01 10:00", "open"), ("t2", None, "C1", "2024-03-01 11:00", "open"),
        ("t4", None, "C1", "2024-03-02 10:00", "open"), (None, "t5@example.com", "C1", "2024-03-02 11:00", "open"),
        ("t1", None, "C1", "2024-03-01 10:01", "click"), ("t2", None, "C1", "2024-03-01 11:05", "unsubscribe"),
        ("c1", None, "C2", "2024-02-10 09:05", "sent"),
    ]
    store.append("email_events", pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(events))], "customer_id": [e[0] for e in events],
        "email": [e[1] for e in events], "campaign_id": [e[2] for e in events],
        "event_time": [T(e[3]) for e in events], "event_type": [e[4] for e in events]}))


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """The hand-built store, shared by the tests that only read it."""
    store = Store(tmp_path_factory.mktemp("measure") / "hand.duckdb")
    load_campaign_store(store)
    yield store
    store.close()


@pytest.fixture
def fresh(store):
    """The hand-built store for a test that writes to it."""
    load_campaign_store(store)
    return store


@pytest.fixture(scope="module")
def analysis(hand):
    return analyze_campaign(hand, "C1", segments=SEGMENTS, followup_days=30)


def row(frame: pd.DataFrame, segment: str) -> pd.Series:
    return frame.set_index("segment").loc[segment]


def test_window_from_start_and_end_time(analysis):
    w = analysis.window
    assert (w.start, w.end, w.days) == (dt.date(2024, 3, 1), dt.date(2024, 3, 8), 7)
    assert w.pre_start == dt.date(2024, 2, 23)
    assert w.followup_end == dt.date(2024, 4, 7)
    assert w.data_end == dt.date(2024, 6, 1) and w.followup_complete
    assert analysis.campaign["name"] == "Spring voucher"


def test_outcomes_per_customer(analysis):
    o = analysis.outcomes.set_index("customer_id")
    assert o.loc[TREATED, "arm"].eq("treatment").all() and o.loc[CONTROL, "arm"].eq("control").all()
    assert o["converted"].to_dict() == {"c1": 1, "c2": 0, "c3": 1, "c4": 0, "t1": 1, "t2": 1, "t3": 0, "t4": 1,
                                        "t5": 1, "t6": 1}
    assert o["revenue"].to_dict() == {"c1": 60.0, "c2": 0.0, "c3": 45.0, "c4": 0.0, "t1": 100.0, "t2": 60.0,
                                      "t3": 0.0, "t4": 30.0, "t5": 20.0, "t6": 80.0}
    assert o.loc["t2", "orders"] == 2 and o.loc["t3", "orders"] == 0
    assert o.loc[o["pre_converted"] == 1].index.tolist() == ["c1", "t5"]
    assert o.loc[o["followup_converted"] == 1].index.tolist() == ["t1", "t5"]
    assert o.loc[o["opened"] == 1].index.tolist() == ["t1", "t2", "t4", "t5"]
    assert o["sent"].sum() == 6 and o.loc["c1", "sent"] == 0  # C2's email to c1 is another campaign


def test_conversion_rates_lift_and_newcombe(analysis):
    c = analysis.conversion
    assert c["segment"].tolist() == [ALL, "A", "B"]
    r = row(c, ALL)
    assert (r.n_treatment, r.n_control, r.converted_treatment, r.converted_control) == (6, 4, 5, 2)
    assert r.rate_treatment == pytest.approx(5 / 6) and r.rate_control == pytest.approx(0.5)
    assert r.lift == pytest.approx(1 / 3)
    # Wilson 5/6: 0.43650 .. 0.96995; 2/4: 0.15004 .. 0.84996; Newcombe: d -/+ sqrt of the two distances.
    assert (r.rate_treatment_low, r.rate_treatment_high) == pytest.approx((0.436497, 0.969947), abs=1e-6)
    assert (r.rate_control_low, r.rate_control_high) == pytest.approx((0.150039, 0.849961), abs=1e-6)
    assert (r.lift_low, r.lift_high) == pytest.approx((-0.195771, 0.709014), abs=1e-6)
    # Katz: RR = (5/6)/(2/4) = 5/3, se = sqrt(1/5 - 1/6 + 1/2 - 1/4)
    assert r.relative_lift == pytest.approx(2 / 3)
    assert (r.relative_lift_low, r.relative_lift_high) == pytest.approx((0.587168 - 1, 4.730809 - 1), abs=1e-6)
    # pooled z: p = 7/10, se = sqrt(0.21 * (1/6 + 1/4)), z = 1.1269
    assert r.p_value == pytest.approx(0.259796, abs=1e-6)
    assert r.p_holm == r.p_value  # the overall row is not adjusted
    a, b = row(c, "A"), row(c, "B")
    assert (a.converted_treatment, a.n_treatment, a.converted_control, a.n_control) == (2, 3, 1, 2)
    assert (b.converted_treatment, b.n_treatment, b.converted_control, b.n_control) == (3, 3, 1, 2)
    assert (a.lift, a.lift_low, a.lift_high) == pytest.approx((1 / 6, -0.445781, 0.654829), abs=1e-6)
    assert (b.lift, b.lift_low, b.lift_high) == pytest.approx((0.5, -0.192592, 0.905469), abs=1e-6)
    # B: RR = 1 / 0.5 = 2, se = sqrt(1/3 - 1/3 + 1/1 - 1/2) = sqrt(0.5): 2 exp(-/+ 1.96 sqrt(0.5)) = 0.5 .. 8.0
    assert b.relative_lift == pytest.approx(1.0)
    assert (b.relative_lift_low, b.relative_lift_high) == pytest.approx((0.5001 - 1, 7.9978 - 1), abs=1e-3)


def test_summary_table(analysis):
    t = analysis.table
    assert t["segment"].tolist() == [ALL, "A", "B"]
    first = t.iloc[0]
    assert first.conversion_lift == pytest.approx(1 / 3) and first.revenue_per_recipient_lift == pytest.approx(
        22.083333, abs=1e-6)
    assert first.open_rate == pytest.approx(4 / 6) and first.did == pytest.approx(5 / 12)
    assert first.verdict.startswith("not significant")


def test_holm_across_segments(analysis):
    c = analysis.conversion
    a, b = row(c, "A"), row(c, "B")
    assert a.p_value == pytest.approx(0.709388, abs=1e-6) and b.p_value == pytest.approx(0.170904, abs=1e-6)
    # sorted: B 0.1709 x 2 = 0.3418; A max(0.3418, 0.7094 x 1) = 0.7094
    assert b.p_holm == pytest.approx(0.341807, abs=1e-6)
    assert a.p_holm == pytest.approx(0.709388, abs=1e-6)
    assert not c["significant"].any()
    assert row(c, ALL).verdict == "not significant +33.3 pts (95% CI -19.6 to +70.9)"


def test_revenue_welch(analysis):
    r = row(analysis.revenue, ALL)
    assert (r.revenue_treatment, r.revenue_control) == (290.0, 105.0)
    assert r.revenue_per_recipient_treatment == pytest.approx(290 / 6)
    assert r.revenue_per_recipient_control == pytest.approx(26.25)
    assert (r.orders_treatment, r.orders_control) == (6, 2)
    assert r.aov_treatment == pytest.approx(290 / 6) and r.aov_control == pytest.approx(52.5)
    # Welch on [100, 60, 0, 30, 20, 80] vs [60, 0, 45, 0]: df 7.5286
    assert r.lift == pytest.approx(22.083333, abs=1e-6)
    assert (r.lift_low, r.lift_high) == pytest.approx((-29.092504, 73.259170), abs=1e-6)
    assert r.p_value == pytest.approx(0.345633, abs=1e-6)
    assert r.incremental_revenue == pytest.approx(22.083333 * 6, abs=1e-5)
    a, b = row(analysis.revenue, "A"), row(analysis.revenue, "B")
    assert (a.lift, a.lift_low, a.lift_high, a.p_value) == pytest.approx(
        (23.333333, -121.611849, 168.278515, 0.620710), abs=1e-6)
    assert (b.lift, b.lift_low, b.lift_high, b.p_value) == pytest.approx(
        (20.833333, -90.481342, 132.148009, 0.540774), abs=1e-6)
    assert a.p_holm == pytest.approx(1.0) and b.p_holm == pytest.approx(1.0)  # 2 x 0.5408 capped at 1


def test_engagement(analysis):
    e = row(analysis.engagement, ALL)
    assert (e.recipients, e.sent, e.bounced, e.opened, e.clicked, e.unsubscribed) == (6, 6, 1, 4, 1, 1)
    assert (e.open_rate, e.click_rate, e.click_to_open_rate) == pytest.approx((4 / 6, 1 / 6, 1 / 4))
    assert e.control_sent == 0
    a = row(analysis.engagement, "A")
    assert (a.sent, a.opened, a.clicked, a.bounced) == (3, 2, 1, 1)


def test_retention_and_followup(analysis):
    r = row(analysis.retention, ALL)
    assert (r.retained_treatment, r.retained_control) == (2, 0)
    assert r.retention_rate_treatment == pytest.approx(2 / 5) and r.retention_rate_control == 0.0
    assert r.followup_rate_treatment == pytest.approx(2 / 6) and r.followup_rate_control == 0.0
    assert (r.followup_lift, r.followup_lift_low, r.followup_lift_high) == pytest.approx(
        (1 / 3, -0.210684, 0.700007), abs=1e-6)


def test_difference_in_differences(analysis):
    d = row(analysis.did, ALL)
    assert (d.pre_rate_treatment, d.window_rate_treatment) == pytest.approx((1 / 6, 5 / 6))
    assert (d.pre_rate_control, d.window_rate_control) == pytest.approx((1 / 4, 2 / 4))
    assert d.did == pytest.approx(5 / 12)
    assert d.did_low <= d.did <= d.did_high
    # seeded: the same seed gives the same interval
    again = analyze_frame(analysis.outcomes, SEGMENTS)
    assert (row(again.did, ALL).did_low, row(again.did, ALL).did_high) == (d.did_low, d.did_high)


def test_statuses_count_any_order(hand):
    a = analyze_campaign(hand, "C1", segments=False, statuses=("completed", "cancelled", "returned"))
    r = a.conversion.iloc[0]
    assert r.converted_treatment == 6  # t3's cancelled order now counts
    assert a.revenue.iloc[0].revenue_treatment == 290.0  # revenue stays net


def test_window_days_and_default_followup(hand):
    a = analyze_campaign(hand, "C1", window_days=3, segments=False)
    assert (a.window.start, a.window.end) == (dt.date(2024, 3, 1), dt.date(2024, 3, 4))
    # days 03-01 .. 03-03: t1 (03-02), t4 (03-01), t6 (03-02); c: nobody
    assert a.conversion.iloc[0].converted_treatment == 3 and a.conversion.iloc[0].converted_control == 0
    b = analyze_campaign(hand, "C1", segments=False)
    assert b.window.followup_end == dt.date(2024, 6, 6) and not b.window.followup_complete
    assert any("follow-up" in n and "incomplete" in n for n in b.notes)


def test_segments_from_a_run(fresh):
    hand = fresh
    record_run(hand, "hand", {}, dt.date(2024, 2, 1), SEGMENTS[SEGMENTS.customer_id != "c4"], run_id="run-1")
    a = analyze_campaign(hand, "C1")  # the newest run
    assert a.segments_from == "run run-1"
    assert a.conversion["segment"].tolist() == [ALL, "A", "B", NOT_IN_RUN]
    assert row(a.conversion, NOT_IN_RUN).n_control == 1
    assert not any("after the campaign started" in n for n in a.notes)
    record_run(hand, "hand", {}, dt.date(2024, 6, 1), SEGMENTS, run_id="run-2")
    b = analyze_campaign(hand, "C1", segments="run-2")
    assert any("after the campaign started" in n for n in b.notes)
    assert analyze_campaign(hand, "C1", segments=False).conversion["segment"].tolist() == [ALL]


def test_bootstrap_revenue_is_seeded(analysis):
    a = analyze_frame(analysis.outcomes, SEGMENTS, revenue_ci="bootstrap", seed=3)
    b = analyze_frame(analysis.outcomes, SEGMENTS, revenue_ci="bootstrap", seed=3)
    c = analyze_frame(analysis.outcomes, SEGMENTS, revenue_ci="bootstrap", seed=4)
    pd.testing.assert_frame_equal(a.revenue, b.revenue)
    assert not a.revenue["lift_low"].equals(c.revenue["lift_low"])
    r = row(a.revenue, ALL)
    assert r.method == "bootstrap" and r.lift_low < r.lift < r.lift_high
    assert r.p_value == pytest.approx(0.345633, abs=1e-6)  # Welch's p whatever the interval


def test_errors(hand):
    with pytest.raises(ValueError, match="no campaign 'NOPE'; campaigns with assignments: C1"):
        analyze_campaign(hand, "NOPE")
    with pytest.raises(ValueError, match="revenue_ci"):
        analyze_campaign(hand, "C1", revenue_ci="normal")
    with pytest.raises(ValueError, match="no segmentation run"):
        analyze_campaign(hand, "C1", segments="missing-run")
    with pytest.raises(ValueError, match="window_days=0"):
        analyze_campaign(hand, "C1", window_days=0)
    with pytest.raises(TypeError, match="segments"):
        analyze_campaign(hand, "C1", segments=3)


def test_assignments_in_both_arms_are_dropped(fresh):
    hand = fresh
    hand.append("campaign_assignments", pd.DataFrame({"campaign_id": ["C1"], "customer_id": ["t1"],
                                                      "arm": ["control"]}))
    a = analyze_campaign(hand, "C1", segments=False)
    assert a.conversion.iloc[0].n_treatment == 5
    assert any("both arms" in n for n in a.notes)


def test_analyze_frame_checks_its_input():
    ok = pd.DataFrame({"customer_id": ["a", "b"], "arm": ["treatment", "control"], "converted": [1, 0],
                       "orders": [1, 0], "revenue": [5.0, 0.0]})
    with pytest.raises(ValueError, match="lack the columns"):
        analyze_frame(ok.drop(columns="revenue"))
    with pytest.raises(ValueError, match="arm should be"):
        analyze_frame(ok.assign(arm=["treatment", "holdout"]))
    with pytest.raises(ValueError, match="one row per customer_id"):
        analyze_frame(pd.concat([ok, ok]))
    r = analyze_frame(ok.assign(arm=[" Treatment", "CONTROL"])).conversion.iloc[0]
    assert (r.n_treatment, r.n_control) == (1, 1)
    assert r.verdict.startswith("not significant") or r.verdict.startswith("cannot tell")


def test_window_helper():
    w = CampaignWindow.from_start(dt.date(2024, 1, 31), 28, 90)
    assert w.end == dt.date(2024, 2, 28) and w.pre_start == dt.date(2024, 1, 3)
    assert w.followup_end == dt.date(2024, 5, 28) and not w.followup_complete
