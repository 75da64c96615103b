"""Seeded demo data: a realistic online shop with planted personas, and its exports."""

from custseg.datasets.demo import (
    CATEGORIES,
    PERSONAS,
    WINBACK_ID,
    DemoStore,
    load_demo,
    make_store,
)
from custseg.datasets.exports import ExportFiles, read_manifest, write_exports

__all__ = [
    "CATEGORIES",
    "PERSONAS",
    "WINBACK_ID",
    "DemoStore",
    "ExportFiles",
    "load_demo",
    "make_store",
    "read_manifest",
    "write_exports",
]
