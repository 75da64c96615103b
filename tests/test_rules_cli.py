"""`custseg segment rules` and `custseg segment template` end to end, and their one-line errors."""

from __future__ import annotations

import json

import pytest
from conftest import TEST_DATA
from handmade import load_cdnow_sample
from typer.testing import CliRunner

from custseg import Store
from custseg.cli.main import app
from custseg.pipeline import build_and_store_features

runner = CliRunner()

RULES = """\
name: Value
mode: exclusive
default: Everyone else
segments:
  - name: Lapsed high value
    description: big spenders gone quiet
    rule: "segment('High value') and last_order_date < today - 180 days"
  - name: High value
    rule: "net_revenue >= p90(net_revenue) filter (where orders_count > 0)"
  - name: Recent electronics
    rule: "last_order_date >= -4w and top_category contains 'ELECTRO'"
"""


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    from custseg.datasets import load_demo, make_store

    db = tmp_path_factory.mktemp("rules-cli") / "demo.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(1000, seed=2))
        build_and_store_features(store)
    return db


@pytest.fixture(scope="module")
def cdnow_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("rules-cli") / "cdnow.duckdb"
    with Store(db) as store:
        load_cdnow_sample(store, TEST_DATA / "CDNOW_sample.txt")
        build_and_store_features(store)
    return db


def last_run(db):
    with Store(db, read_only=True) as store:
        run_id, method, params = store.con.execute(
            "SELECT run_id, method, parameters FROM segment_runs ORDER BY created_at DESC, run_id DESC LIMIT 1"
        ).fetchall()[0]
        counts = dict(store.con.execute(
            "SELECT segment, count(*) FROM segment_memberships WHERE run_id = ? GROUP BY 1", [run_id]).fetchall())
    return run_id, method, json.loads(params), counts


def test_rules_file(demo_db, tmp_path):
    path = tmp_path / "value.yaml"
    path.write_text(RULES)
    result = run("segment", "rules", path, "--db", demo_db)
    assert result.exit_code == 0, result.output
    run_id, method, params, counts = last_run(demo_db)
    assert method == "rules" and run_id in result.output.replace("\n", "")
    for name in ("Lapsed high value", "High value", "Recent electronics", "Everyone else"):
        assert name in result.output
    assert "Thresholds from the data" in result.output and "p90(net_revenue)" in result.output
    assert sum(counts.values()) == 1000
    assert f"{counts['High value'] / 1000:.1%}" in result.output
    assert set(params["thresholds"]) == {"p90(net_revenue) filter (where orders_count > 0)"}


def test_template(demo_db):
    result = run("segment", "template", "high_value", "--db", demo_db)
    assert result.exit_code == 0, result.output
    run_id, method, _, _ = last_run(demo_db)
    assert method == "template:high_value" and run_id.startswith("template-high_value-")
    assert "High value" in result.output and "Low value" in result.output and "No orders" in result.output


def test_overlapping_template_says_shares_overlap(demo_db):
    result = run("segment", "template", "interests", "--db", demo_db)
    assert result.exit_code == 0, result.output
    assert "Overlapping segments" in result.output


def test_template_list():
    result = run("segment", "template", "--list")
    assert result.exit_code == 0, result.output
    for name in ("frequent_buyers", "email_engagement", "window_shoppers", "interests"):
        assert name in result.output
    assert "email events" in result.output


def test_segments_show_reads_a_rules_run(demo_db):
    run("segment", "template", "one_time_buyers", "--db", demo_db)
    result = run("segments", "show", "--db", demo_db)
    assert result.exit_code == 0, result.output
    assert "One-time buyers" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("segment", "template", "email_engagement"), ("error: template 'email_engagement' needs email events (columns "
                                                   "email_open_rate, emails_sent are empty in this store)")),
    (("segment", "template", "high_valu"), ("error: unknown template 'high_valu', did you mean 'high_value'? "
                                             "(see `custseg segment template --list`)")),
    (("segment", "template"), "error: give a template name, or --list to see them"),
])
def test_template_errors_are_one_line(cdnow_db, args, message):
    result = run(*args, "--db", cdnow_db)
    assert result.exit_code == 1
    assert result.output.strip().replace("\n", " ") == message
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("name: x\nsegments:\n  - {name: a, rule: 'ordrs_count > 1'}\n",
     "error: segment 'a': unknown column 'ordrs_count' at 1:1, did you mean 'orders_count'?"),
    ("name: x\nsegments:\n  - {name: a, rule: \"1=1; DROP TABLE orders\"}\n",
     "error: segment 'a': ';' is not allowed: a rule is one condition at 1:4"),
    ("name: x\nsegments:\n  - {name: a, rule: \"segment('b')\"}\n  - {name: b, rule: \"segment('a')\"}\n",
     "error: segments refer to each other in a cycle: 'a' -> 'b' -> 'a'"),
    ("name: x\nmode: tags\nsegments:\n  - {name: a, rule: 'aov > 1'}\n",
     "mode 'tags' must be exclusive or overlapping"),
])
def test_rules_errors_are_one_line(cdnow_db, tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    result = run("segment", "rules", path, "--db", cdnow_db)
    assert result.exit_code == 1
    assert message in result.output.replace("\n", " ")
    assert len(result.output.strip().splitlines()) <= 2 and "Traceback" not in result.output
    with Store(cdnow_db, read_only=True) as store:
        assert store.count("orders") > 0


def test_missing_file_and_missing_features(tmp_path):
    result = run("segment", "rules", tmp_path / "nope.yaml", "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 1 and "does not exist" in result.output
    path = tmp_path / "ok.yaml"
    path.write_text(RULES)
    result = run("segment", "rules", path, "--db", tmp_path / "empty.duckdb")
    assert result.exit_code == 1 and "has no features yet" in result.output
    result = run("segment", "template", "lapsed", "--db", tmp_path / "empty.duckdb")
    assert result.exit_code == 1 and "has no features yet" in result.output
