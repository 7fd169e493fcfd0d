"""Point-in-time universes: selections read only the past, match a pandas reference, and
a ticker that becomes liquid later is neither trained on nor held before it is chosen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ci_config
from typer.testing import CliRunner

from alphaseq.cli import app
from alphaseq.data import Panel
from alphaseq.data.universe import select_universe, universe_changes, yearly_changes
from alphaseq.errors import AlphaseqError, ConfigError

runner = CliRunner()


def planted_panel(n_dates: int = 300, n_tickers: int = 12, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2019-01-01", periods=n_dates)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_dates, n_tickers)), axis=0))
    volume = rng.integers(1_000, 100_000, (n_dates, n_tickers)).astype(float)
    close[rng.random(close.shape) < 0.05] = np.nan  # missing days
    volume[rng.random(close.shape) < 0.05] = np.nan
    close[:40, 3] = np.nan  # a late listing
    # Exact ties: two tickers with the same dollar volume on every day.
    close[:, 5], volume[:, 5] = close[:, 4], volume[:, 4]
    tickers = [f"T{k:02d}" for k in range(n_tickers)]
    return Panel(dates, tickers, {"close": close, "volume": volume}, name="planted")


def reference(panel: Panel, row: int, top_n: int, window: int, min_price=None, min_cov=None):
    """The straightforward pandas version, one selection at a time."""
    close = pd.DataFrame(panel.close, columns=panel.tickers).astype(float)
    volume = pd.DataFrame(panel.fields["volume"], columns=panel.tickers).astype(float)
    trailing = (close * volume).iloc[max(0, row - window + 1) : row + 1]
    average = trailing.mean()  # pandas skips NaN
    coverage = trailing.notna().sum() / window
    today = close.iloc[row]
    ok = average.notna() & today.notna() & (today > 0)
    if min_price is not None:
        ok &= today >= min_price
    if min_cov is not None:
        ok &= coverage >= min_cov
    table = pd.DataFrame({"average": average[ok], "name": average[ok].index})
    chosen = table.sort_values(["average", "name"], ascending=[False, True]).head(top_n)
    return set(chosen["name"])


@pytest.mark.parametrize(
    ("top_n", "window", "min_price", "min_cov"),
    [(4, 20, None, None), (5, 63, 45.0, None), (12, 10, None, 0.95), (3, 1, None, None)],
)
def test_matches_a_pandas_reference(top_n, window, min_price, min_cov):
    panel = planted_panel()
    rows = np.arange(0, panel.n_dates, 17)
    chosen = select_universe(
        panel, rows, top_n=top_n, window=window, min_price=min_price, min_coverage=min_cov
    )
    assert chosen.members.shape == (len(rows), panel.n_tickers)
    for k, row in enumerate(rows):
        got = set(panel.tickers[chosen.members[k]])
        assert got == reference(panel, row, top_n, window, min_price, min_cov), row
    # Ties go to the name that sorts first: T04 before its twin T05.
    tied = select_universe(panel, [200], top_n=12, window=20).members[0]
    if tied[4] != tied[5]:
        assert tied[4] and not tied[5]


def test_selections_do_not_change_when_the_future_does():
    panel = planted_panel()
    rows = np.arange(30, panel.n_dates, 21)
    before = select_universe(panel, rows, top_n=4, window=30)
    cut = 150
    fields = {k: v.copy() for k, v in panel.fields.items()}
    fields["volume"][cut + 1 :, 0] *= 1e6  # T00 becomes the most liquid after the cut
    fields["close"][cut + 1 :, 1] = np.nan  # T01 stops trading
    changed = Panel(panel.dates, panel.tickers, fields, name="changed")
    after = select_universe(changed, rows, top_n=4, window=30)
    past = rows <= cut
    np.testing.assert_array_equal(before.members[past], after.members[past])
    assert not np.array_equal(before.members[~past], after.members[~past])
    assert after.members[~past][:, 0].all()  # the now-liquid ticker is chosen later on


def test_membership_in_force_and_changes():
    panel = planted_panel()
    chosen = select_universe(panel, [50, 100, 150], top_n=3, window=20)
    daily = chosen.daily(panel.n_dates)
    assert not daily[:50].any()
    np.testing.assert_array_equal(daily[99], chosen.members[0])
    np.testing.assert_array_equal(chosen.at(120), chosen.members[1])
    assert not chosen.at(10).any()
    changes = universe_changes(chosen, panel)
    assert [c["members"] for c in changes] == [3, 3, 3]
    assert len(changes[0]["entered"]) == 3 and not changes[0]["left"]
    for k in (1, 2):
        assert len(changes[k]["entered"]) == len(changes[k]["left"])
    (year,) = yearly_changes(changes)
    assert year["entries"] == len(changes[1]["entered"]) + len(changes[2]["entered"])


def test_no_volume_is_one_clear_error():
    panel = planted_panel()
    no_volume = Panel(panel.dates, panel.tickers, {"close": panel.close}, name="closes")
    with pytest.raises(AlphaseqError, match="no volume"):
        select_universe(no_volume, [10], top_n=2)


def test_config_keys_and_their_errors(tmp_path):
    from alphaseq.experiment import load_run_panel

    with pytest.raises(ConfigError, match="top_n"):
        ci_config("data.universe.top_n=0")
    with pytest.raises(ConfigError, match="listed twice"):
        ci_config("data.tickers=[AAPL, AAPL]")
    with pytest.raises(AlphaseqError, match=r"not in 'sp500'.*did you mean 'AAPL'"):
        load_run_panel(ci_config("data.tickers=[AAPLL, MSFT]"))
    with pytest.raises(AlphaseqError, match="no volume"):
        load_run_panel(ci_config("data.universe.top_n=8"))
    listed = tmp_path / "tickers.txt"
    listed.write_text("# my universe\nAAPL\nMSFT  # software\n\nJPM\n")
    panel = load_run_panel(ci_config(f"data.tickers={listed}"))
    assert panel.tickers.tolist() == ["AAPL", "MSFT", "JPM"]
    with pytest.raises(AlphaseqError, match="ticker file not found"):
        load_run_panel(ci_config(f"data.tickers={tmp_path / 'none.txt'}"))


# --------------------------------------------------------------------- end to end
LATE_FROM = "2018-06-01"


@pytest.fixture(scope="module")
def late_liquid_csv(tmp_path_factory):
    """Twelve tickers; LATE trades thinly until mid-2018, then dwarfs every other one."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2014-01-01", "2020-12-31")
    names = [f"S{k:02d}" for k in range(11)] + ["LATE"]
    close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (len(dates), len(names))), axis=0))
    volume = np.tile(np.linspace(2e6, 1e6, len(names)), (len(dates), 1))
    volume *= rng.uniform(0.8, 1.2, volume.shape)
    late = dates >= pd.Timestamp(LATE_FROM)
    volume[:, -1] = np.where(late, 1e9, 10.0)
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, len(names)),
            "ticker": np.tile(names, len(dates)),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )
    path = tmp_path_factory.mktemp("universe") / "late.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_later_liquid_ticker_is_not_trained_on_before_it_is_chosen(late_liquid_csv, monkeypatch):
    from alphaseq.experiment import fit_fold, prepare
    from alphaseq.forecaster import Forecaster

    config = ci_config(f"data.source={late_liquid_csv}", "data.universe.top_n=8")
    data = prepare(config)
    seen: list[tuple[set, set]] = []

    class Stop(Exception):
        pass

    def capture(self, inputs, **kwargs):
        tickers = data.panel.tickers
        seen.append((set(tickers[inputs.train.i]), set(tickers[inputs.valid.i])))
        raise Stop

    monkeypatch.setattr(Forecaster, "_train", capture)
    for fold in data.folds:
        with pytest.raises(Stop):
            fit_fold(data.config, data.panel, fold, features=data.features, labels=data.labels)
        train, valid = seen[-1]
        start = data.panel.dates[fold.train.start]
        assert len(train) == 8 and train == valid
        assert ("LATE" in train) == (start > np.datetime64(LATE_FROM)), start


def test_a_later_liquid_ticker_is_held_only_once_chosen(late_liquid_csv, tmp_path):
    from alphaseq.experiment import run

    config = ci_config(f"data.source={late_liquid_csv}", "data.universe.top_n=8")
    result = run(config, tmp_path / "run")
    universe = pd.read_parquet(tmp_path / "run" / "universe.parquet")
    assert universe.groupby("date").size().eq(8).all()
    first_chosen = universe.loc[universe["ticker"] == "LATE", "date"].min()
    assert first_chosen > pd.Timestamp(LATE_FROM)
    weights = result.weights
    assert not weights.empty
    held = weights.merge(universe, on=["date", "ticker"], how="left", indicator=True)
    assert (held["_merge"] == "both").all()  # every strategy holds members only
    late = weights[(weights["ticker"] == "LATE") & (weights["weight"] > 0)]
    assert late.empty or late["date"].min() >= first_chosen
    assert set(weights.loc[weights["strategy"] == "equal_weight", "ticker"]) >= {"LATE"}
    forecasts = result.predictions
    assert forecasts.groupby("date")["ticker"].nunique().max() <= 8
    block = result.metrics["data"]["universe"]
    assert block["top_n"] == 8 and block["forecast_per_date"]["mean"] <= 8
    assert block["distinct_tickers"] == forecasts["ticker"].nunique()


def test_data_check_shows_how_the_universe_changes(late_liquid_csv):
    result = runner.invoke(
        app, ["data", "check", str(late_liquid_csv), "--top-n", "5"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "universe: top 5" in result.output
    assert "2018" in result.output and "LATE" in result.output
    as_json = runner.invoke(app, ["data", "check", str(late_liquid_csv), "--top-n", "5", "--json"])
    import json

    changes = json.loads(as_json.stdout)["universe"]
    entered = [c["date"] for c in changes if "LATE" in c["entered"]]
    assert entered and entered[0] > LATE_FROM
