"""Ingest from a throw-away PostgreSQL server (initdb + pg_ctl on 127.0.0.1, a free port)."""

from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli.main import app
from custseg.sources import IngestError, ingest_postgres
from custseg.store.schema import INGESTIBLE

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ORDERS_MAP = {
    "table": "orders",
    "columns": {
        "order_id": "order_ref",
        "customer_id": "customer",
        "order_time": "placed_at",
        "status": {"column": "state", "values": {"paid": "completed", "refunded": "returned"}},
        "total": "amount",
        "currency": {"value": "EUR"},
    },
}


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_dsn():
    """A PostgreSQL server with tables ``shop_orders`` and ``sales.orders``; yields its DSN."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb) in PATH or /usr/lib/postgresql/*/bin")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run the server as the 'postgres' system user.
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser") or shutil.which("su")
        prefix = [runuser, "-u", "postgres", "--"] if runuser and runuser.endswith("runuser") else ["su", "postgres", "-c"]
    base = Path(tempfile.mkdtemp(prefix="custseg-pg-"))
    data, log = base / "data", base / "server.log"
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*args: str) -> None:
        cmd = [*prefix, *args] if prefix[:1] != ["su"] else [*prefix, shlex.join(args)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", f"-p {port} -h 127.0.0.1 -k {base} -F", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')}")
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres password=not-recorded"
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE shop_orders (order_ref text, customer text, placed_at timestamptz, state text,
                                      amount numeric(10, 2), note text);
            INSERT INTO shop_orders VALUES
              ('A1', 'C1', '2024-03-05 14:22:10+01', 'paid', 19.90, NULL),
              ('A2', 'C2', '2024-03-06 09:00:00+00', 'refunded', 5.00, 'gift, wrapped'),
              ('A3', NULL, '2024-03-07 10:00:00+00', 'paid', 7.50, 'guest'),
              ('A4', 'C1', '2024-03-08 12:00:00+00', 'lost', 3.00, NULL);
            CREATE SCHEMA sales;
            CREATE TABLE sales.orders AS SELECT order_ref AS order_id, customer AS customer_id,
                   placed_at::timestamp AS order_time, 'completed'::text AS status, amount::float8 AS total
            FROM shop_orders;
        """)
    yield dsn
    try:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def snapshot(store) -> dict[str, int]:
    return {t: store.count(t) for t in [*INGESTIBLE, "rejects", "ingest_log"]}


def test_ingest_from_table(store, pg_dsn):
    r = ingest_postgres(store, pg_dsn, table="shop_orders", mapping=ORDERS_MAP)
    assert (r.read, r.accepted, r.rejected, r.duplicate) == (4, 3, 1, 0)
    got = store.con.execute("SELECT order_id, customer_id, order_time, status, total FROM orders ORDER BY 1").fetchall()
    assert got == [
        ("A1", "C1", dt.datetime(2024, 3, 5, 13, 22, 10), "completed", 19.9),  # timestamptz in UTC
        ("A2", "C2", dt.datetime(2024, 3, 6, 9, 0), "returned", 5.0),
        ("A3", None, dt.datetime(2024, 3, 7, 10, 0), "completed", 7.5),
    ]
    rej = store.con.execute("SELECT source, row_number, column_name, raw_value FROM rejects").fetchall()
    assert rej[0][1:] == (4, "state", "lost")
    assert rej[0][0].startswith("postgresql://postgres@127.0.0.1:") and rej[0][0].endswith("/postgres table shop_orders")
    log = store.con.execute("SELECT file, options FROM ingest_log").fetchall()
    assert "not-recorded" not in repr(log)


def test_ingest_from_query_and_schema_table(store, pg_dsn):
    q = "SELECT order_ref AS order_id, customer AS customer_id, placed_at AS order_time, 'completed' AS status, amount AS total FROM shop_orders WHERE note IS NOT NULL;"
    r = ingest_postgres(store, pg_dsn, query=q, target_table="orders")
    assert (r.read, r.accepted) == (2, 2)
    assert store.con.execute("SELECT order_id FROM orders ORDER BY 1").fetchall() == [("A2",), ("A3",)]
    again = ingest_postgres(store, pg_dsn, table="sales.orders", target_table="orders")
    assert (again.read, again.accepted, again.duplicate) == (4, 2, 2)
    assert store.count("orders") == 4


def test_postgres_errors_leave_store_unchanged(store, pg_dsn):
    before = snapshot(store)
    with pytest.raises(IngestError, match='relation "no_such_table" does not exist'):
        ingest_postgres(store, pg_dsn, table="no_such_table", target_table="orders")
    with pytest.raises(IngestError, match="required column 'order_time' .*is missing"):
        ingest_postgres(store, pg_dsn, query="SELECT order_ref AS order_id FROM shop_orders", target_table="orders")
    with pytest.raises(IngestError, match="give exactly one of a source table or a query"):
        ingest_postgres(store, pg_dsn, table="shop_orders", query="SELECT 1", target_table="orders")
    assert snapshot(store) == before


def test_cli_ingest_postgres(tmp_path, pg_dsn):
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(app, ["ingest-postgres", "orders", "--dsn", pg_dsn, "--source-table", "sales.orders", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "│ orders │    4 │        4 │        0 │         0 │" in result.output
