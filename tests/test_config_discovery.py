"""Config keys a user can find without reading the source: ``config keys`` / ``config
show``, a suggestion for a mistyped key or value, and config errors that answer before
torch is imported."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from alphaseq.cli import app
from alphaseq.config import (
    CONSTRUCTOR_SPECS,
    ExperimentConfig,
    config_keys,
    model_parameters,
    parse_config,
)
from alphaseq.errors import ConfigError

runner = CliRunner()


def _schema_leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf key, walked independently of config_keys (sections are not leaves)."""
    out = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if name == "constructors":
            for tag, spec in CONSTRUCTOR_SPECS.items():
                out |= _schema_leaves(spec, f"{key}[type={tag}].")
            continue
        args = [field.annotation, *typing.get_args(field.annotation)]
        sections = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if sections:
            is_list = typing.get_origin(field.annotation) is list
            out |= _schema_leaves(sections[0], f"{key}[]." if is_list else f"{key}.")
        else:
            out.add(key)
    return out


def test_config_keys_cover_every_pydantic_field_with_a_description():
    keys = config_keys()
    listed = [k.key for k in keys]
    assert len(listed) == len(set(listed))
    assert set(listed) == _schema_leaves(ExperimentConfig)
    undocumented = [k.key for k in keys if not k.description]
    assert not undocumented, f"keys without a description: {undocumented}"
    by_key = {k.key: k for k in keys}
    epochs = by_key["training.epochs"]
    assert (epochs.type, epochs.default) == ("int >= 1", "20")
    assert by_key["training.optimizer"].type == "'adam' | 'adamw'"
    assert by_key["data.benchmark"].default == "null"
    assert by_key["labels.horizons"].default == "[21]"
    assert by_key["portfolio.constructors[type=tilt].strength"].type == "float >= 0"
    assert by_key["model.ensemble.members[].name"].default == "required"
    assert by_key["training.threads"].type == "int | null >= 1"


def test_model_parameters_come_from_the_signature_and_docstring():
    params = {k.key.removeprefix("model.params."): k for k in model_parameters("lstm")}
    assert "n_features" not in params  # set by the pipeline, not the user
    assert params["hidden_size"].default == "128" and params["hidden_size"].type == "int"
    assert "Hidden units" in params["hidden_size"].description
    # A subclass documents only its own parameters: the rest come from its bases.
    gat = {k.key.removeprefix("model.params."): k for k in model_parameters("gat")}
    assert gat["hidden_size"].description and gat["graph_heads"].description
    assert {k.key for k in model_parameters("lightgbm")} >= {"model.params.num_leaves"}
    with pytest.raises(ConfigError, match="did you mean 'lstm'"):
        model_parameters("lstn")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.sourc=x", "data.sourc: unknown key (did you mean 'source'?)"),
        ("trainig.epochs=3", "trainig: unknown key (did you mean 'training'?)"),
        ("training.optimizer=adamm", "got 'adamm' (did you mean 'adam'?)"),
        ("model.name=lstn", "unknown model 'lstn' (did you mean 'lstm'?)"),
        ("model.params.hiden_size=4", "['hiden_size'] (did you mean 'hidden_size'?)"),
    ],
)
def test_a_typo_suggests_the_nearest_key_or_value(override, message):
    result = runner.invoke(app, ["config", "show", "ci", "--set", override])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"zzzz": 1}})
    assert "did you mean" not in str(info.value) and "allowed:" in str(info.value)


def test_config_show_prints_the_resolved_config_with_defaults():
    result = runner.invoke(app, ["config", "show", "ci", "--set", "training.epochs=3"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["training"]["epochs"] == 3
    assert shown["training"]["learning_rate"] == 1e-3  # a default the file does not set
    assert shown["labels"]["cross_section"] == "rank"  # decided by resolve_config
    # It is a config: feeding it back gives the same experiment.
    again = parse_config(shown)
    assert again.model_dump() == parse_config(shown).model_dump()
    assert again.training.epochs == 3

    changed = runner.invoke(app, ["config", "show", "ci", "--changed"])
    assert changed.exit_code == 0, changed.output
    only = yaml.safe_load(changed.stdout)
    assert "learning_rate" not in only["training"] and only["training"]["epochs"] == 2


def test_config_keys_filters_and_lists_a_models_parameters():
    result = runner.invoke(app, ["config", "keys", "lookback"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "windows.lookback" in result.output and "training.epochs" not in result.output
    result = runner.invoke(app, ["config", "keys", "--model", "lstm"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "model.params.hidden_size" in result.output
    result = runner.invoke(app, ["config", "keys", "lookbak"])
    assert result.exit_code == 2 and "did you mean 'lookback'" in result.output


def test_config_errors_and_help_do_not_import_torch():
    """The fast path, measured by what is imported rather than by a clock."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from alphaseq.cli import app\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        "bad = r.invoke(app, ['run', 'ci', '--set', 'training.epochs=x'])\n"
        "assert bad.exit_code == 2, bad.output\n"
        "bad = r.invoke(app, ['run', 'ci', '--set', 'model.name=lstn'])\n"
        "assert bad.exit_code == 2 and 'did you mean' in bad.output, bad.output\n"
        "heavy = sorted(m for m in ('torch', 'skfolio', 'cvxpy', 'lightgbm', 'sklearn')\n"
        "               if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_python_dash_m_alphaseq():
    done = subprocess.run(
        [sys.executable, "-m", "alphaseq", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("alphaseq ")


def test_training_threads_sets_torchs_thread_count():
    import torch

    from alphaseq.training import Trainer, TrainerConfig

    before = torch.get_num_threads()
    try:
        Trainer(TrainerConfig(threads=1, progress=False))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    result = runner.invoke(app, ["run", "ci", "--threads", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "threads: 2" in result.stdout
