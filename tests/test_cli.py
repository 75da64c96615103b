"""The CLI end to end on a small demo store, and its one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from custseg import Store
from custseg.cli.main import app
from custseg.store import SCHEMA_VERSION

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    db = folder / "demo.duckdb"
    result = run("demo", "--db", db, "--customers", 1500, "--seed", 3, "--exports", folder / "exports")
    assert result.exit_code == 0, result.output
    assert "Champions" in result.output and "Next:" in result.output
    return db


def test_demo_fills_every_table_and_records_a_run(demo_db, tmp_path):
    with Store(demo_db) as store:
        for table in ("customers", "products", "orders", "order_items", "browsing_events", "email_events",
                      "survey_responses", "campaigns", "campaign_assignments", "demo_personas"):
            assert store.count(table) > 0, table
        assert store.count("rejects") == 0
        log = store.to_pandas("ingest_log")
        assert (log.rows_read == log.rows_accepted + log.rows_rejected + log.rows_duplicate).all()
        assert store.count("customer_features") == 1500
        assert sorted(store.to_pandas("segment_runs").method) == ["rfm", "value"]
        assert store.count("clv_predictions") == store.con.execute(
            "SELECT count(*) FROM customer_features WHERE clv_x IS NOT NULL").fetchall()[0][0]  # every buyer
        assert sorted(store.to_pandas("clv_models").model) == ["bgnbd", "gammagamma"]


def test_demo_is_reproducible(demo_db, tmp_path):
    again = tmp_path / "again.duckdb"
    assert run("demo", "--db", again, "--customers", 1500, "--seed", 3).exit_code == 0
    q = ("SELECT r.method, m.customer_id, m.segment FROM segment_memberships m JOIN segment_runs r USING (run_id) "
         "ORDER BY r.method, m.customer_id")
    with Store(demo_db, read_only=True) as a, Store(again, read_only=True) as b:
        assert a.con.execute(q).df().equals(b.con.execute(q).df())


def test_quality_features_segment_and_export(demo_db, tmp_path):
    r = run("quality", "--db", demo_db)
    assert r.exit_code == 0, r.output
    assert "Anomalies" in r.output and "gender spellings normalised" in r.output
    r = run("quality", "--db", demo_db, "--json")
    assert r.exit_code == 0 and '"anomalies"' in r.output

    r = run("features", "--db", demo_db, "--as-of", "2024-07-01", "--blocks", "orders,clv")
    assert r.exit_code == 0, r.output
    assert "as of 2024-07-01" in r.output

    cuts = tmp_path / "cuts.yaml"
    cuts.write_text("recency: [365, 180, 90, 30]\nfrequency: [2, 3, 5, 10]\nmonetary: [50, 100, 500, 1000]\n")
    r = run("segment", "rfm", "--db", demo_db, "--method", "fixed", "--thresholds", cuts)
    assert r.exit_code == 0, r.output

    r = run("segments", "list", "--db", demo_db)
    assert r.exit_code == 0 and r.output.count("rfm-") == 2
    r = run("segments", "show", "--db", demo_db)
    assert r.exit_code == 0 and "customers" in r.output

    with Store(demo_db, read_only=True) as store:
        cid = store.con.execute("SELECT customer_id FROM segment_memberships LIMIT 1").fetchall()[0][0]
        n_latest = store.con.execute(
            "SELECT n_customers FROM segment_runs ORDER BY created_at DESC LIMIT 1").fetchall()[0][0]
    r = run("customers", "show", cid, "--db", demo_db)
    assert r.exit_code == 0 and cid in r.output and "Segments" in r.output

    out = tmp_path / "m.parquet"
    r = run("export", "memberships", "-o", out, "--db", demo_db)
    assert r.exit_code == 0, r.output
    assert len(pd.read_parquet(out)) == n_latest
    out = tmp_path / "f.csv"
    assert run("export", "features", "-o", out, "--db", demo_db).exit_code == 0
    assert len(pd.read_csv(out)) > 0


@pytest.mark.parametrize("args, message", [
    (("features",), "has no customers or orders"),
    (("segment", "rfm"), "has no features yet"),
    (("segments", "show", "nope"), "no segmentation run 'nope'"),
    (("customers", "show", "nobody"), "no customer 'nobody'"),
    (("export", "everything", "-o", "x.csv"), "can export 'features' or 'memberships'"),
    (("segment", "rfm", "--method", "fixed", "--thresholds", "missing.yaml"), "does not exist"),
])
def test_bad_input_is_one_line_with_exit_code_1(tmp_path, args, message):
    db = tmp_path / "empty.duckdb"
    r = run(*args, "--db", db)
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    r = runner.invoke(app, ["--debug", "features", "--db", str(tmp_path / "e.duckdb")])
    assert r.exit_code != 0 and isinstance(r.exception, ValueError)


def test_demo_refuses_to_replace_a_users_store(tmp_path):
    db = tmp_path / "shop.duckdb"
    with Store(db) as store:
        store.append("orders", pd.DataFrame({"order_id": ["1"], "order_time": [pd.Timestamp("2024-01-01")],
                                             "status": ["completed"], "total": [1.0]}))
    r = run("demo", "--db", db, "--customers", 100)
    assert r.exit_code == 1 and "holds your own data" in r.output
    with Store(db) as store:
        assert store.count("orders") == 1


def test_init_creates_and_reports_version(tmp_path):
    r = run("init", "--db", tmp_path / "new.duckdb")
    assert r.exit_code == 0 and f"schema version {SCHEMA_VERSION}" in r.output
    r = run("init", "--db", tmp_path / "new.duckdb")
    assert "up to date" in r.output


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.output.startswith("custseg ")
