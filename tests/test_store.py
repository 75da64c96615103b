"""The store file: creation, versioned migrations, transactions."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from custseg import Store
from custseg.store import SCHEMA_VERSION, StoreError
from custseg.store.migrations import migration_sql


def _make_v1_file(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
    for stmt in migration_sql(1):
        con.execute(stmt)
    con.execute("INSERT INTO schema_version VALUES (1, now()::TIMESTAMP)")
    con.execute("INSERT INTO products (product_id, name, price) VALUES ('p1', 'cheap', 1), ('p2', 'mid', 50), ('p3', 'dear', 900)")
    con.close()


def test_new_store_has_every_table_at_current_version(store):
    assert store.schema_version == SCHEMA_VERSION
    for name in ("customers", "orders", "order_items", "rejects", "ingest_log", "segment_runs",
                 "segment_memberships", "currency_rates", "demo_personas"):
        assert store.has_table(name)


def test_older_store_file_opens_and_is_migrated(tmp_path):
    path = tmp_path / "v1.duckdb"
    _make_v1_file(path)
    with Store(path) as store:
        assert store.migrations_applied == list(range(2, SCHEMA_VERSION + 1))
        assert store.schema_version == SCHEMA_VERSION == 6
        assert store.has_table("clv_models") and store.has_table("clv_predictions")
        products = store.to_pandas("products").sort_values("product_id")
        assert products.name.tolist() == ["cheap", "mid", "dear"]  # data kept
        assert products.price_tier.tolist() == ["budget", "mid", "premium"]  # v2 filled it
        assert store.has_table("currency_rates")
        # Appending by name works although price_tier sits last physically.
        store.append("products", pd.DataFrame({"product_id": ["p4"], "price": [3.0], "price_tier": ["budget"]}))
        assert store.count("products") == 4
    with Store(path) as store:
        assert store.migrations_applied == []


def test_newer_store_is_refused(tmp_path):
    path = tmp_path / "future.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (99, now()::TIMESTAMP)")
    con.close()
    with pytest.raises(RuntimeError, match="newer than this custseg"):
        Store(path)


def test_transaction_is_all_or_nothing(store):
    with pytest.raises(ZeroDivisionError):
        with store.transaction() as con:
            con.execute("INSERT INTO campaigns (campaign_id) VALUES ('x')")
            1 / 0
    assert store.count("campaigns") == 0


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "x.duckdb")
    with pytest.raises(StoreError, match="custseg init"):
        Store(tmp_path / "absent.duckdb", read_only=True)


def test_memory_limit_is_applied_and_validated(tmp_path, monkeypatch):
    with Store(tmp_path / "a.duckdb", memory_limit="512MB") as store:
        limit = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert limit.replace(" ", "").lower().startswith(("488", "512"))
    monkeypatch.setenv("CUSTSEG_MEMORY_LIMIT", "lots")
    with pytest.raises(StoreError, match="memory limit 'lots'"):
        Store(tmp_path / "b.duckdb")
