"""Profiles end to end on a small demo store: numbers against pandas, HTML reports, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import plotly.offline
import pytest
from typer.testing import CliRunner

from custseg import Store, pipeline
from custseg.cli.main import app
from custseg.datasets import load_demo, make_store
from custseg.profiles import ALL, compare_runs, evaluate_run, feature_sample, profile_run
from custseg.profiles.report import write_comparison_report, write_profile_report
from custseg.segmenters.runs import record_run

runner = CliRunner()
FIGURES = ("sizes", "feature-index", "category-lift", "projection", "distributions")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 2,000-customer demo store with two RFM runs, an overlapping rules run and a clustering."""
    db = tmp_path_factory.mktemp("profiles") / "demo.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(2000, seed=11))
        pipeline.build_and_store_features(store)
        first = pipeline.segment_rfm(store)
        cuts = {"recency": [365, 180, 90, 30], "frequency": [2, 3, 5, 10], "monetary": [50, 100, 500, 1000]}
        second = pipeline.segment_rfm(store, method="fixed", thresholds=cuts)
        f = pipeline.features_frame(store)
        tags = pd.concat([
            f.loc[f.email_open_rate > 0.3, ["customer_id"]].assign(segment="email fans"),
            f.loc[f.net_revenue > 500, ["customer_id"]].assign(segment="big spenders"),
            f.loc[f.sessions_90d > 0, ["customer_id"]].assign(segment="recent visitors"),
        ])
        rules = record_run(store, "rules", {"rules": "hand-written"}, None, tags)
        clusters = f[["customer_id"]].assign(
            segment=f.top_category.fillna("none").map(lambda c: c if c in ("electronics", "fashion") else "other"))
        kmeans = record_run(store, "cluster:kmeans", {"k": 3, "stability": {"ari": 0.8}}, None, clusters)
    return {"db": db, "first": first, "second": second, "rules": rules, "kmeans": kmeans}


def test_profile_matches_pandas(demo):
    with Store(demo["db"], read_only=True) as store:
        p = profile_run(store, demo["second"])
        f = pipeline.features_frame(store)
        m = pipeline.memberships(store, demo["second"])[["customer_id", "segment"]]
    df = m.merge(f, on="customer_id", how="left")
    sizes = df.groupby("segment").size()
    seg = p.segments.set_index("segment")
    assert seg["customers"].to_dict() == sizes.to_dict()
    assert seg["revenue_share"].to_dict() == pytest.approx(
        (df.groupby("segment").net_revenue.sum() / df.net_revenue.sum()).to_dict())
    for col in ("recency_days", "aov", "email_open_rate"):
        assert p.medians[col].drop(ALL).to_dict() == pytest.approx(df.groupby("segment")[col].median().to_dict())
        assert p.means.loc[ALL, col] == pytest.approx(df[col].mean())
    assert p.index.loc["Champions", "net_revenue"] == pytest.approx(
        100 * df.loc[df.segment == "Champions", "net_revenue"].mean() / df.net_revenue.mean())


def test_profile_report_is_self_contained(demo, tmp_path):
    with Store(demo["db"], read_only=True) as store:
        p = profile_run(store, demo["first"])
        sample = feature_sample(store, demo["first"], size=500, seed=3)
        ev = evaluate_run(store, demo["first"], sample=sample)
        path = write_profile_report(tmp_path / "report.html", p, ev, sample)
        cmp = compare_runs(store, demo["first"], demo["second"])
        cpath = write_comparison_report(tmp_path / "compare.html", cmp)
    text = path.read_text()
    plotly_js = plotly.offline.get_plotlyjs()
    assert plotly_js[:2000] in text and text.count(plotly_js[:2000]) == 1  # inline, once
    for page in (text, cpath.read_text()):
        # plotly.js itself names cdn.plot.ly as the default topojson URL of geo maps (unused here)
        outside = page.replace(plotly_js, "")
        assert "cdn.plot.ly" not in outside
        assert not re.search(r"<script[^>]+src=", page)
    for fig in FIGURES:
        assert f'id="{fig}"' in text, fig
    assert "Champions" in text and "Separation (silhouette)" in text
    ctext = cpath.read_text()
    assert plotly_js[:2000] in ctext and 'id="migration"' in ctext and 'id="growth"' in ctext


def test_cli_profile_prints_profile_evaluation_and_ranking(demo, tmp_path):
    html = tmp_path / "p.html"
    r = run("profile", demo["second"], "--db", demo["db"], "--html", html, "--weights", "size=0.2,value=0.6,growth=0.2")
    assert r.exit_code == 0, r.output
    for text in ("Segments", "Champions", "Feature index", "top categories (lift)", "Separation (silhouette)",
                 "Stability", "Attractiveness ranking", "size=0.20, value=0.60, growth=0.20", demo["first"]):
        assert text in r.output, text
    assert html.exists() and all(f'id="{fig}"' in html.read_text() for fig in FIGURES)


def test_cli_profile_json(demo):
    r = run("profile", "--db", demo["db"], "--json", "--sample", 300, "--seed", 2, "--top", 3,
            "--features", "recency_days,orders_count,net_revenue")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["profile"]["run"]["run_id"] == demo["kmeans"]  # the latest run
    assert sum(s["customers"] for s in data["profile"]["segments"]) == data["profile"]["run"]["n_customers"]
    assert data["evaluation"]["stability"] == pytest.approx(0.8)
    assert "300 customers sampled (seed 2)" in data["evaluation"]["separation_note"]
    assert max(c["rank"] for c in data["profile"]["categories"]) <= 3


def test_cli_profile_of_an_overlapping_run(demo):
    r = run("profile", demo["rules"], "--db", demo["db"])
    assert r.exit_code == 0, r.output
    assert "overlapping" in r.output and "not defined for an overlapping run" in r.output
    assert "big spenders" in r.output


def test_cli_compare(demo, tmp_path):
    html = tmp_path / "c.html"
    r = run("compare", demo["first"], demo["second"], "--db", demo["db"], "--html", html)
    assert r.exit_code == 0, r.output
    assert "Migration" in r.output and "Growth" in r.output and "kept their segment" in r.output
    assert html.exists()
    r = run("compare", demo["first"], demo["second"], "--db", demo["db"], "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    with Store(demo["db"], read_only=True) as store:
        n = store.con.execute("SELECT n_customers FROM segment_runs WHERE run_id = ?", [demo["first"]]).fetchall()[0][0]
    moved = sum(c["customers"] for c in data["migration"] if c["from_segment"] != "(not in run)")
    assert moved == n and data["customers_in_both"] == n


@pytest.mark.parametrize("args, message", [
    (("profile", "nope"), "no segmentation run 'nope'"),
    (("compare", "nope", "nada"), "no segmentation run 'nope'"),
    (("profile", "--weights", "size=1,worth=2"), "unknown weight 'worth'"),
    (("profile", "--features", "nope"), "unknown or non-numeric features"),
    (("profile", "--html", "/no/such/folder/p.html"), "does not exist"),
])
def test_cli_errors_are_one_line(demo, args, message):
    r = run(*args, "--db", demo["db"])
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_cli_missing_store_is_one_line(tmp_path):
    r = run("profile", "--db", tmp_path / "none.duckdb")
    assert r.exit_code == 1 and "no store at" in r.output
    assert not (tmp_path / "none.duckdb").exists()


def test_a_run_before_any_features_is_a_clear_error(tmp_path):
    db = tmp_path / "bare.duckdb"
    with Store(db) as store:
        record_run(store, "rules", {}, dt.date(2024, 1, 1), pd.DataFrame({"customer_id": ["a"], "segment": ["x"]}))
    r = run("profile", "--db", db)
    assert r.exit_code == 1 and "has no features yet" in r.output
