"""Property-based fuzz of the CLI: whatever a user types or feeds, the answer is exit 0
or 2 with a message, never a traceback, and nothing is written outside the run folder.

Bounded (a few dozen examples each) so that it costs seconds; hypothesis keeps the
failing example in its database for the next run.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from alphaseq.cli import app

runner = CliRunner()

KEYS = [
    "name",
    "mode",
    "task",
    "data.start",
    "data.end",
    "data.min_history",
    "data.date_format",
    "data.timezone",
    "features.names",
    "features.scaler",
    "labels.horizons",
    "labels.cross_section",
    "windows.lookback",
    "windows.stride",
    "model.name",
    "model.params",
    "model.ensemble",
    "training.epochs",
    "training.batch_size",
    "training.learning_rate",
    "training.device",
    "training.dates_per_batch",
    "validation.train_months",
    "validation.embargo_days",
    "portfolio.top_k",
    "portfolio.cost_bps",
    "portfolio.constructors",
    "unknown.key",
]
YAML_FRAGMENTS = st.sampled_from(
    [
        "true", "null", "-1", "0", "1e309", "nan", ".inf", "[]", "{}", "[1, 2", "{a: 1",
        "*alias", "&a [*a]", "!!python/object:os.system ls", "2014-02-30", "31/01/2014",
        "3000-01-01", "'=cmd|calc'", "../../etc", "/tmp/x", "lstm", "gat", "rank", "auto",
        "{name: ridge}", "[{name: lstm, params: {hidden_size: -3}}]", "\\x00", "~",
    ]
)  # fmt: skip
VALUES = st.one_of(
    YAML_FRAGMENTS,
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=24),
)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@settings(
    max_examples=int(os.environ.get("ALPHASEQ_FUZZ_EXAMPLES", 30)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3))
def test_run_overrides_never_give_a_traceback(tmp_path_factory, overrides):
    work = tmp_path_factory.mktemp("fuzz")
    before = _files(work)
    args = ["run", "ci", "--dry-run"]
    for key, value in overrides:
        args += ["--set", f"{key}={value}"]
    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = runner.invoke(app, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    assert "Traceback" not in result.output, args
    assert _files(work) == before, args  # a dry run writes nothing, anywhere


CELLS = st.one_of(
    st.sampled_from(
        [
            "2014-01-02", "2014-01-03", "01/02/2014", "31/01/2014", "2014-02-30", "", "NaN",
            "AAPL", "=SUM(A1)", "1e39", "-5", "0", "inf", "1.5", "2014-03-09T00:00:00-05:00",
            "3000-01-01", "true", '"', ",",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)  # fmt: skip


@settings(
    max_examples=int(os.environ.get("ALPHASEQ_FUZZ_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=st.sampled_from(
        ["date,ticker,close", "Date,Symbol,Close,Volume", "date,close", "date,A,B", "x,y"]
    ),
    rows=st.lists(st.lists(CELLS, min_size=1, max_size=4), max_size=8),
)
def test_malformed_data_files_never_give_a_traceback(tmp_path_factory, header, rows):
    work = tmp_path_factory.mktemp("data")
    path = work / "prices.csv"
    path.write_text(header + "\n" + "\n".join(",".join(row) for row in rows) + "\n")
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code in (0, 2), (header, rows, result.output, result.exception)
    assert "Traceback" not in result.output
    assert _files(work) == {path}
