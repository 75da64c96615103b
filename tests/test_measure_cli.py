"""`custseg campaign analyze|sample-size`, `custseg kpi` and `custseg cohorts` on a small demo store."""

from __future__ import annotations

import json

import pytest
from test_measure_kpi import assert_self_contained
from typer.testing import CliRunner

from custseg import Store, pipeline
from custseg.cli.main import app
from custseg.datasets import WINBACK_ID, load_demo, make_store

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A 2,000-customer demo store with an RFM run."""
    path = tmp_path_factory.mktemp("measure-cli") / "demo.duckdb"
    with Store(path) as store:
        load_demo(store, make_store(2000, seed=4))
        pipeline.build_and_store_features(store)
        pipeline.segment_rfm(store)
    return path


def test_campaign_analyze_prints_every_table_and_verdicts(db, tmp_path):
    html = tmp_path / "campaign.html"
    r = run("campaign", "analyze", WINBACK_ID, "--db", db, "--html", html)
    assert r.exit_code == 0, r.output
    for text in ("Campaign CAMP-WINBACK", "window 2024-02-01 to 2024-02-29", "Conversion in the window",
                 "Newcombe", "Holm p", "Revenue per recipient", "Email engagement", "Retention",
                 "Difference in differences", "Verdict", "(all customers)", "segments: run rfm-",
                 "wrote report to"):
        assert text in r.output, text
    assert "significant" in r.output and "pts (95% CI" in r.output
    page = html.read_text()
    assert_self_contained(page)
    for fig in ("conversion-lift", "revenue-lift", "rates", "did"):
        assert f'id="{fig}"' in page, fig


def test_campaign_analyze_json_and_options(db):
    r = run("campaign", "analyze", WINBACK_ID, "--db", db, "--json", "--revenue-ci", "bootstrap", "--seed", "7",
            "--window-days", "14", "--alpha", "0.1", "--followup-days", "30")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["window"]["days"] == 14 and out["window"]["followup_days"] == 30
    assert out["revenue_ci"] == "bootstrap" and out["seed"] == 7 and out["alpha"] == 0.1
    first = out["conversion"][0]
    assert first["segment"] == "(all customers)" and first["verdict"].split(" ")[0] in ("significant", "not")
    assert "90% CI" in first["verdict"]
    assert out["revenue"][0]["method"] == "bootstrap"
    runs = run("campaign", "analyze", WINBACK_ID, "--db", db, "--json", "--seed", "7", "--revenue-ci", "bootstrap",
               "--window-days", "14", "--alpha", "0.1", "--followup-days", "30")
    assert json.loads(runs.output) == out  # seeded: the same numbers again


def test_campaign_analyze_with_a_named_run(db):
    with Store(db, read_only=True) as store:
        run_id = store.con.execute("SELECT run_id FROM segment_runs").fetchall()[0][0]
    r = run("campaign", "analyze", WINBACK_ID, "--db", db, "--run", run_id)
    assert r.exit_code == 0, r.output
    assert f"run {run_id}" in r.output


@pytest.mark.parametrize("args, message", [
    (("campaign", "analyze", "NOPE"), "no campaign 'NOPE'"),
    (("campaign", "analyze", WINBACK_ID, "--revenue-ci", "normal"), "--revenue-ci should be welch or bootstrap"),
    (("campaign", "analyze", WINBACK_ID, "--run", "missing"), "no segmentation run 'missing'"),
    (("kpi", "--freq", "week"), "freq='week'"),
    (("cohorts", "--freq", "day"), "freq='day'"),
])
def test_errors_are_one_line(db, args, message):
    r = run(*args, "--db", db)
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output


def test_sample_size():
    r = run("campaign", "sample-size", "--baseline", "0.05", "--lift", "0.01")
    assert r.exit_code == 0, r.output
    for text in ("41,855", "4,651", "46,506", "control share 10%", "pooled variance"):
        assert text in r.output, text
    r = run("campaign", "sample-size", "--baseline", "0.10", "--lift", "0.02", "--control-share", "0.5", "--json")
    out = json.loads(r.output)
    assert (out["n_treatment"], out["n_control"], out["total"]) == (3841, 3841, 7682)
    r = run("campaign", "sample-size", "--baseline", "0.10", "--customers", "7682", "--control-share", "0.5",
            "--alpha", "0.05", "--power", "0.8", "--json")
    assert json.loads(r.output)["minimum_detectable_lift"] == pytest.approx(0.02, abs=1e-4)
    r = run("campaign", "sample-size", "--baseline", "0.10", "--customers", "5000")
    assert r.exit_code == 0 and "Minimum detectable lift" in r.output
    r = run("campaign", "sample-size", "--baseline", "0.10")
    assert r.exit_code == 1 and "--lift" in r.output
    r = run("campaign", "sample-size", "--baseline", "1.5", "--lift", "0.01")
    assert r.exit_code == 1 and "baseline=1.5" in r.output


def test_kpi(db, tmp_path):
    html = tmp_path / "kpi.html"
    r = run("kpi", "--db", db, "--html", html, "--periods", "3")
    assert r.exit_code == 0, r.output
    for text in ("Segment KPIs per month", "Latest month: 2024-12", "All customers, last 3 months", "retention",
                 "snapshot", "Champions"):
        assert text in r.output, text
    page = html.read_text()
    assert_self_contained(page)
    assert 'id="kpis"' in page and 'id="cohorts"' in page
    r = run("kpi", "--db", db, "--freq", "quarter", "--json")
    out = json.loads(r.output)
    assert out["freq"] == "quarter" and out["run_id"].startswith("rfm-")
    assert {row["period_label"] for row in out["kpis"]} >= {"2023-Q1", "2024-Q4"}


def test_cohorts(db, tmp_path):
    html = tmp_path / "cohorts.html"
    r = run("cohorts", "--db", db, "--html", html, "--max-age", "3")
    assert r.exit_code == 0, r.output
    assert "Share of each cohort buying k months after its first order (k = 0 .. 3)" in r.output
    assert "2023-01" in r.output and "100%" in r.output
    assert_self_contained(html.read_text())
    out = json.loads(run("cohorts", "--db", db, "--freq", "quarter", "--json").output)
    assert out["freq"] == "quarter" and out["cohorts"][0]["cohort"] == "2023-Q1"
    assert out["cohorts"][0]["shares"][0] == 1.0
