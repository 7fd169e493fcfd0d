"""`alphaseq tune` from the command line, and its best.yaml feeding `alphaseq run`."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from alphaseq.cli import app

runner = CliRunner()


def test_tune_then_run_the_best_configuration(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "lstm:\n"
        "  model.params.hidden_size: {type: categorical, choices: [8, 16]}\n"
        "  training.learning_rate: {type: float, low: 0.0005, high: 0.005, log: true}\n"
    )
    out = tmp_path / "tune"
    args = ["tune", "ci", "--trials", "2", "--out", str(out), "--space", str(space)]
    result = runner.invoke(app, [*args, "--set", "training.epochs=1", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "2 trials recorded" in result.output
    # not a terminal: one line per trial as it ends, not silence until the end
    assert "ci-lstm: trial 0 complete, value" in result.output
    assert "ci-lstm: trial 1 complete, value" in result.output
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["n_trials"] == 2
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["configurations_tried"] == 2
    assert (
        best["model"]["params"]["hidden_size"] == summary["best_params"]["model.params.hidden_size"]
    )
    # the run of the best configuration deflates its Sharpe ratio by the trials tried
    run_dir = tmp_path / "best-run"
    result = runner.invoke(app, ["run", str(out / "best.yaml"), "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["configurations_tried"] == 2
    topk = metrics["significance"]["model_topk"]
    assert topk["n_trials"] == 2 and topk["dsr"] <= topk["psr"]


def test_tune_rejects_a_bad_space(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("lstm:\n  model.params.hiden_size: {type: categorical, choices: [8]}\n")
    result = runner.invoke(
        app, ["tune", "ci", "--trials", "1", "--out", str(tmp_path / "t"), "--space", str(space)]
    )
    assert result.exit_code == 2
    assert "hiden_size" in result.output and "Traceback" not in result.output
