"""The central store (DuckDB file) and its canonical schema."""

from custseg.store.migrations import SCHEMA_VERSION
from custseg.store.store import DEFAULT_DB, Store, StoreError, open_store

__all__ = ["DEFAULT_DB", "SCHEMA_VERSION", "Store", "StoreError", "open_store"]
