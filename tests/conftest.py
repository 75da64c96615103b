"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from custseg import Store

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def store(tmp_path):
    """A fresh store in a temporary file."""
    s = Store(tmp_path / "test.duckdb")
    yield s
    s.close()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the checkout; skip when a user's clone lacks it."""
    if not (SHARED_DATA / "CDNOW_master.txt").exists():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present beside the team's checkout)")
    return SHARED_DATA
