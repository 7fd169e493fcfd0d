"""Experiment tracking: a finished run and a tuning study logged to MLflow.

Cheap on purpose: every test reads the shared ``ci_run`` (no other training), one local
SQLite store and one real MLflow server serve the whole module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from alphaseq import tracking
from alphaseq.cli import app
from alphaseq.errors import ConfigError

REQUIRE_MLFLOW = os.environ.get("ALPHASEQ_REQUIRE_MLFLOW") == "1"
runner = CliRunner()

#: The headline figures of each strategy that must reach MLflow unchanged.
STRATEGY_FIGURES = ("sharpe", "ann_return", "ann_vol", "max_drawdown", "turnover")
RUN_ARTIFACTS = {
    "report.html",
    "metrics.json",
    "config.yaml",
    "folds.json",
    "predictions.parquet",
    "returns.parquet",
    "weights.parquet",
}


def _unavailable(reason: str) -> None:
    if REQUIRE_MLFLOW:
        pytest.fail(f"{reason}, and ALPHASEQ_REQUIRE_MLFLOW=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def mlflow_module():
    """The mlflow package; skip (or fail with ALPHASEQ_REQUIRE_MLFLOW=1) without it."""
    if importlib.util.find_spec("mlflow") is None:
        _unavailable("mlflow is not installed (pip install 'alphaseq[mlflow]')")
    import mlflow

    return mlflow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server_process(mlflow_module, tmp_path_factory) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """A real ``mlflow server`` on 127.0.0.1 (SQLite backend, artifacts proxied by it),
    started, not yet answering: it boots (~15 s) while the local-store tests run."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{root / 'server.db'}"),
        *("--artifacts-destination", str(root / "artifacts")),
    ]
    with (root / "server.log").open("w") as log:
        # Its own process group: the server starts workers, and all of them must stop.
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root
        )
        try:
            yield server, f"http://127.0.0.1:{port}", root
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=20)


@pytest.fixture(scope="module")
def server_uri(server_process) -> str:
    """The server's URL once it answers on ``/health`` (polled, 120 s at most)."""
    server, url, root = server_process
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            tail = (root / "server.log").read_text()[-1500:]
            _unavailable(f"mlflow server exited with {server.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return url
        except OSError:
            pass
        if time.monotonic() > deadline:
            _unavailable("mlflow server did not answer on /health within 120 s")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def local_uri(mlflow_module, server_process, tmp_path_factory) -> str:
    """One SQLite tracking store for the module (creating its tables takes seconds).

    Asks for ``server_process`` only to start the server early (the tests' wall time).
    """
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow-local') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def logged_local(ci_run, local_uri) -> str:
    """The shared ``ci`` run logged once to the local store; its MLflow run id."""
    return tracking.log_run(ci_run.run_dir, tracking_uri=local_uri)


def _check_logged_run(mlflow, uri: str, run_id: str, run_dir: Path) -> None:
    """The MLflow run ``run_id`` holds ``run_dir``'s config, folds, metrics and files."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(run_id)
    params, metrics, tags = logged.data.params, logged.data.metrics, logged.data.tags
    assert logged.info.status == "FINISHED"
    assert params["training.epochs"] == "2"
    assert params["model.name"] == "lstm"
    assert params["model.params.hidden_size"] == "8"
    assert json.loads(params["features.names"])[0] == "ret_1"
    assert client.get_experiment(logged.info.experiment_id).name == "ci"
    assert tags["alphaseq.task"] == "regression"
    assert tags["alphaseq.mode"] == "cross_section"
    assert tags["alphaseq.run_dir"] == str(run_dir.resolve())
    assert tags["alphaseq.version"]

    folds = json.loads((run_dir / "folds.json").read_text())
    history = client.get_metric_history(run_id, "fold/test_ic")
    assert [m.step for m in history] == [fold["index"] for fold in folds]
    assert [m.value for m in history] == pytest.approx([fold["test"]["ic"] for fold in folds])
    valid = client.get_metric_history(run_id, "fold/valid_rank_ic")
    assert [m.value for m in valid] == pytest.approx(
        [fold["valid"]["val_rank_ic"] for fold in folds]
    )
    epochs = client.get_metric_history(run_id, "fold/best_epoch")
    assert [m.value for m in epochs] == [fold["best_epoch"] for fold in folds]
    assert len(client.get_metric_history(run_id, "fold/seconds")) == len(folds)

    stored = json.loads((run_dir / "metrics.json").read_text())
    for strategy, figures in stored["strategies"].items():
        for figure in STRATEGY_FIGURES:
            if figures[figure] is not None:
                assert metrics[f"{strategy}/{figure}"] == pytest.approx(figures[figure])
    assert metrics["forecast/ic"] == pytest.approx(stored["forecast"]["ic"])
    assert metrics["forecast/rank_ic"] == pytest.approx(stored["forecast"]["rank_ic"])

    assert RUN_ARTIFACTS <= {item.path for item in client.list_artifacts(run_id)}


# ----------------------------------------------------------------------- local store
def test_run_logged_to_a_local_store(mlflow_module, ci_run, local_uri, logged_local):
    _check_logged_run(mlflow_module, local_uri, logged_local, ci_run.run_dir)
    # The artifacts sit beside the database, not in the current directory.
    artifact_uri = mlflow_module.MlflowClient(local_uri).get_run(logged_local).info.artifact_uri
    assert artifact_uri.startswith(Path(local_uri.removeprefix("sqlite:///")).parent.as_uri())


def test_fold_records_read_from_the_fold_folders(mlflow_module, ci_run, local_uri, tmp_path):
    run_dir = tmp_path / "ci"
    shutil.copytree(ci_run.run_dir, run_dir)
    (run_dir / "folds.json").unlink()  # folds/NN/fold.json only
    run_id = tracking.log_run(run_dir, tracking_uri=local_uri, experiment="folders")
    client = mlflow_module.MlflowClient(local_uri)
    steps = [m.step for m in client.get_metric_history(run_id, "fold/valid_ic")]
    assert steps == list(range(len(ci_run.folds)))


def test_unfinished_run_is_refused(mlflow_module, ci_run, local_uri, tmp_path):
    from alphaseq.experiment import RunRecordError

    run_dir = tmp_path / "ci"
    shutil.copytree(ci_run.run_dir, run_dir)
    (run_dir / "metrics.json").unlink()
    with pytest.raises(RunRecordError, match="not a complete run"):
        tracking.log_run(run_dir, tracking_uri=local_uri)


def test_cli_run_track_logs_to_the_env_uri(mlflow_module, ci_run, local_uri, tmp_path, monkeypatch):
    """``alphaseq run --track mlflow`` end to end, with the training replaced by a copy."""
    import alphaseq.experiment

    def finished_run(experiment, run_dir, **_):
        shutil.copytree(ci_run.run_dir, run_dir, dirs_exist_ok=True)
        return SimpleNamespace(run_dir=run_dir, metrics=ci_run.metrics)

    monkeypatch.setattr(alphaseq.experiment, "run", finished_run)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", local_uri)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "ci", "--out", str(out), "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("mlflow run "))
    run_id = line.split()[2]
    assert line.endswith(f"logged to {local_uri}")
    _check_logged_run(mlflow_module, local_uri, run_id, out)


# ----------------------------------------------------------------------------- server
def test_run_logged_through_a_tracking_server(mlflow_module, ci_run, server_uri, tmp_path):
    run_id = tracking.log_run(ci_run.run_dir, tracking_uri=server_uri)
    _check_logged_run(mlflow_module, server_uri, run_id, ci_run.run_dir)
    # The artifacts went up through the server's proxy, and come back whole.
    client = mlflow_module.MlflowClient(tracking_uri=server_uri)
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    copy = client.download_artifacts(run_id, "metrics.json", str(tmp_path))
    assert json.loads(Path(copy).read_text()) == ci_run.metrics


# ----------------------------------------------------------------------------- tuning
def _study_dir(folder: Path) -> Path:
    """``trials.parquet`` and ``tuning.json`` of a made-up three-trial study."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    from alphaseq.tuning.search import trials_frame

    lr = FloatDistribution(1e-4, 1e-1, log=True)
    hidden = IntDistribution(8, 64)
    model = CategoricalDistribution(["lstm", "lightgbm"])
    leaves = IntDistribution(4, 64)
    trials = [
        create_trial(
            state=TrialState.COMPLETE,
            value=0.05,
            params={"model.name": "lstm", "model.params.hidden_size": 16, "lr": 0.01},
            distributions={"model.name": model, "model.params.hidden_size": hidden, "lr": lr},
            intermediate_values={0: 0.04, 1: 0.06},
            user_attrs={"worker": "host-1"},
        ),
        create_trial(
            state=TrialState.PRUNED,
            params={"model.name": "lstm", "model.params.hidden_size": 8, "lr": 0.001},
            distributions={"model.name": model, "model.params.hidden_size": hidden, "lr": lr},
            intermediate_values={0: -0.02},
        ),
        create_trial(
            state=TrialState.COMPLETE,
            value=0.03,
            params={"model.name": "lightgbm", "model.params.num_leaves": 31},
            distributions={"model.name": model, "model.params.num_leaves": leaves},
            intermediate_values={0: 0.02, 1: 0.04},
        ),
    ]
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    folder.mkdir(parents=True, exist_ok=True)
    trials_frame(study.get_trials()).to_parquet(folder / "trials.parquet", index=False)
    summary = {
        "n_trials": 3,
        "n_complete": 2,
        "n_pruned": 1,
        "n_failed": 0,
        "n_invalid": 0,
        "n_running": 0,
        "n_configurations": 3,
        "best_value": 0.05,
        "best_params": trials[0].params,
        "best_trial": 0,
        "study_name": "ci-study",
        "storage": "sqlite:///optuna.db",
        "direction": "maximize",
    }
    (folder / "tuning.json").write_text(json.dumps(summary))
    return folder


def test_tuning_study_as_parent_and_nested_trials(mlflow_module, local_uri, tmp_path):
    out = _study_dir(tmp_path / "tune")
    parent_id = tracking.log_tuning(out, tracking_uri=local_uri)
    client = mlflow_module.MlflowClient(local_uri)
    parent = client.get_run(parent_id)
    assert client.get_experiment(parent.info.experiment_id).name == "ci-study"
    assert parent.data.params["study_name"] == "ci-study"
    assert parent.data.params["n_trials"] == "3"
    assert parent.data.params["best_params.model.params.hidden_size"] == "16"
    assert parent.data.metrics["best_value"] == pytest.approx(0.05)
    assert {"tuning.json", "trials.parquet"} <= {a.path for a in client.list_artifacts(parent_id)}

    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    by_number = {int(run.data.tags["alphaseq.trial_number"]): run for run in children}
    assert sorted(by_number) == [0, 1, 2]

    best = by_number[0]
    assert best.data.params == {
        "model.name": "lstm",
        "model.params.hidden_size": "16",
        "lr": "0.01",
    }
    assert best.data.metrics["value"] == pytest.approx(0.05)
    assert best.data.tags["alphaseq.trial_state"] == "COMPLETE"
    assert best.data.tags["alphaseq.worker"] == "host-1"
    assert best.info.status == "FINISHED"
    folds = client.get_metric_history(best.info.run_id, "fold/value")
    assert [(m.step, m.value) for m in folds] == [(0, 0.04), (1, 0.06)]

    pruned = by_number[1]
    assert pruned.data.tags["alphaseq.trial_state"] == "PRUNED"
    assert pruned.info.status == "KILLED"
    assert "value" not in pruned.data.metrics  # a pruned trial has no mean
    assert pruned.data.metrics["fold/value"] == pytest.approx(-0.02)

    other = by_number[2]  # another model family: the empty LSTM columns are left out
    assert other.data.params == {"model.name": "lightgbm", "model.params.num_leaves": "31"}


def test_cli_tune_track_logs_the_study(mlflow_module, local_uri, tmp_path, monkeypatch):
    import alphaseq.tuning

    def fake_tune(values, *, out_dir, **_):
        _study_dir(Path(out_dir))
        return SimpleNamespace(
            study_name="ci-study",
            n_trials=3,
            n_complete=2,
            n_pruned=1,
            n_failed=0,
            n_running=0,
            n_configurations=3,
            best_value=0.05,
            best_config=None,
            out_dir=Path(out_dir),
        )

    monkeypatch.setattr(alphaseq.tuning, "tune", fake_tune)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", local_uri)
    out = tmp_path / "tune"
    result = runner.invoke(
        app, ["tune", "ci", "--trials", "1", "--out", str(out), "--track", "mlflow"]
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("mlflow parent run "))
    parent = mlflow_module.MlflowClient(local_uri).get_run(line.split()[3])
    assert parent.data.tags["alphaseq.tuning_dir"] == str(out.resolve())
    # The experiment is the config's name, as for its runs.
    assert (
        mlflow_module.MlflowClient(local_uri).get_experiment(parent.info.experiment_id).name == "ci"
    )


# ------------------------------------------------------------- without mlflow / bad input
def test_missing_extra_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # ``import mlflow`` now fails
    with pytest.raises(ConfigError, match=r"pip install 'alphaseq\[mlflow\]'"):
        tracking.log_run(tmp_path)
    with pytest.raises(ConfigError, match=r"pip install 'alphaseq\[mlflow\]'"):
        tracking.log_tuning(tmp_path)
    result = runner.invoke(app, ["run", "ci", "--out", str(tmp_path / "r"), "--track", "mlflow"])
    assert result.exit_code == 2
    assert "pip install 'alphaseq[mlflow]'" in result.output
    assert not (tmp_path / "r").exists()  # refused before any training


@pytest.mark.parametrize("command", [["run", "ci"], ["tune", "ci", "--trials", "1"]])
def test_unknown_tracker_is_refused_before_work(command, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, [*command, "--out", str(out), "--track", "wandb"])
    assert result.exit_code == 2
    assert "unknown tracker --track 'wandb'; allowed: ['mlflow']" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_params_flattened_truncated_and_keys_sanitised():
    flat = tracking.flatten_params(
        {"model": {"name": "lstm", "params": {"hidden_size": 8}}, "loss": {}, "long": "x" * 7000}
    )
    assert flat["model.name"] == "lstm"
    assert flat["model.params.hidden_size"] == "8"
    assert flat["loss"] == "{}"
    assert len(flat["long"]) == tracking.MAX_PARAM_LENGTH
    assert flat["long"].endswith("...[truncated]")
    assert tracking.metric_key("hrp(risk=cvar)/sharpe") == "hrp_risk_cvar_/sharpe"
    assert tracking.metric_key("/a//b/../c") == "a/b/c"


def test_default_tracking_uri(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_tracking_uri() == "http://127.0.0.1:5000"
    assert tracking.resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
