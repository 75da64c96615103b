"""`custseg segment cluster` end to end on a small demo store, and its one-line errors."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from custseg import Store, pipeline
from custseg.cli.main import app
from custseg.datasets import load_demo, make_store

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("cluster-cli") / "demo.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(1500, seed=4))
        pipeline.build_and_store_features(store)
    return db


def test_default_run_prints_the_choice_clusters_rules_and_stability(demo_db):
    r = run("segment", "cluster", "--db", demo_db, "--refits", 2)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "Choosing k" in out and "Calinski-Harabasz" in out and "Davies-Bouldin" in out
    assert "chosen k=" in out and "lowest mean rank" in out
    assert "Browsers · no orders" in out and "is null" in out  # the no-orders rule names the missing values
    assert "fidelity" in out and "stability: adjusted Rand index of 2 reseeded bootstrap refits" in out
    assert "recorded run cluster:kmeans-" in out
    with Store(demo_db, read_only=True) as store:
        runs = pipeline.list_runs(store)
    assert "cluster:kmeans" in set(runs.method)


def test_options_fix_k_features_seed_and_save_the_rules(demo_db, tmp_path):
    rules = tmp_path / "rules.yaml"
    r = run("segment", "cluster", "--db", demo_db, "--k", 4, "--features", "orders_count,recency_days,aov",
            "--seed", 3, "--sample-size", 1000, "--rule-depth", 3, "--refits", 0, "--save-rules", rules)
    assert r.exit_code == 0, r.output
    assert "chosen k=4: given" in r.output and "stability" not in r.output
    doc = yaml.safe_load(rules.read_text())
    assert doc["mode"] == "exclusive" and doc["segments"] and all(s["rule"] for s in doc["segments"])
    r = run("segment", "cluster", "--db", demo_db, "--method", "gmm", "--k-min", 2, "--k-max", 4, "--refits", 0,
            "--pca", 3)
    assert r.exit_code == 0, r.output
    assert "BIC" in r.output and "(gmm, k=" in r.output


@pytest.mark.parametrize("args,message", [
    (["--method", "dbscan"], "method='dbscan' must be one of kmeans, gmm, agglomerative, hdbscan, kprototypes"),
    (["--features", "orders_count,nope"], "features missing from the feature table: nope"),
    (["--method", "hdbscan", "--k", "3"], "hdbscan finds its own number of clusters"),
    (["--k-min", "6", "--k-max", "3"], "k_range=(6, 3) must be (low, high)"),
    (["--save-rules", "/no/such/folder/rules.yaml"], "folder /no/such/folder does not exist"),
])
def test_errors_are_one_line(demo_db, args, message):
    r = run("segment", "cluster", "--db", demo_db, *args)
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output


def test_a_store_without_features_says_what_to_do(tmp_path):
    db = tmp_path / "empty.duckdb"
    r = run("segment", "cluster", "--db", db)
    assert r.exit_code == 1
    assert f"store {db} has no features yet; run `custseg features --db {db}` first" in r.output
