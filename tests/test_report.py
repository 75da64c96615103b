"""The HTML report: content and self-containment (fast), rendering in headless Chromium (slow)."""

from __future__ import annotations

import re
import shutil

import pytest
from typer.testing import CliRunner

from custseg import Store, pipeline
from custseg.cli.main import app
from custseg.clv.predict import fit_model, predict, save_model, save_predictions
from custseg.clv.segments import run_value_segments
from custseg.datasets import load_demo, make_store
from custseg.report import write_report

runner = CliRunner()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "demo.duckdb"
    with Store(path) as store:
        load_demo(store, make_store(1500, seed=4))
        pipeline.build_and_store_features(store)
        pipeline.segment_rfm(store)
        bg, gg = fit_model(store, "bgnbd"), fit_model(store, "gammagamma")
        save_model(store, bg), save_model(store, gg)
        run_value_segments(store, save_predictions(store, predict(store, bg, gg, n_draws=20)))
        for extra in ("custseg.recommend", "custseg.measure"):
            pytest.importorskip(extra, reason=f"{extra} is not built yet")
        from custseg.recommend import recommend, save_recommendations

        save_recommendations(store, recommend(store))
    return path


@pytest.fixture(scope="module")
def report(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-out") / "report.html"
    with Store(demo) as store:
        res = write_report(store, out, sample_size=1000)
    return res, out.read_text()


def test_report_sections_and_numbers(report, demo):
    res, text = report
    assert res.sections[:4] == ["Overview of the customer base", "Segments: value × churn risk (predicted CLV)",
                                "Segments: RFM", "Customer lifetime value and churn risk"]
    assert {"Product recommendations", "Campaign results", "KPIs over time and cohorts"} <= set(res.sections)
    with Store(demo, read_only=True) as store:
        buyers = store.con.execute("SELECT count(*) FROM customer_features WHERE orders_count > 0").fetchall()[0][0]
        champions = store.con.execute("SELECT count(*) FROM segment_memberships m JOIN segment_runs r USING (run_id) "
                                      "WHERE r.method = 'rfm' AND m.segment = 'Champions'").fetchall()[0][0]
    assert f"{buyers:,} customers who bought" in text
    assert re.search(rf"<td>Champions</td><td class=num>{champions:,}</td>", text)
    assert "High value · active" in text and "Playbook: what to do with each segment" in text
    assert res.charts == text.count('class="plotly-graph-div"') >= 12
    assert not res.notes, res.notes  # every section had its data


def test_report_is_self_contained(report):
    _, text = report
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js inline, nothing fetched
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text)  # no external stylesheet
    assert text.count("plotly.js v") <= 2  # the library once, not per chart


def test_report_cli_and_an_orders_only_store(tmp_path):
    from conftest import TEST_DATA

    from custseg.sources import ingest

    db = tmp_path / "cdnow.duckdb"
    with Store(db) as store:
        ingest(store, TEST_DATA / "CDNOW_sample.txt", "orders", preset="cdnow_sample")
    r = runner.invoke(app, ["report", "--db", str(db), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert "no segmentation run yet" in r.output and "no CLV predictions yet" in r.output
    text = (tmp_path / "r.html").read_text()
    assert "2,357 customers who bought" in text


@pytest.mark.slow
def test_report_renders_in_chromium_with_every_chart_drawn(report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not shutil.which(CHROMIUM) and not __import__("os").path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    res, _ = report
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(res.path.resolve().as_uri())
        page.wait_for_load_state("load")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= "
                               f"{res.charts}", timeout=30_000)
        charts = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        drawn = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                              ".filter(d => d.querySelector('.main-svg') && d.getBoundingClientRect().height > 100)"
                              ".length")
        marks = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                              ".filter(d => d.querySelectorAll('path, rect').length > 5).length")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert charts == drawn == marks == res.charts
    assert shot.stat().st_size > 100_000
