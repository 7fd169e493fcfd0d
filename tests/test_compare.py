"""The forecast study: several configurations on the same folds, one table."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ci_config
from typer.testing import CliRunner

from alphaseq.cli import app
from alphaseq.errors import ConfigError
from alphaseq.experiment.compare import compare


@pytest.fixture
def study_dir(tmp_path, ci_run):
    """A study directory whose two runs are the shared ci run (no retraining)."""
    folder = tmp_path / "study"
    for name in ("ci", "ci-2"):
        shutil.copytree(ci_run.run_dir, folder / name)
    return folder


def test_study_rows_are_the_runs_figures(study_dir):
    # The second configuration only trades differently: its forecasts are the first's.
    study = compare([ci_config(), ci_config("portfolio.top_k=3")], study_dir)
    names = [row["name"] for row in study.rows]
    assert names == ["ci", "ci-2", "momentum_12_1", "reversal_1m", "low_volatility", "equal_weight"]
    assert study.configurations_tried == 2
    for row in study.rows[:2]:
        metrics = json.loads((study_dir / row["name"] / "metrics.json").read_text())
        diag = metrics["diagnostics"]["model"]
        assert row["rank_ic"] == diag["rank_ic"]["rank_ic"]
        assert row["rank_ic_ci"] == diag["rank_ic"]["rank_ic_ci"]
        assert row["spread"] == diag["quantiles"]["spread"]
        assert row["sharpe"] == metrics["strategies"]["model_topk"]["sharpe"]
        vs = metrics["significance"]["model_topk"]["vs"]["equal_weight"]
        assert (row["sharpe_vs_ew"], row["p_vs_ew"]) == (vs["sharpe_diff_ann"], vs["p_value"])
        # Deflated for both trials: below the single-trial figure of the run itself.
        assert row["dsr"] < metrics["significance"]["model_topk"]["dsr"]
        assert row["first_epoch_share"] == metrics["training"]["first_epoch_share"]
        scores = [f["valid"]["val_rank_ic"] for f in metrics["folds"]]
        assert row["valid_rank_ic"] == pytest.approx(sum(scores) / len(scores))
        # The folds' validation windows do not overlap: their errors add in quadrature.
        errors = [f["valid"]["val_rank_ic_se"] for f in metrics["folds"]]
        combined = sum(e * e for e in errors) ** 0.5 / len(errors)
        assert row["valid_rank_ic_se"] == pytest.approx(combined) and combined > 0
        selection = metrics["training"]["selection"]
        share = selection["significant_gains"] / selection["folds_scored"]
        assert row["significant_gain_share"] == share
    first, second = study.rows[:2]
    assert first["rank_ic"] == second["rank_ic"] and first["sharpe"] != second["sharpe"]
    saved = json.loads((study_dir / "study.json").read_text())
    assert saved["configurations_tried"] == 2 and len(saved["rows"]) == len(study.rows)
    markdown = (study_dir / "study.md").read_text()
    assert markdown.count("\n") == len(study.rows) + 2 and "| momentum_12_1 |" in markdown


def test_study_refuses_rows_that_are_not_comparable(tmp_path):
    with pytest.raises(ConfigError, match=r"other validation settings.*validation\.test_months"):
        compare([ci_config(), ci_config("validation.test_months=6")], tmp_path)
    with pytest.raises(ConfigError, match=r"other data settings.*data\.start"):
        compare([ci_config(), ci_config("data.start=2016-01-01")], tmp_path)
    with pytest.raises(ConfigError, match="at least one"):
        compare([], tmp_path)
    with pytest.raises(ConfigError, match="at least the 2 configurations"):
        compare([ci_config(), ci_config()], tmp_path, configurations_tried=1)


def test_extending_a_study_deflates_for_every_configuration_tried(study_dir):
    two = compare([ci_config(), ci_config()], study_dir)
    eleven = compare([ci_config(), ci_config()], study_dir, configurations_tried=11)
    assert eleven.configurations_tried == 11
    assert json.loads((study_dir / "study.json").read_text())["configurations_tried"] == 11
    assert eleven.rows[0]["dsr"] < two.rows[0]["dsr"]
    assert eleven.rows[0]["rank_ic"] == two.rows[0]["rank_ic"]  # only the deflation moves


def test_cli_compare_prints_the_table(study_dir):
    result = CliRunner().invoke(
        app,
        ["compare", "ci", "ci", "--out", str(study_dir), "--markdown", "--tried", "3"],
        env={"COLUMNS": "240"},
    )
    assert result.exit_code == 0, result.output
    assert "Forecast study on the same folds (3 configurations tried" in result.output
    assert "± SE" in result.output and "gain t≥2" in result.output
    assert "momentum_12_1" in result.output and "| ci-2 |" in result.output


def test_a_narrow_terminal_gets_several_tables_not_empty_columns(study_dir):
    result = CliRunner().invoke(
        app, ["compare", "ci", "ci", "--out", str(study_dir)], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    tables = sum(line.startswith("┏") for line in lines)
    assert tables >= 2  # the columns went on in a second table instead of vanishing
    for header in ("valid", "Q5-Q1", "DSR", "fit s"):
        assert header in result.output
    assert result.output.count("momentum_12_1") == tables  # every row in every table


@pytest.mark.parametrize("panel", ["us600", "sp500"])
def test_shipped_study_configs_parse_and_share_their_folds(panel):
    from pathlib import Path

    from alphaseq.cli import _config_values
    from alphaseq.config import parse_config
    from alphaseq.experiment.compare import _check_same_folds

    folder = Path(__file__).resolve().parents[1] / "configs" / "study" / panel
    configs = []
    for path in sorted(folder.glob("*.yaml")):
        values, source = _config_values(str(path))
        configs.append(parse_config(values, source=source))
    names = {c.model.name for c in configs}
    assert {"lstm", "gru", "lightgbm", "ridge"} <= names and len(configs) >= 5
    _check_same_folds(configs)  # compare accepts them together
    assert len({c.name for c in configs}) == len(configs)
