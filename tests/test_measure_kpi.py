"""Segment KPIs and cohort matrices on the hand-built store (numbers by hand), on CDNOW,
and their figures and HTML pages.

The hand store of test_measure_campaign: completed orders of known customers by month

    2024-02: t5, c1                          (first orders of both)
    2024-03: t1 x2, t2 x2, t4, t5 x2, t6, c1, c3   (t3 only a cancelled order)
    2024-04, 2024-05: nothing
    2024-06: c2 (01 June, the last order: June is partial)

Run "run-kpi" puts t1, t2, t3, c1, c2 in A and t4, t5, t6, c3, c4 in B. Surveys: t4 in
February (NPS 9), t1, t2, c1 in March (NPS 10, 6, 8; satisfaction 5, 3, 4). The newest
CLV predictions score t1, t2, c1 (CLV 100, 50, 30; P(alive) 0.9, 0.5, 0.4).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import pytest
from test_measure_campaign import SEGMENTS, load_campaign_store

from custseg import Store
from custseg.measure import (
    cohort_heatmap,
    cohort_matrix,
    kpi_figure,
    segment_kpis,
    write_cohort_report,
    write_kpi_report,
)
from custseg.profiles.base import ALL
from custseg.segmenters.runs import record_run

T = pd.Timestamp


def load_kpi_store(store) -> None:
    load_campaign_store(store)
    store.append("survey_responses", pd.DataFrame({
        "response_id": ["r1", "r2", "r3", "r4"], "customer_id": ["t4", "t1", "t2", "c1"],
        "response_time": [T("2024-02-01"), T("2024-03-10"), T("2024-03-11"), T("2024-03-12")],
        "nps": [9, 10, 6, 8], "satisfaction": [4, 5, 3, 4]}))
    old = pd.DataFrame({"prediction_id": "clv-predict-20240101-000000-aaaaaa", "customer_id": ["t1", "t2"],
                        "as_of": dt.date(2024, 1, 1), "clv": [1.0, 1.0], "p_alive": [0.1, 0.1]})
    new = pd.DataFrame({"prediction_id": "clv-predict-20240601-000000-bbbbbb", "customer_id": ["t1", "t2", "c1"],
                        "as_of": dt.date(2024, 6, 1), "clv": [100.0, 50.0, 30.0], "p_alive": [0.9, 0.5, 0.4]})
    store.append("clv_predictions", pd.concat([old, new]))
    record_run(store, "hand", {}, dt.date(2024, 6, 2), SEGMENTS, run_id="run-kpi")


@pytest.fixture(scope="module")
def kstore(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("kpi") / "kpi.duckdb")
    load_kpi_store(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def kpis(kstore):
    return segment_kpis(kstore)


def cell(k, segment: str, month: str) -> pd.Series:
    t = k.table
    return t[(t["segment"] == segment) & (t["period_label"] == month)].iloc[0]


def test_grid_of_segments_and_months(kpis):
    assert kpis.run_id == "run-kpi" and kpis.freq == "month"
    assert kpis.segments == [ALL, "A", "B"]
    assert kpis.table["period_label"].unique().tolist() == ["2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    assert kpis.table["period"].iloc[0] == T("2024-02-01")
    assert any("snapshot" in n for n in kpis.notes)
    assert any("partial" in n for n in kpis.notes)


def test_activity_retention_and_repeat_by_hand(kpis):
    feb, mar, apr, may, jun = (cell(kpis, ALL, m) for m in ("2024-02", "2024-03", "2024-04", "2024-05", "2024-06"))
    assert (feb.customers, feb.active_customers, feb.new_customers, feb.orders) == (10, 2, 2, 2)
    assert feb.revenue == pytest.approx(35.0) and np.isnan(feb.retention) and feb.repeat_purchase_rate == 0.0
    assert (mar.active_customers, mar.new_customers, mar.orders) == (7, 5, 10)
    # revenue 150 + 60 + 0 (cancelled) + 30 + 119 + 80 + 60 + 45
    assert mar.revenue == pytest.approx(544.0) and mar.aov == pytest.approx(54.4)
    assert mar.retention == pytest.approx(1.0) and mar.churn == pytest.approx(0.0)  # t5 and c1 came back
    assert mar.repeat_purchase_rate == pytest.approx(2 / 7)
    assert mar.active_share == pytest.approx(0.7)
    assert apr.active_customers == 0 and apr.retention == 0.0 and apr.churn == 1.0
    assert np.isnan(may.retention)  # nobody was active in April
    assert (jun.active_customers, jun.new_customers) == (1, 1) and np.isnan(jun.retention)
    a_mar, b_mar = cell(kpis, "A", "2024-03"), cell(kpis, "B", "2024-03")
    assert (a_mar.customers, a_mar.active_customers, a_mar.retention) == (5, 3, 1.0)  # t1, t2, c1; c1 retained
    assert a_mar.repeat_purchase_rate == pytest.approx(1 / 3)
    assert (b_mar.active_customers, b_mar.orders) == (4, 5)


def test_email_survey_and_clv_columns(kpis):
    mar, feb = cell(kpis, ALL, "2024-03"), cell(kpis, ALL, "2024-02")
    assert mar.emails_sent == 6 and mar.open_rate == pytest.approx(4 / 6) and mar.click_rate == pytest.approx(1 / 6)
    assert feb.emails_sent == 1 and feb.open_rate == 0.0  # C2's newsletter to c1
    assert np.isnan(cell(kpis, ALL, "2024-04").open_rate)
    # March answers 10, 6, 8: one promoter, one detractor of three
    assert (mar.survey_responses, mar.nps, mar.satisfaction) == (3, pytest.approx(0.0), pytest.approx(4.0))
    assert cell(kpis, "B", "2024-02").nps == pytest.approx(100.0)
    # newest predictions only; the same snapshot in every month
    a = kpis.table[kpis.table["segment"] == "A"]
    assert a["mean_clv"].eq(60.0).all() and a["mean_p_alive"].eq(0.6).all()
    assert kpis.table[kpis.table["segment"] == "B"]["mean_clv"].isna().all()
    assert kpis.prediction_id == "clv-predict-20240601-000000-bbbbbb"


def test_quarters_and_all_customers_only(kstore):
    k = segment_kpis(kstore, run_id=False, freq="quarter")
    assert k.run_id is None and k.segments == [ALL]
    assert k.table["period_label"].tolist() == ["2024-Q1", "2024-Q2"]
    q1, q2 = k.table.iloc[0], k.table.iloc[1]
    assert (q1.active_customers, q1.orders, q2.active_customers) == (7, 12, 1)
    assert q2.retention == 0.0  # none of Q1's seven bought in Q2 (c2 is new)
    json.dumps(k.to_dict())


def test_cohort_matrix_by_hand(kstore):
    m = cohort_matrix(kstore)
    # Feb: t5, c1; Mar: t1, t2, t4, t6, c3; Jun: c2 (April and May have no new customers)
    assert m.sizes.to_dict() == {"2024-02": 2, "2024-03": 5, "2024-06": 1}
    s = m.shares
    assert s.loc["2024-02"].tolist()[:5] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert s.loc["2024-03"].tolist()[:4] == [1.0, 0.0, 0.0, 0.0] and np.isnan(s.loc["2024-03", 4])
    assert s.loc["2024-06", 0] == 1.0 and s.loc["2024-06"].iloc[1:].isna().all()
    assert m.active.loc["2024-02", 1] == 2
    assert m.cohort_start["2024-03"] == T("2024-03-01")
    assert any("partial" in n for n in m.notes)
    long = m.long()
    assert len(long) == int(s.notna().sum().sum())
    q = cohort_matrix(kstore, "quarter")
    assert q.sizes.to_dict() == {"2024-Q1": 7, "2024-Q2": 1} and q.shares.loc["2024-Q1", 1] == 0.0
    json.dumps(m.to_dict())


def test_freq_is_checked(kstore):
    with pytest.raises(ValueError, match="freq='week'"):
        segment_kpis(kstore, freq="week")
    with pytest.raises(ValueError, match="freq='day'"):
        cohort_matrix(kstore, "day")


def test_figures_and_html_pages(kstore, kpis, tmp_path):
    m = cohort_matrix(kstore)
    fig = kpi_figure(kpis)
    assert isinstance(fig, go.Figure)
    assert {t.name for t in fig.data} == {ALL, "A", "B"}
    heat = cohort_heatmap(m)
    assert heat.data[0].z.shape == m.shares.shape
    page = write_kpi_report(tmp_path / "kpi.html", kpis, m)
    text = page.read_text()
    assert_self_contained(text)
    assert 'id="kpis"' in text and 'id="cohorts"' in text
    text = write_cohort_report(tmp_path / "cohorts.html", m).read_text()
    assert_self_contained(text)
    assert 'id="curves"' in text and "2024-03" in text
    with pytest.raises(ValueError, match="does not exist"):
        write_cohort_report(tmp_path / "missing" / "c.html", m)


def test_cdnow_master_kpis_and_cohorts(shared_data):
    from custseg.sources import ingest

    with Store(":memory:") as store:
        ingest(store, str(shared_data / "CDNOW_master.txt"), "orders", preset="cdnow")
        k = segment_kpis(store)
        m = cohort_matrix(store)
        store_orders = store.count("orders")
    assert store_orders > 69_000
    assert k.run_id is None and k.segments == [ALL]
    t = k.table
    assert t["period_label"].iloc[0] == "1997-01" and t["period_label"].iloc[-1] == "1998-06"
    assert t["customers"].iloc[0] == 23_570
    assert t["orders"].sum() == store_orders
    assert t["new_customers"].sum() == 23_570
    assert t.loc[t["period_label"] >= "1997-04", "new_customers"].sum() == 0  # first purchases all in Q1 1997
    assert t["open_rate"].isna().all() and t["nps"].isna().all()
    assert m.sizes.sum() == 23_570 and list(m.sizes.index) == ["1997-01", "1997-02", "1997-03"]
    assert (m.shares[0] == 1.0).all()
    assert 0.10 < m.shares.loc["1997-01", 1] < 0.20


def assert_self_contained(page: str) -> None:
    """plotly.js inline exactly once, no script loaded from elsewhere."""
    plotly_js = plotly.offline.get_plotlyjs()
    assert page.count(plotly_js[:2000]) == 1
    # plotly.js itself names cdn.plot.ly as the default topojson URL of geo maps (unused here)
    assert "cdn.plot.ly" not in page.replace(plotly_js, "")
    assert not re.search(r"<script[^>]+src=", page)
