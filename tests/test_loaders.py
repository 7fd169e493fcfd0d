"""Loaders: layouts, aliases, adjustment, repairs, and the real reference panels."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from alphaseq import load_panel
from alphaseq.data import Panel


def long_frame() -> pd.DataFrame:
    """Two tickers over four days; BBB starts late."""
    return pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2020-01-02", "2020-01-02", "2020-01-03", "2020-01-03", "2020-01-06", "2020-01-07"]
            ),
            "ticker": ["AAA", "BBB", "AAA", "BBB", "AAA", "AAA"],
            "open": [10.0, 20.0, 11.0, 21.0, 12.0, 13.0],
            "high": [10.5, 20.5, 11.5, 21.5, 12.5, 13.5],
            "low": [9.5, 19.5, 10.5, 20.5, 11.5, 12.5],
            "close": [10.2, 20.2, 11.2, 21.2, 12.2, 13.2],
            "volume": [100.0, 200.0, 110.0, 210.0, 120.0, 130.0],
        }
    )


def test_long_dataframe_becomes_dense_arrays():
    panel = load_panel(long_frame())
    assert panel.shape == (4, 2)
    assert panel.tickers.tolist() == ["AAA", "BBB"]
    assert panel.close.dtype == np.float32
    np.testing.assert_allclose(panel.close[:, 0], [10.2, 11.2, 12.2, 13.2], rtol=1e-6)
    # BBB stops after two days: NaN and masked afterwards, not an error
    assert panel.mask[:, 1].tolist() == [True, True, False, False]
    assert panel.has_ohlc and panel.has_volume
    assert [r.kind for r in panel.repairs] == []


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_long_file_round_trip(tmp_path, suffix):
    frame = long_frame()
    path = tmp_path / f"prices{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    panel = load_panel(path)
    expected = load_panel(frame)
    np.testing.assert_array_equal(panel.close, expected.close)
    np.testing.assert_array_equal(panel.fields["volume"], expected.fields["volume"])
    assert panel.name == path.name
    assert panel.meta["source"] == str(path)


def test_column_aliases_and_case(tmp_path):
    frame = long_frame().rename(
        columns={"date": "Date", "ticker": "Symbol", "close": "CLOSE", "volume": "Volume"}
    )
    frame["Name"] = "company name"  # a second ticker-like column loses to 'Symbol'
    path = tmp_path / "aliases.csv"
    frame.to_csv(path, index=False)
    panel = load_panel(path)
    assert panel.tickers.tolist() == ["AAA", "BBB"]
    assert panel.has_volume


def test_adj_close_scales_ohlc(tmp_path):
    frame = long_frame()
    frame["Adj Close"] = frame["close"] * 0.5
    panel = load_panel(frame)
    np.testing.assert_allclose(panel.close[:, 0], [5.1, 5.6, 6.1, 6.6], rtol=1e-6)
    np.testing.assert_allclose(panel.fields["open"][:, 0], [5.0, 5.5, 6.0, 6.5], rtol=1e-6)
    np.testing.assert_allclose(panel.fields["high"][:, 0], [5.25, 5.75, 6.25, 6.75], rtol=1e-6)
    assert panel.meta["adjusted"] is True


def test_wide_csv_is_close_prices(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(
        "Date,AAA,BBB,LOW\n2020-01-02,1,2,3\n2020-01-03,1.1,,3.3\n2020-01-06,1.2,2.2,3.6\n"
    )
    panel = load_panel(path)
    assert panel.tickers.tolist() == ["AAA", "BBB", "LOW"]  # Lowe's is a ticker, not a field
    assert list(panel.fields) == ["close"]
    assert not panel.mask[1, 1]  # a gap inside BBB's life
    gaps = [r for r in panel.repairs if r.kind == "gaps"]
    assert gaps and gaps[0].count == 1 and "BBB on 2020-01-03" in gaps[0].detail


def test_wide_dataframe_with_date_index():
    frame = pd.DataFrame(
        {"AAA": [1.0, 1.1, 1.2], "BBB": [2.0, 2.1, 2.2]},
        index=pd.DatetimeIndex(["2021-03-01", "2021-03-02", "2021-03-03"], name="Date"),
    )
    panel = load_panel(frame)
    assert panel.shape == (3, 2)
    assert str(panel.dates[0])[:10] == "2021-03-01"


def test_single_instrument_file_named_after_file(tmp_path):
    path = tmp_path / "SPY.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02,10,11,9,10,5,100\n2020-01-03,10,11,9,10.5,5.25,100\n"
    )
    panel = load_panel(path)
    assert panel.tickers.tolist() == ["SPY"]
    np.testing.assert_allclose(panel.close[:, 0], [5.0, 5.25])
    np.testing.assert_allclose(panel.fields["high"][:, 0], [5.5, 5.5])


def test_calendar_is_union_of_dates():
    frame = long_frame()
    frame.loc[len(frame)] = [pd.Timestamp("2020-01-08"), "BBB", 1.0, 1.0, 1.0, 1.0, 1.0]
    panel = load_panel(frame)
    assert panel.n_dates == 5
    assert not panel.mask[4, 0] and panel.mask[4, 1]


def test_unsorted_rows_are_sorted_and_logged(caplog):
    frame = long_frame().iloc[::-1].reset_index(drop=True)
    with caplog.at_level(logging.INFO, logger="alphaseq"):
        panel = load_panel(frame)
    np.testing.assert_array_equal(panel.close, load_panel(long_frame()).close)
    repair = next(r for r in panel.repairs if r.kind == "unsorted_rows")
    assert repair.count == 5
    assert "not sorted" in caplog.text and "5 rows out of order" in caplog.text


def test_non_positive_and_infinite_prices_become_missing_with_counts(caplog):
    frame = long_frame()
    frame.loc[1, "close"] = 0.0
    frame.loc[2, "low"] = -1.0
    frame.loc[3, "high"] = np.inf
    frame.loc[4, "volume"] = -5.0
    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        panel = load_panel(frame)
    kinds = {r.kind: r for r in panel.repairs}
    assert kinds["non_positive_price"].count == 2
    assert "close: 1" in kinds["non_positive_price"].detail
    assert "low: 1" in kinds["non_positive_price"].detail
    assert kinds["infinite_value"].count == 1
    assert kinds["negative_volume"].count == 1
    assert np.isnan(panel.close[0, 1]) and not panel.mask[0, 1]
    assert np.isnan(panel.fields["low"][1, 0])
    assert "zero or negative price" in caplog.text


def test_short_tickers_are_excluded_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        panel = load_panel(long_frame(), min_history=3)
    assert panel.tickers.tolist() == ["AAA"]
    repair = next(r for r in panel.repairs if r.kind == "short_history")
    assert repair.count == 1 and "BBB" in repair.detail
    assert "fewer than 3 valid closes" in caplog.text


def test_benchmark_ticker_is_taken_out_of_the_universe():
    panel = load_panel(long_frame(), benchmark="BBB")
    assert panel.tickers.tolist() == ["AAA"]
    assert panel.benchmark_name == "BBB"
    np.testing.assert_allclose(panel.benchmark[:2], [20.2, 21.2], rtol=1e-6)


def test_embedded_sp500_needs_no_file():
    panel = load_panel("sp500")
    assert panel.n_tickers == 20
    assert str(panel.dates[0])[:10] == "1990-01-02"
    assert str(panel.dates[-1])[:4] == "2022"
    assert panel.benchmark is not None and np.isfinite(panel.benchmark).all()
    assert panel.benchmark_name == "S&P 500 index"
    assert "survivorship_bias" in panel.meta
    assert "AAPL" in panel.tickers


def test_panel_selection_and_frame_round_trip():
    panel = load_panel(long_frame())
    again = load_panel(panel.to_frame())
    np.testing.assert_array_equal(again.close, panel.close)
    assert again.fingerprint() == panel.fingerprint()
    part = panel.slice_dates("2020-01-03", "2020-01-06")
    assert part.n_dates == 2
    assert part.fingerprint() != panel.fingerprint()
    assert panel.select_tickers(["BBB"]).tickers.tolist() == ["BBB"]


def test_panel_lifetime():
    panel = load_panel(long_frame())
    first, last = panel.lifetime()
    assert first.tolist() == [0, 0] and last.tolist() == [3, 1]
    assert isinstance(panel, Panel) and "tickers=2" in repr(panel)


# ------------------------------------------------------------ real reference panels
def test_us600_panel(us600_path):
    panel = load_panel(us600_path)
    assert panel.shape == (3239, 600)
    assert panel.has_ohlc and panel.has_volume
    assert int(panel.mask.sum()) == 1_769_839 - 0  # every row has a positive close
    kinds = {r.kind: r.count for r in panel.repairs}
    assert kinds["non_positive_price"] == 1  # the one zero low in the file
    assert kinds["gaps"] > 0
    first, last = panel.lifetime()
    assert (first > 0).any() and (last < panel.n_dates - 1).any()  # dynamic universe


def test_sp500_5yr_panel_with_nan_opens(sp500_5yr_path):
    panel = load_panel(sp500_5yr_path, min_history=81)
    assert panel.n_tickers == 504  # APTV has too little history for one labelled sample
    assert np.isnan(panel.fields["open"][panel.mask]).sum() > 0  # NaN opens kept as missing
    assert any(r.kind == "short_history" and "APTV" in r.detail for r in panel.repairs)


def test_spy_single_ticker_long_file(spy_path):
    panel = load_panel(spy_path)
    assert panel.tickers.tolist() == ["SPY"]
    assert panel.n_dates == 3201
