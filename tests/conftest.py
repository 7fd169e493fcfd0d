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


def ci_config(*overrides: str):
    """The packaged tiny ``ci`` experiment with ``dotted.key=value`` overrides."""
    from alphaseq.cli import _config_values
    from alphaseq.config import apply_overrides, parse_config

    values, _ = _config_values("ci")
    return parse_config(apply_overrides(values, list(overrides)))


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """One finished ``ci`` run shared by every test that only reads it (they are costly).

    Tests must not change its files; copy the directory first (``shutil.copytree``).
    """
    from alphaseq.experiment import run

    return run(ci_config(), tmp_path_factory.mktemp("shared-runs") / "ci")
