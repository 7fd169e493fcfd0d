"""The experiment as stages with a run record: resume, re-backtest, atomic outputs, failures."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ci_config
from typer.testing import CliRunner

import alphaseq.experiment.record as record_module
import alphaseq.experiment.stages as stages_module
from alphaseq.cli import app
from alphaseq.errors import ConfigError, DataError
from alphaseq.experiment import (
    RETRAIN_FREE_KEYS,
    RunRecord,
    RunRecordError,
    StageFailed,
    forecast_digest,
    load_run_panel,
    rebacktest,
    retraining_keys,
    run,
)

runner = CliRunner()

#: Figures that measure time, not results: the only ones allowed to differ between runs.
# How long things took and which command wrote them: not part of the results.
TIMING_KEYS = {"seconds", "samples_per_second", "created", "training_seconds", "command"}
COST_FREE = ("benchmark",)  # never trades


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def assert_same_run(a: Path, b: Path) -> None:
    """Every output of two runs is the same (time measurements aside)."""
    for table in ("predictions", "weights", "returns"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / f"{table}.parquet"),
            pd.read_parquet(b / f"{table}.parquet"),
            check_exact=True,
        )
    for name in ("metrics.json", "folds.json"):
        left = without_timing(json.loads((a / name).read_text()))
        right = without_timing(json.loads((b / name).read_text()))
        assert left == right, name
    assert (a / "config.yaml").read_text() == (b / "config.yaml").read_text()
    for fold in sorted((a / "folds").iterdir()):
        pd.testing.assert_frame_equal(
            pd.read_parquet(fold / "predictions.parquet"),
            pd.read_parquet(b / "folds" / fold.name / "predictions.parquet"),
            check_exact=True,
        )
        left = json.loads((fold / "fold.json").read_text())
        right = json.loads((b / "folds" / fold.name / "fold.json").read_text())
        assert without_timing(left) == without_timing(right), fold.name


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# ----------------------------------------------------------------------- run directory
def test_record_layout_and_manifest(ci_run):
    record = RunRecord.open(ci_run.run_dir)
    manifest = record.manifest()
    assert manifest["schema_version"] == record_module.SCHEMA_VERSION
    assert manifest["status"] == "complete" and record.is_complete
    assert manifest["n_folds"] == len(record.finished_folds()) == len(ci_run.folds)
    assert manifest["forecast_digest"] == forecast_digest(record.read_config())
    assert manifest["data_fingerprint"] == ci_run.metrics["data"]["fingerprint"]
    stored = record.read_folds()
    # The stitched record is the folds' test forecasts, one after the other.
    stitched = pd.concat([r.predictions for r in stored], ignore_index=True)
    pd.testing.assert_frame_equal(
        stitched[list(ci_run.predictions.columns)], ci_run.predictions, check_exact=True
    )
    assert [r.fold.index for r in stored] == list(range(len(stored)))
    # nothing half-written was left behind
    leftovers = [p for p in ci_run.run_dir.rglob("*") if ".tmp" in p.name or "partial" in p.name]
    assert leftovers == []


def test_rerun_into_a_full_directory_is_refused_naming_both_flags(ci_run):
    result = runner.invoke(app, ["run", "ci", "--out", str(ci_run.run_dir)])
    assert result.exit_code == 2, result.output
    assert "--resume" in result.output and "--force" in result.output
    assert "Traceback" not in result.output


def test_a_run_recorded_before_new_config_keys_existed_can_still_resume(ci_run, tmp_path):
    """A key added to the config since a run began reads as its default on both sides:
    the run is the same experiment, though the digest of the older, shorter config
    differs. config.yaml decides, and the manifest takes the new digest."""
    folder = copy_run(ci_run.run_dir, tmp_path / "run")
    manifest = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps(manifest | {"forecast_digest": "older"}))
    record = RunRecord.open(folder)
    config = record.read_config()
    record.check_resumable(config, data_fingerprint=manifest["data_fingerprint"])
    assert record.manifest()["forecast_digest"] == record_module.forecast_digest(config)
    # a real change is still refused
    (folder / "run.json").write_text(json.dumps(manifest | {"forecast_digest": "older"}))
    changed = config.model_copy(
        update={"windows": config.windows.model_copy(update={"lookback": 7})}
    )
    with pytest.raises(RunRecordError, match=r"windows\.lookback"):
        record.check_resumable(changed, data_fingerprint=manifest["data_fingerprint"])


def test_force_replaces_and_resume_checks_config_and_data(ci_run, tmp_path):
    folder = copy_run(ci_run.run_dir, tmp_path / "run")
    config = ci_config()
    # another model: resuming would mix two experiments
    changed = ci_config("model.params.hidden_size=4")
    with pytest.raises(RunRecordError, match=r"model\.params\.hidden_size"):
        run(changed, folder, resume=True)
    panel = load_run_panel(config)
    other = panel._replace(fields={k: v * 1.01 for k, v in panel.fields.items()})
    with pytest.raises(RunRecordError, match="the data differ"):
        run(config, folder, resume=True, panel=other)
    with pytest.raises(ConfigError, match="contradict"):
        run(config, folder, resume=True, force=True)
    (folder / "stray.txt").write_text("x")
    RunRecord.create(folder, force=True)
    assert list(folder.iterdir()) == []


def test_retraining_keys_name_what_changed():
    base = ci_config()
    assert retraining_keys(base, ci_config("portfolio.cost_bps=50", "name=other")) == []
    assert retraining_keys(base, ci_config("training.epochs=3", "windows.lookback=10")) == [
        "training.epochs",
        "windows.lookback",
    ]
    assert "portfolio" in RETRAIN_FREE_KEYS


# ------------------------------------------------------------------------------ resume
def test_sigkilled_run_resumes_to_the_same_result(ci_run, tmp_path):
    """Kill a run after its first fold is stored, resume it: every output is identical."""
    folder = tmp_path / "killed"
    command = [sys.executable, "-m", "alphaseq.cli", "run", "ci", "--out", str(folder)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while not (folder / "folds" / "00" / "fold.json").is_file():
            assert process.poll() is None, "the run ended before its first fold was stored"
            assert time.monotonic() < deadline, "no fold after 300 s"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    record = RunRecord.open(folder)
    assert not record.is_complete and 1 <= len(record.finished_folds()) < len(ci_run.folds)
    result = runner.invoke(app, ["run", "ci", "--out", str(folder), "--resume"])
    assert result.exit_code == 0, result.output
    assert_same_run(folder, ci_run.run_dir)


# -------------------------------------------------------------------------- re-backtest
def test_backtest_without_overrides_reproduces_the_run(ci_run, tmp_path):
    out = tmp_path / "again"
    result = runner.invoke(app, ["backtest", str(ci_run.run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "model_topk" in result.output
    assert_same_run(out, ci_run.run_dir)
    assert (out / "report.html").is_file()
    assert RunRecord.open(out).manifest()["rebacktest_of"] == str(ci_run.run_dir)
    # The header says which command wrote the page and how long training took.
    run = RunRecord.open(out).read_metrics()["run"]
    assert run["command"] == "backtest" and ci_run.metrics["run"]["command"] == "run"
    assert run["training_seconds"] == ci_run.metrics["run"]["training_seconds"] > 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"by alphaseq backtest in {run['seconds']:.1f} s; training took" in page


def test_backtest_with_higher_costs_changes_only_cost_dependent_figures(ci_run, tmp_path):
    result = rebacktest(
        ci_run.run_dir, ["portfolio.cost_bps=50"], out_dir=tmp_path / "costly", report=False
    )
    assert not (result.run_dir / "report.html").exists()
    old, new = ci_run.metrics, result.metrics
    assert new["run"]["cost_bps"] == 50
    for block in ("forecast", "attention", "task", "diagnostics", "training"):
        assert new[block] == old[block], block
    assert without_timing(new["folds"]) == without_timing(old["folds"])
    pd.testing.assert_frame_equal(result.predictions, ci_run.predictions, check_exact=True)
    pd.testing.assert_frame_equal(result.weights, ci_run.weights, check_exact=True)
    for name, figures in new["strategies"].items():
        if name in COST_FREE:
            assert figures == old["strategies"][name], name
        else:  # every trading strategy pays more
            assert figures["total_return"] < old["strategies"][name]["total_return"], name
            assert figures["turnover"] == old["strategies"][name]["turnover"], name


def test_backtest_refuses_keys_that_need_retraining(ci_run, tmp_path):
    out = tmp_path / "x"
    result = runner.invoke(
        app, ["backtest", str(ci_run.run_dir), "--set", "training.epochs=5", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "training.epochs" in result.output and "retrained" in result.output
    assert not out.exists()


def test_backtest_refuses_other_data(ci_run, tmp_path):
    panel = load_run_panel(ci_config())
    other = panel._replace(fields={k: v * 1.5 for k, v in panel.fields.items()})
    with pytest.raises(DataError, match="fingerprint"):
        rebacktest(ci_run.run_dir, out_dir=tmp_path / "other", panel=other)


def test_backtest_of_an_unfinished_run_says_how_to_continue(ci_run, tmp_path):
    folder = copy_run(ci_run.run_dir, tmp_path / "partial")
    shutil.rmtree(folder / "folds" / "02")
    result = runner.invoke(app, ["backtest", str(folder)])
    assert result.exit_code == 2
    assert "--resume" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------------------- failures
def test_disk_full_while_writing_metrics(ci_run, tmp_path, monkeypatch):
    folder = copy_run(ci_run.run_dir, tmp_path / "full")
    real = record_module.atomic_write_json

    def full_disk(path, value):
        if Path(path).name == "metrics.json":
            # what a full disk does to the temporary file: the rename never happens
            tmp = Path(path).with_name(".metrics.json.tmp")
            tmp.write_text(json.dumps(value)[:100])
            tmp.unlink()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, value)

    monkeypatch.setattr(record_module, "atomic_write_json", full_disk)
    result = runner.invoke(app, ["backtest", str(folder)])
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output
    assert "alphaseq backtest" in result.output and "Traceback" not in result.output
    assert not (folder / "metrics.json").exists()
    assert len(RunRecord.open(folder).finished_folds()) == len(ci_run.folds)
    # the report refuses the incomplete run with one message
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 2 and "metrics.json" in result.output
    monkeypatch.undo()
    assert runner.invoke(app, ["backtest", str(folder)]).exit_code == 0
    assert_same_run(folder, ci_run.run_dir)


def test_truncated_metrics_gives_one_message(ci_run, tmp_path):
    folder = copy_run(ci_run.run_dir, tmp_path / "truncated")
    text = (folder / "metrics.json").read_text()
    (folder / "metrics.json").write_text(text[: len(text) // 2])
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 2 and "not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_a_backtest_that_raises_keeps_the_forecasts(ci_run, tmp_path, monkeypatch):
    folder = copy_run(ci_run.run_dir, tmp_path / "broken")

    def broken(*args, **kwargs):
        raise FloatingPointError("underflowed price")

    monkeypatch.setattr(stages_module, "build_strategies", broken)
    with pytest.raises(StageFailed, match="underflowed price") as caught:
        rebacktest(folder)
    assert "alphaseq backtest" in str(caught.value)
    assert not (folder / "metrics.json").exists()
    assert len(RunRecord.open(folder).finished_folds()) == len(ci_run.folds)
    assert RunRecord.open(folder).manifest()["status"] == "failed after training"


def test_a_run_that_fails_after_training_exits_2_and_keeps_every_fold(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("underflowed price")

    monkeypatch.setattr(stages_module, "build_strategies", broken)
    folder = tmp_path / "run"
    result = runner.invoke(app, ["run", "ci", "--out", str(folder), "--set", "training.epochs=1"])
    assert result.exit_code == 2, result.output
    assert "underflowed price" in result.output and "alphaseq backtest" in result.output
    assert "Traceback" not in result.output
    record = RunRecord.open(folder)
    assert not record.is_complete
    assert len(record.finished_folds()) == record.manifest()["n_folds"] >= 3
    assert "Traceback" in (folder / "run.log").read_text()  # the cause, for a bug report
    monkeypatch.undo()
    assert runner.invoke(app, ["backtest", str(folder)]).exit_code == 0
    assert RunRecord.open(folder).is_complete


def test_a_figure_that_raises_is_skipped(ci_run, tmp_path, monkeypatch, caplog):
    folder = copy_run(ci_run.run_dir, tmp_path / "figure")
    (folder / "attention.png").unlink()

    def broken(*args, **kwargs):
        raise ValueError("bad math text")

    monkeypatch.setattr(stages_module, "plot_attention_heatmap", broken)
    with caplog.at_level("WARNING", logger="alphaseq"):
        result = rebacktest(folder)
    assert "could not draw attention.png" in caplog.text
    assert not (folder / "attention.png").exists()
    assert (folder / "report.html").is_file()
    assert result.metrics["attention"] == ci_run.metrics["attention"]


def test_run_name_with_math_text_is_drawn_plainly(ci_run, tmp_path):
    result = rebacktest(ci_run.run_dir, ["name=budget $10k_$20k"], out_dir=tmp_path / "named")
    png = (result.run_dir / "attention.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "budget $10k_$20k" in (result.run_dir / "report.html").read_text()
    assert np.isfinite(result.metrics["strategies"]["model_topk"]["sharpe"])


def test_training_summary_reads_the_noise_of_each_folds_kept_epoch(ci_run):
    """The selection block is each fold's own history at its kept epoch: the monitored
    figure's validation standard error and its paired gain over the first epoch."""
    training = ci_run.metrics["training"]
    selection = training["selection"]
    assert selection["monitor"] == "ic" and selection["folds_scored"] == len(ci_run.folds)
    for k, fold in enumerate(ci_run.folds):
        stored = json.loads((ci_run.run_dir / "folds" / f"{k:02d}" / "fold.json").read_text())
        history = stored["record"]["history"]
        kept = fold["best_epoch"]
        assert selection["validation_se"][k] == history[kept]["val_ic_se"] > 0
        expected = 0.0 if kept == 0 else history[kept]["val_ic_gain_t"]
        assert selection["gain_t"][k] == expected
    assert selection["significant_gains"] == sum(g >= 2 for g in selection["gain_t"])
