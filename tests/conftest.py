"""Shared fixtures: where the reference panels live and how their absence is handled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRE_SHARED = os.environ.get("ALPHASEQ_REQUIRE_SHARED_DATA") == "1"


def shared_file(name: str) -> Path:
    """Path of a reference panel; skip (or fail in CI) when ../shared/data is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        reason = f"reference panel {path} is absent (it lives in ../shared/data beside the repo)"
        if REQUIRE_SHARED:
            pytest.fail(reason + " and ALPHASEQ_REQUIRE_SHARED_DATA=1 requires it")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def us600_path() -> Path:
    return shared_file("us_stocks_600_2005_2017.parquet")


@pytest.fixture(scope="session")
def sp500_5yr_path() -> Path:
    return shared_file("sp500_5yr_2013_2018.parquet")


@pytest.fixture(scope="session")
def spy_path() -> Path:
    return shared_file("spy_1999_2017.parquet")
