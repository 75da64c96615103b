"""Deleting a customer: every row of theirs goes, nobody else's does, and the log keeps no id."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from custseg import Store
from custseg.cli.keys_cmd import register
from custseg.datasets import load_demo, make_store
from custseg.pipeline import build_and_store_features, segment_rfm
from custseg.service.privacy import (
    customer_rows,
    delete_customer,
    deletion_log,
    hash_customer_id,
    was_deleted,
)

OTHER = "C000002"


def _customer_tables(store) -> list[str]:
    return [r[0] for r in store.con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'customer_id' "
        "AND table_schema = 'main' ORDER BY 1").fetchall()]


def _q(store, sql, params=None):
    return store.con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """A demo store with derived tables and a row of every kind about TARGET and OTHER."""
    path = tmp_path_factory.mktemp("privacy") / "demo.duckdb"
    with Store(path) as s:
        load_demo(s, make_store(300, seed=1))
        build_and_store_features(s)
        segment_rfm(s)
        # The target: a customer with orders, email and an anonymous device, i.e. every kind of link.
        target = _q(s, """SELECT b.customer_id FROM browsing_events b JOIN customers c USING (customer_id)
                          WHERE b.anonymous_id IN (SELECT anonymous_id FROM browsing_events WHERE customer_id IS NULL)
                            AND c.email IS NOT NULL AND b.customer_id <> ?
                          GROUP BY 1 ORDER BY 1 LIMIT 1""", [OTHER])[0][0]
        email = _q(s, "SELECT email FROM customers WHERE customer_id = ?", [target])[0][0]
        other_email = _q(s, "SELECT email FROM customers WHERE customer_id = ?", [OTHER])[0][0]
        # Derived and live-service rows, for both customers.
        for change_id, cid in enumerate((target, OTHER), start=1):
            s.con.execute("INSERT INTO clv_predictions (prediction_id, customer_id, p_alive) VALUES ('p1', ?, 0.5)",
                          [cid])
            s.con.execute("INSERT INTO recommendations (run_id, customer_id, rank, product_id) "
                          "VALUES ('r1', ?, 1, 'P1')", [cid])
            s.con.execute("INSERT INTO service_events (event_id, customer_id, event_type, payload) "
                          "VALUES (?, ?, 'page_view', '{}')", [f"e-{cid}", cid])
            s.con.execute("INSERT INTO segment_changes (change_id, customer_id, run_id, from_segment, to_segment) "
                          "VALUES (?, ?, 'r1', 'a', 'b')", [change_id, cid])
            s.con.execute("INSERT INTO campaign_assignments (campaign_id, customer_id, arm) VALUES ('X1', ?, 'test')",
                          [cid])
        # Rows without a customer id that are the target's by email (guest order with its line, email
        # event) and by a raw rejected row; and a guest order of the other customer by theirs.
        for oid, mail in (("G-T", f"  {email.upper()} "), ("G-O", other_email)):
            s.con.execute("INSERT INTO orders (order_id, email, order_time, status, total) "
                          "VALUES (?, ?, TIMESTAMP '2024-05-01', 'completed', 10)", [oid, mail])
            s.con.execute("INSERT INTO order_items (order_id, line_number, quantity, line_amount) "
                          "VALUES (?, 1, 1, 10)", [oid])
        s.con.execute("CREATE TABLE clean_orders AS SELECT * FROM orders")  # a persisted cleaning table
        s.con.execute("INSERT INTO email_events (event_id, email, event_time, event_type) "
                      "VALUES ('EE-T', ?, TIMESTAMP '2024-05-01', 'open')", [email])
        s.con.execute("INSERT INTO rejects (ingest_id, table_name, row_number, reason, raw_row) VALUES "
                      "(1, 'customers', 7, 'bad date', ?), (1, 'customers', 8, 'bad date', ?)",
                      [json.dumps({"Customer ID": target, "signup": "31/02/2024"}),
                       json.dumps({"Customer ID": f"{target}9", "signup": "31/02/2024"})])
    return path, target, email


@pytest.fixture
def demo(demo_db, tmp_path):
    """A private copy of the demo store per test."""
    path, target, email = demo_db
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(path.read_bytes())
    with Store(copy) as s:
        yield s, target, email


def _snapshot(s, target):
    """Row counts that must not change: every row of other customers, per table."""
    out = {}
    for t in _customer_tables(s):
        out[t] = _q(s, f'SELECT count(*) FROM "{t}" WHERE customer_id IS NOT NULL AND customer_id <> ?',
                    [target])[0][0]
    out["order_items (others' orders)"] = _q(s, """SELECT count(*) FROM order_items WHERE order_id IN
        (SELECT order_id FROM orders WHERE customer_id <> ? OR order_id = 'G-O')""", [target])[0][0]
    for t in ("products", "campaigns", "segment_runs", "clv_models", "ingest_log"):
        out[t] = s.count(t)
    return out


def test_delete_removes_every_row_of_the_customer(demo):
    s, target, email = demo
    devices = [r[0] for r in _q(s, "SELECT DISTINCT anonymous_id FROM browsing_events WHERE customer_id = ?",
                                [target])]
    anon = _q(s, "SELECT count(*) FROM browsing_events WHERE customer_id IS NULL AND anonymous_id IN "
                 "(SELECT unnest(?::VARCHAR[]))", [devices])[0][0]
    assert anon > 0
    n_orders = _q(s, "SELECT count(*) FROM orders WHERE customer_id = ?", [target])[0][0]
    n_items = _q(s, "SELECT count(*) FROM order_items WHERE order_id IN "
                    "(SELECT order_id FROM orders WHERE customer_id = ?)", [target])[0][0]
    before = _snapshot(s, target)
    nulls = {t: _q(s, f'SELECT count(*) FROM "{t}" WHERE customer_id IS NULL')[0][0] for t in _customer_tables(s)}
    preview = customer_rows(s, target)

    result = delete_customer(s, target, requested_by="0123456789abcdef")

    assert result["rows_deleted"] == preview
    assert result["total"] == sum(preview.values())
    assert set(preview) >= {
        "customers", "orders", "order_items", "browsing_events", "email_events", "customer_features",
        "segment_memberships", "rfm_scores", "clv_predictions", "recommendations", "service_events",
        "segment_changes", "campaign_assignments", "demo_personas", "clean_orders", "rejects"}
    assert preview["orders"] == n_orders + 1  # with the guest order under their email
    assert preview["order_items"] == n_items + 1
    assert preview["rejects"] == 1  # the row with the id, not the one with a longer id
    # Nothing of the target is left anywhere.
    for t in _customer_tables(s):
        assert _q(s, f'SELECT count(*) FROM "{t}" WHERE customer_id = ?', [target])[0][0] == 0, t
    for t in ("orders", "email_events", "clean_orders", "customers"):
        assert _q(s, f"SELECT count(*) FROM {t} WHERE lower(trim(email)) = ?", [email])[0][0] == 0, t
    assert _q(s, "SELECT count(*) FROM order_items WHERE order_id = 'G-T'")[0][0] == 0
    assert _q(s, "SELECT count(*) FROM browsing_events WHERE anonymous_id IN (SELECT unnest(?::VARCHAR[]))",
              [devices])[0][0] == 0
    assert _q(s, "SELECT count(*) FROM rejects WHERE raw_row LIKE ?", [f'%"{target}"%'])[0][0] == 0
    # Everything of everybody else is still there; rows without an id lost only the target's ones.
    assert _snapshot(s, target) == before
    nulls_after = {t: _q(s, f'SELECT count(*) FROM "{t}" WHERE customer_id IS NULL')[0][0]
                   for t in _customer_tables(s)}
    lost = {t: nulls[t] - nulls_after[t] for t in nulls if nulls[t] != nulls_after[t]}
    assert lost == {"browsing_events": anon, "orders": 1, "clean_orders": 1, "email_events": 1}
    assert _q(s, "SELECT count(*) FROM orders WHERE order_id = 'G-O'")[0][0] == 1


def test_deletion_log_keeps_no_id(demo):
    s, target, email = demo
    result = delete_customer(s, target, requested_by="cli")
    rows = _q(s, "SELECT * FROM deletion_log")
    assert len(rows) == 1
    deletion_id, customer_hash, deleted_at, requested_by, rows_deleted = rows[0]
    assert deletion_id == result["deletion_id"] and requested_by == "cli" and deleted_at is not None
    assert target not in repr(rows) and email not in repr(rows)
    assert json.loads(rows_deleted) == result["rows_deleted"]
    scheme, salt, digest = customer_hash.split("$")
    assert (scheme, len(salt), len(digest)) == ("sha256", 32, 64)
    assert was_deleted(s, target) == [deletion_id]
    assert was_deleted(s, OTHER) == []
    log = deletion_log(s)
    assert log["total"].tolist() == [result["total"]] and "customer_hash" not in log.columns


def test_unknown_customer_is_a_clear_error(demo):
    s, _, _ = demo
    counts = {t: s.count(t) for t in ("customers", "orders", "deletion_log")}
    with pytest.raises(ValueError, match="no customer 'NOPE' in store .*nothing was deleted"):
        delete_customer(s, "NOPE")
    with pytest.raises(ValueError, match="no customer 'NOPE'"):
        customer_rows(s, "NOPE")
    with pytest.raises(ValueError, match="non-empty string"):
        delete_customer(s, "")
    assert {t: s.count(t) for t in counts} == counts


def test_second_deletion_is_unknown(demo):
    s, target, _ = demo
    delete_customer(s, target)
    with pytest.raises(ValueError, match=f"no customer '{target}'"):
        delete_customer(s, target)
    assert s.count("deletion_log") == 1


def test_failed_deletion_changes_nothing(demo, monkeypatch):
    s, target, _ = demo
    from custseg.service import privacy

    real = privacy.hash_customer_id

    def broken(*a, **k):
        raise RuntimeError("disk full")

    before = {t: s.count(t) for t in ("customers", "orders", "order_items", "browsing_events")}
    monkeypatch.setattr(privacy, "hash_customer_id", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        delete_customer(s, target)
    monkeypatch.setattr(privacy, "hash_customer_id", real)
    assert {t: s.count(t) for t in before} == before
    assert s.count("deletion_log") == 0


def test_shared_email_and_device_are_kept():
    with Store(":memory:") as s:
        s.con.execute("INSERT INTO customers (customer_id, email) VALUES ('A', 'home@x.org'), ('B', 'home@x.org')")
        s.con.execute("INSERT INTO orders (order_id, email, order_time, status, total) VALUES "
                      "('g1', 'home@x.org', TIMESTAMP '2024-01-01', 'completed', 5)")
        s.con.execute("INSERT INTO browsing_events (event_id, customer_id, anonymous_id, event_time, event_type) "
                      "VALUES ('1', 'A', 'dev', TIMESTAMP '2024-01-01', 'login'), "
                      "('2', 'B', 'dev', TIMESTAMP '2024-01-01', 'login'), "
                      "('3', NULL, 'dev', TIMESTAMP '2024-01-01', 'page_view')")
        result = delete_customer(s, "A")
        assert result["rows_deleted"] == {"customers": 1, "browsing_events": 1}
        assert s.count("orders") == 1 and s.count("browsing_events") == 2


def test_hash_is_salted():
    assert hash_customer_id("C1") != hash_customer_id("C1")
    assert hash_customer_id("C1", bytes(16)) == hash_customer_id("C1", bytes(16))


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli():
    app = typer.Typer()
    register(app)
    return app


def test_cli_privacy(cli, demo):
    s, target, _ = demo
    db = s.path
    s.close()
    runner = CliRunner()
    r = runner.invoke(cli, ["privacy", "log", "--db", db])
    assert r.exit_code == 0 and "no deletions yet" in r.output
    r = runner.invoke(cli, ["privacy", "delete", target, "--db", db], input="n\n")
    assert r.exit_code == 1 and "Aborted" in r.output and "order_items" in r.output
    with Store(db) as again:
        assert again.count("deletion_log") == 0
    r = runner.invoke(cli, ["privacy", "delete", target, "--db", db], input="y\n")
    assert r.exit_code == 0, r.output
    assert "deleted" in r.output and "logged as del-" in r.output
    r = runner.invoke(cli, ["privacy", "delete", target, "--yes", "--db", db])
    assert r.exit_code == 1 and f"no customer '{target}'" in r.output
    r = runner.invoke(cli, ["privacy", "log", "--db", db])
    assert r.exit_code == 0 and "del-" in r.output and target not in r.output
    r = runner.invoke(cli, ["privacy", "delete", OTHER, "-y", "--db", db])
    assert r.exit_code == 0, r.output
    with Store(db) as again:
        assert again.count("deletion_log") == 2
