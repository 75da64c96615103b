"""CLV on the demo store (planted personas) and on CDNOW master (skipped without ../shared/data)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from custseg import Store
from custseg.cli.main import app
from custseg.clv.holdout import holdout_report
from custseg.clv.predict import fit_model, predict, save_model, save_predictions
from custseg.clv.segments import run_value_segments
from custseg.datasets import load_demo, make_store
from custseg.sources import ingest

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("clv-demo") / "demo.duckdb")
    load_demo(store, make_store(3000, seed=2))
    yield store
    store.close()


def test_value_segments_find_the_planted_personas(demo):
    bg, gg = fit_model(demo, "bgnbd"), fit_model(demo, "gammagamma")
    save_model(demo, bg), save_model(demo, gg)
    pred = predict(demo, bg, gg, horizon_days=365, n_draws=30)
    pid = save_predictions(demo, pred)
    run_id = run_value_segments(demo, pid)
    m = demo.con.execute("SELECT p.persona, m.segment FROM segment_memberships m JOIN demo_personas p "
                         "USING (customer_id) WHERE m.run_id = ?", [run_id]).df()
    m["tier"] = m.segment.str.split(" · ").str[0]
    m["band"] = m.segment.str.split(" · ").str[1]
    share = lambda persona, col, value: (m[m.persona == persona][col] == value).mean()
    # Lapsed customers stopped buying 300+ days ago: the model says they are gone (measured: 80%
    # likely lost, 16% at risk with BG/NBD; Pareto/NBD: 92% likely lost).
    assert share("lapsed", "band", "likely lost") > 0.75
    assert share("lapsed", "band", "active") < 0.08
    # Loyal premium customers buy monthly at the highest order value: high value, active.
    assert share("loyal_premium", "tier", "High value") > 0.95
    assert share("loyal_premium", "band", "active") > 0.95
    # Window shoppers never bought: not scored.
    assert "window_shopper" not in set(m.persona)
    # CLV ranks personas as planted: loyal premium > bargain hunters > lapsed.
    clv = pred.merge(demo.con.execute("SELECT * FROM demo_personas").df(), on="customer_id").groupby("persona").clv.mean()
    assert clv["loyal_premium"] > 3 * clv["bargain_hunter"] > 3 * clv["lapsed"]


def test_holdout_on_the_demo_store(demo):
    rep = holdout_report(demo, "2024-06-30", time_unit="day")
    t = rep.totals
    assert t["customers"] > 2000 and t["actual"] > 0
    assert abs(t["error_pct"]) < 35 and t["correlation"] > 0.6


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "CDNOW_master.txt").exists():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present beside the team's checkout)")
    db = tmp_path_factory.mktemp("clv-master") / "cdnow.duckdb"
    with Store(db) as store:
        ingest(store, SHARED_DATA / "CDNOW_master.txt", "orders", preset="cdnow")
    return db


def test_every_clv_command_runs_on_cdnow_master(master, tmp_path):
    db = str(master)
    for model in ("bgnbd", "paretonbd", "gammagamma"):
        r = runner.invoke(app, ["clv", "fit", "--model", model, "--calibration-end", "1997-09-30", "--db", db])
        assert r.exit_code == 0, r.output
    assert "left out 1 repeat buyers" in r.output  # one repeat buyer's purchases were worth $0
    r = runner.invoke(app, ["clv", "holdout", "--calibration-end", "1997-09-30", "--db", db,
                            "--html", str(tmp_path / "h.html")])
    assert r.exit_code == 0, r.output
    assert "actual 19,684" in r.output
    r = runner.invoke(app, ["clv", "predict", "--horizon", "365", "--draws", "20", "--db", db])
    assert r.exit_code == 0, r.output
    assert "23,570" in r.output
    r = runner.invoke(app, ["segment", "value", "--db", db])
    assert r.exit_code == 0 and "High value · at risk" in r.output, r.output
    r = runner.invoke(app, ["clv", "churn", "--split", "1997-10-01", "--horizon", "270", "--db", db])
    assert r.exit_code == 0, r.output
    with Store(master, read_only=True) as store:
        assert store.count("clv_predictions") == 23_570
        params = json.loads(store.con.execute("SELECT parameters FROM clv_models WHERE model = 'bgnbd'")
                            .fetchall()[0][0])
    p = params["params"]
    # The whole CDNOW cohort, weeks 1-39: close to the 1/10 sample's published estimates.
    assert p["r"] == pytest.approx(0.2516, abs=5e-4) and p["alpha"] == pytest.approx(4.789, abs=5e-3)
    assert p["a"] == pytest.approx(0.7234, abs=5e-4) and p["b"] == pytest.approx(2.161, abs=5e-3)
