"""Reading trading dates: day-first ambiguity, offsets and timezones, out-of-range dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaseq.cli import app
from alphaseq.data import load_panel
from alphaseq.errors import DataError


def prices(dates) -> pd.DataFrame:
    return pd.DataFrame({"date": dates, "ticker": "A", "close": np.arange(1.0, len(dates) + 1)})


def days(panel) -> list[str]:
    return [str(d)[:10] for d in panel.dates]


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["30/01/2014", "31/01/2014"], "written day-first (row 1: '30/01/2014'); set "
         "data.date_format: '%d/%m/%Y'"),
        (["01/02/2014", "02/02/2014"], "could be day-first or month-first; set "
         "data.date_format: '%d/%m/%Y' or '%m/%d/%Y'"),
        (["31.01.2014", "01.31.2014"], "mixes day-first (row 1: '31.01.2014') and month-first"),
        (["2014-01-02", "3000-01-01"], "lie outside 1677-09-22 to 2262-04-11 (row 2: 3000-01-01)"),
        (["2014-01-02", "banana"], "are not dates (row 2: 'banana')"),
    ],
)  # fmt: skip
def test_dates_that_cannot_be_read_safely_are_refused_with_the_fix(dates, message):
    with pytest.raises(DataError) as error:
        load_panel(prices(dates))
    assert message in str(error.value)


def test_a_date_format_reads_day_first_dates():
    panel = load_panel(prices(["30/01/2014", "31/01/2014", "03/02/2014"]), date_format="%d/%m/%Y")
    assert days(panel) == ["2014-01-30", "2014-01-31", "2014-02-03"]
    # month-first dates that say so themselves need no format
    assert days(load_panel(prices(["01/30/2014", "01/31/2014"]))) == ["2014-01-30", "2014-01-31"]


def test_offsets_keep_the_local_trading_day():
    """New York midnight is 05:00 (or 04:00 in summer) UTC: converting to UTC first
    would keep the day, but a Tokyo-midnight stamp would move to the day before."""
    new_york = ["2014-03-07T00:00:00-05:00", "2014-03-10T00:00:00-04:00"]  # DST between
    assert days(load_panel(prices(new_york))) == ["2014-03-07", "2014-03-10"]
    tokyo = ["2014-03-07T00:00:00+09:00", "2014-03-10T00:00:00+09:00"]
    assert days(load_panel(prices(tokyo))) == ["2014-03-07", "2014-03-10"]
    # with data.timezone the offsets are converted to that exchange's calendar
    utc_close = ["2014-03-07T21:00:00+00:00", "2014-03-10T20:00:00+00:00"]
    assert days(load_panel(prices(utc_close), timezone="America/New_York")) == [
        "2014-03-07",
        "2014-03-10",
    ]
    assert days(load_panel(prices(utc_close), timezone="Asia/Tokyo")) == [
        "2014-03-08",
        "2014-03-11",
    ]


def test_timezone_aware_columns_use_their_own_calendar_unless_told():
    stamps = pd.Series(pd.to_datetime(["2014-03-07", "2014-03-10"]).tz_localize("Asia/Tokyo"))
    frame = pd.DataFrame({"date": stamps, "ticker": "A", "close": [1.0, 2.0]})
    assert days(load_panel(frame)) == ["2014-03-07", "2014-03-10"]
    assert days(load_panel(frame, timezone="America/New_York")) == ["2014-03-06", "2014-03-09"]


def test_parquet_microsecond_dates_beyond_2262_do_not_wrap_around(tmp_path):
    frame = pd.DataFrame(
        {
            "date": np.array(["2014-01-02", "2999-01-01"], dtype="datetime64[us]"),
            "ticker": "A",
            "close": [1.0, 2.0],
        }
    )
    path = tmp_path / "far.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match="lie outside 1677-09-22 to 2262-04-11"):
        load_panel(path)


def test_config_date_options_reach_the_loader(tmp_path):
    rows = pd.bdate_range("2014-01-01", periods=3)
    frame = pd.DataFrame(
        {
            "date": np.repeat([d.strftime("%d/%m/%Y") for d in rows], 2),
            "ticker": ["A", "B"] * 3,
            "close": [1.0, 2.0, 1.1, 2.1, 1.2, 2.2],
        }
    )
    path = tmp_path / "dayfirst.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["run", "ci", "--set", f"data.source={path}"])
    assert refused.exit_code == 2 and "data.date_format" in refused.output
    bad_zone = runner.invoke(app, ["run", "ci", "--set", "data.timezone=Mars/Olympus"])
    assert bad_zone.exit_code == 2 and "unknown timezone 'Mars/Olympus'" in bad_zone.output
    from alphaseq.config import parse_config
    from alphaseq.experiment import load_run_panel

    config = parse_config({"data": {"source": str(path), "date_format": "%d/%m/%Y"}})
    assert days(load_run_panel(config)) == [d.strftime("%Y-%m-%d") for d in rows]


def test_data_check_counts_weekend_dates_and_tickers_that_stop_trading(tmp_path):
    dates = pd.bdate_range("2014-01-01", periods=120)
    dates = dates.append(pd.DatetimeIndex(["2014-06-21"]))  # a Saturday
    n = len(dates)
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, 2),
            "ticker": ["LIVE", "DEAD"] * n,
            "close": np.ravel(
                [np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n))), np.full(n, 5.0)],
                order="F",
            ),
        }
    )
    path = tmp_path / "suspended.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["data", "check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.output)
    assert summary["weekend_dates"] == ["2014-06-21"]
    assert [s["ticker"] for s in summary["stale_tickers"]] == ["DEAD"]
    assert summary["stale_tickers"][0]["days"] == n - 1


def test_exclude_stale_drops_the_suspended_ticker_and_records_it(tmp_path):
    from alphaseq.config import parse_config
    from alphaseq.experiment import load_run_panel

    dates = pd.bdate_range("2014-01-01", periods=120)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, 3),
            "ticker": ["A", "B", "DEAD"] * len(dates),
            "close": np.ravel(
                [
                    np.exp(np.cumsum(rng.normal(0, 0.01, len(dates)))),
                    np.exp(np.cumsum(rng.normal(0, 0.01, len(dates)))),
                    np.full(len(dates), 5.0),
                ],
                order="F",
            ),
        }
    )
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    kept = load_run_panel(parse_config({"data": {"source": str(path)}}))
    assert kept.tickers.tolist() == ["A", "B", "DEAD"]  # off by default
    panel = load_run_panel(parse_config({"data": {"source": str(path), "exclude_stale": True}}))
    assert panel.tickers.tolist() == ["A", "B"]
    assert any(r.kind == "stale_tickers" and "DEAD" in r.detail for r in panel.repairs)


def test_date_format_given_on_the_command_line(tmp_path):
    frame = prices(["30/01/2014", "31/01/2014", "03/02/2014"])
    path = tmp_path / "dayfirst.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["data", "check", str(path)])
    assert refused.exit_code == 2 and "(data check: --date-format)" in refused.output
    checked = runner.invoke(app, ["data", "check", str(path), "--date-format", "%d/%m/%Y"])
    assert checked.exit_code == 0 and "2014-01-30 .. 2014-02-03" in checked.output
    # unquoted on --set: YAML cannot read '%d/%m/%Y', so it is the string as typed
    from alphaseq.config import apply_overrides

    assert apply_overrides({}, ["data.date_format=%d/%m/%Y"]) == {
        "data": {"date_format": "%d/%m/%Y"}
    }
