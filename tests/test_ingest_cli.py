"""The ingestion commands through `custseg.cli.main.app`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from custseg import Store
from custseg.cli.main import app
from custseg.sources.mapping import parse_yaml

DATA = Path(__file__).resolve().parent / "data"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def counts(db: Path, table: str) -> int:
    with Store(db) as s:
        return s.count(table)


def test_ingest_with_preset_prints_counts(tmp_path):
    db = tmp_path / "s.duckdb"
    result = invoke("ingest", "orders", DATA / "online_retail_ii.csv", "--preset", "online_retail", "--db", db)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "orders" in out and "order_items" in out and "read" in out and "duplicate" in out
    assert "│ orders      │   12 │       12 │        0 │         0 │" in out
    assert "mapping online_retail" in out
    assert counts(db, "orders") == 6 and counts(db, "order_items") == 12
    again = invoke("ingest", "orders", DATA / "online_retail_ii.csv", "--preset", "online_retail", "--db", db)
    assert again.exit_code == 0, again.output
    assert "│ orders      │   12 │        0 │        0 │        12 │" in again.output


def test_ingest_shows_reject_reasons(tmp_path):
    db = tmp_path / "s.duckdb"
    result = invoke("ingest", "browsing_events", DATA / "browsing_events.jsonl", "--db", db)
    assert result.exit_code == 0, result.output
    assert "First rejects" in result.output
    assert "teleport" in result.output and "event_type" in result.output
    assert "value 'teleport' is not one of" in result.output.replace("\n", " ").replace("│", " ")


def test_ingest_options(tmp_path):
    db = tmp_path / "s.duckdb"
    path = tmp_path / "rates.dat"
    path.write_text("EUR|1.0\nUSD|0.92\n")
    result = invoke("ingest", "currency_rates", path, "--format", "csv", "--delimiter", "|", "--header", "false",
                    "--mapping", _mapping(tmp_path), "--encoding", "utf-8", "--db", db)
    assert result.exit_code == 0, result.output
    assert counts(db, "currency_rates") == 2


def _mapping(tmp_path: Path) -> Path:
    m = tmp_path / "rates.yaml"
    m.write_text("table: currency_rates\nnames: [code, value]\ncolumns:\n  currency: code\n  rate: value\n")
    return m


def test_ingest_email_mapping(tmp_path):
    db = tmp_path / "s.duckdb"
    result = invoke("ingest", "email_events", DATA / "email_events.csv", "--mapping", DATA / "email_events.yaml", "--db", db)
    assert result.exit_code == 0, result.output
    assert counts(db, "email_events") == 9


def test_fatal_error_exit_code_and_one_line(tmp_path):
    db = tmp_path / "s.duckdb"
    result = invoke("ingest", "orders", DATA / "online_retail_ii.csv", "--db", db)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error: online_retail_ii.csv: required column 'order_time' is missing")
    bad = invoke("ingest", "orders", DATA / "online_retail_ii.csv", "--preset", "nope", "--db", db)
    assert bad.exit_code == 1 and "unknown preset 'nope'" in bad.output
    enc = invoke("ingest", "customers", DATA / "customers_latin1.csv", "--encoding", "utf-8", "--db", db)
    assert enc.exit_code == 1 and "not valid utf-8 at byte" in enc.output and "try --encoding" in enc.output
    assert counts(db, "orders") == 0 and counts(db, "ingest_log") == 0


def test_presets_command():
    result = invoke("presets")
    assert result.exit_code == 0, result.output
    for name in ("cdnow", "cdnow_sample", "online_retail", "shopify_orders", "shopify_customers"):
        assert name in result.output
    assert "[cohort id,]" in result.output.replace("\n", "")  # markup is not eaten


def test_mapping_suggest_prints_and_writes(tmp_path):
    result = invoke("mapping", "suggest", DATA / "email_events.csv")
    assert result.exit_code == 0, result.output
    data = parse_yaml(result.output)
    assert data["table"] == "email_events" and data["columns"]["event_time"]["format"] == "%d/%m/%Y %H:%M"
    out = tmp_path / "m.yaml"
    result = invoke("mapping", "suggest", DATA / "email_events.csv", "-o", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output.replace("\n", "")
    db = tmp_path / "s.duckdb"
    result = invoke("ingest", "email_events", DATA / "email_events.csv", "--mapping", out, "--db", db)
    assert result.exit_code == 0, result.output
    assert counts(db, "email_events") == 9
    result = invoke("mapping", "suggest", DATA / "shopify_customers.csv", "--table", "customers")
    assert result.exit_code == 0 and parse_yaml(result.output)["table"] == "customers"


def test_ingest_postgres_needs_a_source(tmp_path):
    result = invoke("ingest-postgres", "orders", "--dsn", "host=127.0.0.1 port=1 dbname=x", "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 1
    assert "give exactly one of a source table or a query" in result.output
