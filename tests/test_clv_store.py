"""CLV on a store: summaries, holdout, saved models, predictions, value segments, the CLI."""

from __future__ import annotations

import copy
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_DATA
from typer.testing import CliRunner

from custseg import Store
from custseg.cli.main import app
from custseg.clv.data import holdout_purchases, purchase_summary
from custseg.clv.holdout import holdout_html, holdout_report
from custseg.clv.predict import (
    discounted_purchases,
    fit_model,
    list_models,
    load_model,
    load_predictions,
    predict,
    save_model,
    save_predictions,
)
from custseg.clv.segments import run_value_segments, value_risk_segments, value_summary
from custseg.sources import ingest

CAL_END = dt.date(1997, 9, 30)
runner = CliRunner()


def _raw_sample() -> pd.DataFrame:
    raw = pd.read_csv(TEST_DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["cid", "cohort", "date", "cds", "value"], dtype={"cid": str, "date": str})
    raw["day"] = pd.to_datetime(raw["date"]).dt.date
    return raw


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("clv") / "cdnow.duckdb")
    ingest(store, TEST_DATA / "CDNOW_sample.txt", "orders", preset="cdnow_sample")
    yield store
    store.close()


def test_summary_matches_the_published_cdnow_summary(cdnow):
    s = purchase_summary(cdnow, CAL_END, time_unit="week").set_index("customer_id")
    ids = list(pd.unique(_raw_sample().cid))  # the published summary numbers customers in file order
    pub = pd.read_csv(TEST_DATA / "cdnow_sample_summary.csv")
    pub.index = [ids[i - 1] for i in pub.ID]
    assert len(s) == 2357
    m = pub.join(s, how="left", rsuffix="_ours")
    assert (m["x"] == m["x_ours"]).all()
    assert (m["t_x"] - m["t_x_ours"]).abs().max() < 0.006  # published rounded to 2 decimals
    assert (m["T"] - m["T_ours"]).abs().max() < 0.006
    rep = m["x"] > 0
    assert np.allclose(m.loc[rep, "zbar"], m.loc[rep, "monetary_value"], atol=0.006)
    assert m.loc[~rep, "monetary_value"].isna().all()
    days = purchase_summary(cdnow, CAL_END, time_unit="day").set_index("customer_id")
    assert np.allclose(days["T"], s["T"] * 7) and np.allclose(days["t_x"], s["t_x"] * 7)


def test_summary_by_cohort_and_calibration_end(cdnow):
    early = purchase_summary(cdnow, "1997-01-31", cohort_end="1997-01-15")
    raw = _raw_sample()
    first = raw.groupby("cid").day.min()
    assert set(early.customer_id) == set(first[first <= dt.date(1997, 1, 15)].index)
    assert np.allclose(early["T"] * 7, [(dt.date(1997, 1, 31) - d).days for d in early.first_purchase])


def test_holdout_purchases_count_distinct_days_after_the_calibration(cdnow):
    h = holdout_purchases(cdnow, CAL_END).set_index("customer_id").purchases
    raw = _raw_sample()
    later = raw[raw.day > CAL_END].groupby("cid").day.nunique()
    assert h.sort_index().to_dict() == later.sort_index().to_dict()
    assert h.sum() == 1882  # purchase days of the 2,357 customers in weeks 40-78
    with pytest.raises(ValueError, match="before the day after"):
        holdout_purchases(cdnow, CAL_END, "1997-09-01")


@pytest.fixture(scope="module")
def bg(cdnow):
    return fit_model(cdnow, "bgnbd", calibration_end=CAL_END)


@pytest.fixture(scope="module")
def gg(cdnow):
    return fit_model(cdnow, "gammagamma", calibration_end=CAL_END)


def test_models_fitted_from_the_store_match_the_published_ones(bg, gg, cdnow):
    p = bg.params_
    assert [round(p[k], 3) for k in ("r", "alpha", "a", "b")] == pytest.approx([0.243, 4.414, 0.793, 2.426], abs=1.5e-3)
    assert bg.meta_["time_unit"] == "week" and bg.meta_["calibration_end"] == "1997-09-30"
    assert bg.meta_["calibration_start"] == "1997-01-01"
    g = gg.params_
    assert (g["p"], g["q"], g["gamma"]) == pytest.approx((6.25, 3.74, 15.44), rel=2e-3)
    pn = fit_model(cdnow, "paretonbd", calibration_end=CAL_END).params_
    assert (pn["r"], pn["alpha"], pn["s"], pn["beta"]) == pytest.approx((0.553, 10.578, 0.606, 11.669), rel=2e-3)


def test_saved_models_load_and_predict_identically(cdnow, bg):
    model_id = save_model(cdnow, bg)
    again = load_model(cdnow, model_id)
    assert again.params_ == bg.params_ and again.meta_["time_unit"] == "week"
    x, tx, T = np.array([0.0, 2, 5]), np.array([0.0, 30.4, 20]), np.array([38.9, 38.9, 38.9])
    assert np.array_equal(again.p_alive(x, tx, T), bg.p_alive(x, tx, T))
    assert load_model(cdnow, kind="bgnbd").meta_["model_id"] == model_id
    assert model_id in set(list_models(cdnow).model_id)
    with pytest.raises(ValueError, match="no CLV model"):
        load_model(cdnow, "clv-nope")


def test_clv_is_the_discounted_sum_of_monthly_purchases(bg, gg, cdnow):
    pred = predict(cdnow, bg, gg, horizon_days=365, as_of="1997-10-01", discount_rate=0.1, margin=0.3,
                   intervals=False)
    assert len(pred) == 2357 and pred["as_of"].iloc[0] == dt.date(1997, 10, 1)
    row = pred.set_index("customer_id").loc["00004"]  # x=2, t_x=30.43, T=38.86 weeks, zbar 22.35
    steps = np.minimum(np.arange(1, 13) * 30.4375, 365) / 7
    t_x, T = row["t_x"], row["T"]
    cum = np.array([bg.expected_purchases(t, 2.0, t_x, T) for t in steps]).ravel()
    inc = np.diff(np.concatenate([[0.0], cum]))
    disc = (1.1 ** (np.minimum(np.arange(1, 13) * 30.4375, 365) / 365.25))
    spend = float(np.ravel(gg.conditional_expected_spend(np.array([2.0]), np.array([22.345])))[0])
    assert row.expected_spend == pytest.approx(spend, rel=1e-6)
    assert row.clv == pytest.approx(0.3 * spend * float((inc / disc).sum()), rel=1e-9)
    assert row.expected_purchases == pytest.approx(float(np.ravel(bg.expected_purchases(365 / 7, 2.0, t_x, T))[0]),
                                                   rel=1e-9)
    # No discounting: CLV = margin * spend * expected purchases.
    flat = discounted_purchases(bg, np.array([2.0]), np.array([t_x]), np.array([T]), 365, per=7, discount_rate=0.0)
    assert flat[0] == pytest.approx(row.expected_purchases, rel=1e-9)
    assert (pred["p_alive"].between(0, 1)).all() and (pred["clv"] >= 0).all()
    assert pred.loc[pred.x == 0, "p_alive"].eq(1.0).all()  # BG/NBD: no repeat purchase, no dropout yet


def test_intervals_are_seeded_and_contain_the_estimate(bg, gg, cdnow):
    a = predict(cdnow, bg, gg, as_of="1997-10-01", n_draws=50, seed=3)
    b = predict(cdnow, bg, gg, as_of="1997-10-01", n_draws=50, seed=3)
    pd.testing.assert_frame_equal(a, b)
    for col in ("p_alive", "expected_purchases", "clv"):
        lo, hi, est = a[f"{col}_low"], a[f"{col}_high"], a[col]
        assert (lo <= hi).all()
        inside = ((lo <= est * (1 + 1e-9) + 1e-12) & (est <= hi * (1 + 1e-9) + 1e-12)).mean()
        assert inside > 0.95, (col, inside)
    width = (a.clv_high - a.clv_low) / a.clv.clip(lower=1e-9)
    assert width[a.x >= 3].median() > 0.02  # a sample of 2,357 leaves visible uncertainty


def test_predictions_round_trip_through_the_store(bg, gg, cdnow):
    pred = predict(cdnow, bg, gg, as_of="1997-10-01", n_draws=20)
    pid = save_predictions(cdnow, pred)
    back = load_predictions(cdnow, pid)
    assert len(back) == len(pred) and back.prediction_id.eq(pid).all()
    assert np.allclose(back.sort_values("customer_id").clv, pred.sort_values("customer_id").clv)


def test_value_segments_tiers_and_bands():
    pred = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                         "clv": [100, 90, 80, 70, 60, 50, 40, 30, 20, 10.0],
                         "p_alive": [0.9, 0.5, 0.1, 0.9, 0.5, 0.2, 0.8, 0.69, 0.3, 0.29]})
    seg = value_risk_segments(pred).set_index("customer_id")
    assert seg.value_tier.tolist() == ["High value"] * 2 + ["Mid value"] * 3 + ["Low value"] * 5
    assert seg.risk_band.tolist() == ["active", "at risk", "likely lost", "active", "at risk", "likely lost",
                                      "active", "at risk", "at risk", "likely lost"]
    assert seg.loc["c1", "segment"] == "High value · at risk"
    tied = value_risk_segments(pred.assign(clv=[5.0] * 10))
    assert tied.value_tier.eq("Low value").all()  # equal CLV, equal tier (none in the top 20% alone)
    with pytest.raises(ValueError, match="risk bands"):
        value_risk_segments(pred, risk_bands=(0.8, 0.2))


def test_value_run_is_recorded_and_summarised(bg, gg, cdnow):
    pid = save_predictions(cdnow, predict(cdnow, bg, gg, as_of="1997-10-01", intervals=False))
    run_id = run_value_segments(cdnow, pid)
    summary = value_summary(cdnow, run_id)
    assert summary.customers.sum() == 2357
    assert summary.share.sum() == pytest.approx(1.0) and summary.clv_share.sum() == pytest.approx(1.0)
    assert summary.priority.tolist() == sorted(summary.priority)
    assert summary.segment.iloc[0].startswith("High value")
    high = summary[summary.segment.str.startswith("High value")]
    assert high.customers.sum() == pytest.approx(0.2 * 2357, abs=2)
    assert high.clv_share.sum() > 0.5  # CLV is concentrated in the top fifth
    params = json.loads(cdnow.con.execute("SELECT parameters FROM segment_runs WHERE run_id = ?",
                                          [run_id]).fetchall()[0][0])
    assert params["prediction_id"] == pid and params["risk_bands"] == [0.3, 0.7]


def test_holdout_report_on_cdnow(cdnow, tmp_path):
    rep = holdout_report(cdnow, CAL_END)
    by = rep.by_frequency
    assert by.customers.sum() == 2357 and by.iloc[:, 0].tolist()[-1] == "7+"
    t = rep.totals
    assert t["actual"] == 1882
    # The sum of the customers' conditional expectations for weeks 40-78 (lifetimes gives the same
    # 1,653.4): BG/NBD under-predicts the holdout of the 2,357 customers by 12%.
    assert t["predicted"] == pytest.approx(1653.4, abs=0.1)
    # The cohort's cumulative repeat purchases (Fader, Hardie and Lee's tracking plot): 4,161
    # expected by week 78 against 4,339 actual, -4.1%; at the end of the calibration +1.5%.
    tr = rep.tracking
    assert tr.expected.iloc[-1] == pytest.approx(4160.6, abs=0.5) and tr.actual.iloc[-1] == 4339
    assert tr.expected.iloc[38] == pytest.approx(tr.actual.iloc[38], rel=0.02)
    # Conditional expectations rise with calibration frequency, as the actual ones do.
    assert by.predicted.is_monotonic_increasing and by.actual.iloc[-1] > by.actual.iloc[0]
    assert rep.tracking.actual.iloc[-1] == rep.customers.x.sum() + 1882  # all repeat purchases to the end
    assert rep.tracking.expected.is_monotonic_increasing
    path = tmp_path / "holdout.html"
    holdout_html(rep, path)
    html = path.read_text()
    assert "Cumulative repeat purchases" in html and "cdn.plot.ly" not in html.split("<body>")[0][:200]


def test_cli_fit_predict_holdout_value(tmp_path):
    db = tmp_path / "cli.duckdb"
    with Store(db) as s:
        ingest(s, TEST_DATA / "CDNOW_sample.txt", "orders", preset="cdnow_sample")
    r = runner.invoke(app, ["clv", "fit", "--model", "bgnbd", "--calibration-end", "1997-09-30", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "0.24259" in r.output and "4.4136" in r.output and "saved model clv-bgnbd-" in r.output
    r = runner.invoke(app, ["clv", "predict", "--horizon", "365", "--draws", "20", "--db", str(db),
                            "-o", str(tmp_path / "pred.csv")])
    assert r.exit_code == 0, r.output
    assert "fitted and saved a Gamma-Gamma spend model" in r.output
    out = pd.read_csv(tmp_path / "pred.csv")
    assert len(out) == 2357 and {"p_alive", "clv", "clv_low", "clv_high"} <= set(out.columns)
    r = runner.invoke(app, ["segment", "value", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "High value · at risk" in r.output or "High value · active" in r.output
    r = runner.invoke(app, ["clv", "holdout", "--calibration-end", "1997-09-30", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "actual 1,882" in r.output
    r = runner.invoke(app, ["clv", "models", "--db", str(db)])
    assert r.exit_code == 0 and "gammagamma" in r.output
    r = runner.invoke(app, ["clv", "fit", "--time-unit", "month", "--db", str(db)])
    assert r.exit_code == 1 and "time unit 'month'" in r.output


def test_a_small_store_is_fitted_with_a_plain_note_and_wide_intervals(tmp_path):
    from custseg.datasets import load_demo, make_store

    with Store(tmp_path / "small.duckdb") as small:
        load_demo(small, make_store(150, seed=1))
        bg, gg = fit_model(small, "bgnbd"), fit_model(small, "gammagamma")
        assert any("very uncertain" in n for n in gg.meta_["notes"])  # 88 repeat buyers
        pred = predict(small, bg, gg, n_draws=50)
    assert len(pred) == bg.n_customers_ and (pred.clv_low <= pred.clv_high).all()
    assert (pred.clv_high - pred.clv_low).gt(0).all()


def test_spend_draws_with_an_infinite_mean_are_redrawn(gg):
    from custseg.clv.predict import _finite_spend_draws

    wide = copy.copy(gg)
    wide.cov_ = gg.cov_ * 400  # a very uncertain q: many draws below 1
    draws = _finite_spend_draws(wide, 100, seed=0)
    q = list(gg.param_names).index("q")
    assert draws.shape == (100, 3) and (draws[:, q] > 1).all()
    wider = copy.copy(gg)
    wider.params_ = {**gg.params_, "q": 0.95}  # most draws below 1
    with pytest.raises(ValueError, match="too uncertain"):
        _finite_spend_draws(wider, 100, seed=0)
