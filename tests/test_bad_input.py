"""Every bad input gets one clear message that says what is wrong and where."""

from __future__ import annotations

import pandas as pd
import pytest

from alphaseq import DataError, load_panel


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(source, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_panel(source, **kwargs)
    return str(info.value)


def test_missing_close_column_names_it_and_lists_columns(tmp_path):
    path = write(tmp_path, "p.csv", "date,ticker,open,volume\n2020-01-02,AAA,1,10\n")
    message = error_of(path)
    assert "'close'" in message and "p.csv" in message
    assert "['date', 'ticker', 'open', 'volume']" in message


def test_missing_date_column(tmp_path):
    path = write(tmp_path, "p.csv", "when,ticker,close\nx,AAA,1\n")
    message = error_of(path)
    assert "no date column" in message and "'when'" in message


def test_non_numeric_value_names_ticker_date_and_value(tmp_path):
    path = write(
        tmp_path,
        "p.csv",
        "date,ticker,close\n2020-01-02,AAA,1.5\n2020-01-02,BBB,n/a?\n2020-01-03,AAA,1.6\n",
    )
    message = error_of(path)
    assert "'close'" in message and "non-numeric" in message
    assert "BBB" in message and "2020-01-02" in message and "'n/a?'" in message


def test_non_numeric_value_in_wide_file(tmp_path):
    path = write(tmp_path, "w.csv", "Date,AAA,BBB\n2020-01-02,1,2\n2020-01-03,1.1,oops\n")
    message = error_of(path)
    assert "BBB" in message and "2020-01-03" in message and "'oops'" in message


def test_unparseable_date(tmp_path):
    path = write(tmp_path, "p.csv", "date,ticker,close\n2020-01-02,AAA,1\nnot a date,AAA,2\n")
    message = error_of(path)
    assert "not dates" in message and "row 2" in message and "'not a date'" in message


def test_duplicate_rows_counted_with_examples(tmp_path):
    path = write(
        tmp_path,
        "p.csv",
        "date,ticker,close\n2020-01-02,AAA,1\n2020-01-02,AAA,1.1\n2020-01-03,AAA,1\n"
        "2020-01-03,BBB,2\n2020-01-03,BBB,2\n",
    )
    message = error_of(path)
    assert "2 duplicate (date, ticker) rows" in message
    assert "AAA on 2020-01-02" in message and "rows 1 and 2" in message


def test_duplicate_dates_in_wide_file(tmp_path):
    path = write(tmp_path, "w.csv", "Date,AAA\n2020-01-02,1\n2020-01-02,1.1\n")
    message = error_of(path)
    assert "duplicate" in message and "2020-01-02" in message


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.csv", "")
    assert "is empty" in error_of(path)


def test_header_only_file_has_no_rows(tmp_path):
    path = write(tmp_path, "header.csv", "date,ticker,close\n")
    message = error_of(path)
    assert "no data rows" in message and "header.csv" in message


def test_empty_dataframe():
    assert "no rows" in error_of(pd.DataFrame({"date": [], "ticker": [], "close": []}))


def test_unknown_file_type(tmp_path):
    path = write(tmp_path, "prices.xlsx", "whatever")
    message = error_of(path)
    assert "unknown file type" in message and "'.xlsx'" in message


def test_path_that_does_not_exist(tmp_path):
    message = error_of(tmp_path / "missing.parquet")
    assert "file not found" in message and "missing.parquet" in message


def test_unknown_name_lists_built_in_sets():
    message = error_of("nosuchset")
    assert "built-in" in message and "sp500" in message


def test_directory_is_not_a_file(tmp_path):
    assert "is a directory" in error_of(tmp_path)


def test_corrupt_parquet(tmp_path):
    path = write(tmp_path, "bad.parquet", "this is not parquet")
    message = error_of(path)
    assert "cannot read" in message and "Parquet" in message


def test_blank_ticker(tmp_path):
    path = write(tmp_path, "p.csv", "date,ticker,close\n2020-01-02,AAA,1\n2020-01-03,,2\n")
    message = error_of(path)
    assert "no ticker" in message and "row 2" in message and "2020-01-03" in message


def test_two_columns_with_the_same_alias(tmp_path):
    path = write(tmp_path, "p.csv", "date,ticker,Close,close\n2020-01-02,AAA,1,1\n")
    message = error_of(path)
    assert "'Close'" in message and "'close'" in message and "keep one" in message


def test_no_valid_price_at_all(tmp_path):
    path = write(tmp_path, "p.csv", "date,ticker,close\n2020-01-02,AAA,0\n2020-01-03,AAA,-1\n")
    assert "no valid" in error_of(path)


def test_unknown_benchmark_ticker():
    frame = pd.DataFrame({"date": ["2020-01-02"], "ticker": ["AAA"], "close": [1.0]})
    message = error_of(frame, benchmark="SPY")
    assert "'SPY'" in message and "benchmark" in message


def test_every_ticker_too_short():
    frame = pd.DataFrame({"date": ["2020-01-02"], "ticker": ["AAA"], "close": [1.0]})
    message = error_of(frame, min_history=60)
    assert "fewer than 60" in message
