"""Config validation: every error names the dotted key and what is allowed."""

from __future__ import annotations

import pytest

from alphaseq.config import ExperimentConfig, load_config, parse_config
from alphaseq.errors import ConfigError


def message(values) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(values)
    return str(info.value)


def test_defaults():
    config = parse_config({})
    assert isinstance(config, ExperimentConfig)
    assert config.data.source == "sp500"
    assert config.windows.lookback == 60
    assert config.labels.horizons == [21]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"features": {"names": ["ret_5", "rsx"]}}, ["features.names", "'rsx'", "'rsi'"]),
        ({"labels": {"kind": "foo"}}, ["labels.kind", "'foo'", "'three_class'"]),
        ({"windows": {"lookback": 0}}, ["windows.lookback", "greater than or equal to 1"]),
        ({"windowz": {}}, ["windowz", "unknown key", "'windows'"]),
        ({"data": {"sourc": "x"}}, ["data.sourc", "unknown key", "'source'"]),
        ({"labels": {"horizons": [0, 7]}}, ["labels.horizons", ">= 1"]),
        ({"features": {"cross_section": "zz"}}, ["features.cross_section", "'robust_zscore'"]),
    ],
)
def test_bad_values_name_key_and_allowed(values, expected):
    text = message(values)
    for part in expected:
        assert part in text, text


def test_yaml_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("features:\n  names: [ret_5, vol_21]\n  cross_section: rank\n")
    config = load_config(path)
    assert config.features.names == ["ret_5", "vol_21"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("features: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
