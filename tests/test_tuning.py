"""Hyper-parameter search: validation windows only, resumable studies, pruning, shared
PostgreSQL studies with many workers, and search-space errors that name the key."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy
import yaml

from alphaseq.cli import _config_values
from alphaseq.config import apply_overrides, parse_config
from alphaseq.data import Panel
from alphaseq.errors import ConfigError
from alphaseq.forecaster import Forecaster
from alphaseq.pipeline import load_run_panel
from alphaseq.tuning import (
    ValidationObjective,
    check_space,
    default_space_path,
    load_search_space,
    make_pruner,
    parse_search_space,
    space_for_model,
    tune,
)

#: A tiny space: two hidden sizes (both divisible by the ci config's 2 heads) and a rate.
SPACE = {
    "lstm": {
        "model.params.hidden_size": {"type": "categorical", "choices": [4, 8]},
        "training.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    }
}
PARAMS = {"model.params.hidden_size": 8, "training.learning_rate": 3e-3}


def _values(*overrides: str) -> dict[str, Any]:
    """The packaged ci experiment, one epoch per fold (4 walk-forward folds)."""
    values, _ = _config_values("ci")
    return apply_overrides(values, ["training.epochs=1", *overrides])


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return _values()


@pytest.fixture(scope="module")
def panel(values) -> Panel:
    return load_run_panel(parse_config(values))


def _scrambled_after(panel: Panel, date: str, seed: int = 7) -> Panel:
    """Every price and volume after ``date`` replaced by noise, a tenth of them missing."""
    rng = np.random.default_rng(seed)
    after = panel.dates > np.datetime64(pd.Timestamp(date), "ns")
    assert after.any() and not after.all()
    fields = {}
    for name, array in panel.fields.items():
        array = array.copy()
        noise = np.exp(rng.normal(0.0, 0.5, size=array[after].shape))
        changed = array[after] * noise
        changed[rng.random(changed.shape) < 0.1] = np.nan
        array[after] = changed
        fields[name] = array
    benchmark = None
    if panel.benchmark is not None:
        benchmark = panel.benchmark.copy()
        benchmark[after] *= np.exp(rng.normal(0.0, 0.5, size=int(after.sum())))
    return panel._replace(fields=fields, benchmark=benchmark)


# ------------------------------------------------------------------ validation windows only
def test_each_fold_trains_on_a_panel_that_ends_at_its_validation_end(values, panel, monkeypatch):
    seen: list[tuple[np.datetime64, tuple]] = []
    original = Forecaster.fit

    def spy(self, data, **kwargs):
        seen.append((data.dates[-1], kwargs["fold"]))
        return original(self, data, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", spy)
    objective = ValidationObjective(values, space_for_model(parse_search_space(SPACE), "lstm"))
    config = objective.config_for(PARAMS)
    folds = objective.folds(config)
    assert len(folds) >= 3
    objective.fold_values(config)
    assert len(seen) == len(folds)
    for (last_date, trained), fold in zip(seen, folds, strict=True):
        assert trained == fold  # the fold's own purged ranges, as alphaseq run uses them
        assert last_date == np.datetime64(fold.valid.end_date, "ns")
        assert last_date < np.datetime64(fold.test.start_date, "ns")


def test_prices_after_a_validation_end_never_reach_that_folds_value(values, panel):
    """Fold k's figure is bit for bit the same whatever the prices after its validation
    end are; later folds, which validate on those prices, do change (the check bites)."""
    space = space_for_model(parse_search_space(SPACE), "lstm")
    objective = ValidationObjective(values, space, panel=panel)
    config = objective.config_for(PARAMS)
    folds = objective.folds(config)
    original = objective.fold_values(config)
    assert all(np.isfinite(original))

    first = ValidationObjective(
        values, space, panel=_scrambled_after(panel, folds[0].valid.end_date)
    )
    changed = first.fold_values(config)
    assert changed[0] == original[0]
    assert any(c != o for c, o in zip(changed[1:], original[1:], strict=True))

    last = ValidationObjective(
        values, space, panel=_scrambled_after(panel, folds[-1].valid.end_date)
    )
    assert last.fold_values(config) == original  # the final test windows: nothing moves
    trial = optuna.trial.FixedTrial(PARAMS)
    assert last(trial) == objective(trial) == float(np.mean(original))


def test_every_trial_value_ignores_the_prices_after_the_last_validation_end(
    values, panel, tmp_path
):
    folds = ValidationObjective(values, load_search_space(SPACE)["lstm"], panel=panel).folds(
        parse_config(values)
    )
    scrambled = _scrambled_after(panel, folds[-1].valid.end_date)
    runs = [
        tune(values, n_trials=2, out_dir=tmp_path / name, space=SPACE, panel=data, progress=False)
        for name, data in (("original", panel), ("scrambled", scrambled))
    ]
    frames = [pd.read_parquet(run.out_dir / "trials.parquet") for run in runs]
    pd.testing.assert_frame_equal(
        frames[0].drop(columns=["duration_s", "datetime_start", "datetime_complete"]),
        frames[1].drop(columns=["duration_s", "datetime_start", "datetime_complete"]),
    )


# ------------------------------------------------------------------------- SQLite studies
def test_study_writes_best_config_trials_and_summary_then_resumes(values, panel, tmp_path):
    first = tune(values, n_trials=2, out_dir=tmp_path, space=SPACE, panel=panel, progress=True)
    assert (first.n_trials, first.n_complete) == (2, 2)
    assert (tmp_path / "study.db").exists()

    second = tune(values, n_trials=2, out_dir=tmp_path, space=SPACE, panel=panel, progress=False)
    assert second.study_name == first.study_name == "ci-lstm"
    summary = json.loads((tmp_path / "tuning.json").read_text())
    assert summary["n_trials"] == summary["n_complete"] == second.n_trials == 4
    assert summary["study_name"] == "ci-lstm"
    assert summary["storage"] == f"sqlite:///{(tmp_path / 'study.db').resolve()}"

    trials = pd.read_parquet(tmp_path / "trials.parquet")
    assert trials["number"].tolist() == [0, 1, 2, 3]
    assert set(trials["state"]) == {"COMPLETE"}
    param_columns = [c for c in trials.columns if c.startswith("params_")]
    fold_columns = [c for c in trials.columns if c.startswith("fold_")]
    assert {"value", "duration_s"} <= set(trials.columns)
    # One column per parameter and per fold, plain values (no JSON text).
    assert "params_model.params.hidden_size" in param_columns and len(fold_columns) >= 2
    assert trials["params_model.params.hidden_size"].dtype.kind in "iuf"
    assert np.allclose(trials[fold_columns].mean(axis=1), trials["value"])
    params = [
        {c.removeprefix("params_"): row[c] for c in param_columns} for _, row in trials.iterrows()
    ]
    # The resumed run's sampler is offset: it does not redraw the first run's values.
    assert params[2] != params[0] and params[3] != params[1]
    best = trials.loc[trials["value"].idxmax()]
    assert summary["best_value"] == best["value"]
    assert summary["best_params"] == pytest.approx(
        {c.removeprefix("params_"): best[c] for c in param_columns}
    )

    text = (tmp_path / "best.yaml").read_text()
    config = parse_config(yaml.safe_load(text), source="best.yaml")
    assert config.model.params["hidden_size"] == summary["best_params"]["model.params.hidden_size"]
    assert config.training.learning_rate == summary["best_params"]["training.learning_rate"]
    assert config.training.epochs == 1 and config.name == "ci"  # the rest is the base config


def test_every_fold_is_reported_and_a_pruner_can_stop_a_trial(values, panel, tmp_path):
    class AfterSecondFold(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return trial.last_step is not None and trial.last_step >= 1

    kept = tune(
        values, n_trials=1, out_dir=tmp_path / "kept", space=SPACE, panel=panel,
        pruner="none", progress=False,
    )  # fmt: skip
    (trial,) = kept.study.trials
    folds = ValidationObjective(values, load_search_space(SPACE)["lstm"], panel=panel).folds(
        parse_config(values)
    )
    assert sorted(trial.intermediate_values) == [f.index for f in folds]
    assert trial.value == pytest.approx(np.mean(list(trial.intermediate_values.values())))

    pruned = tune(
        values, n_trials=2, out_dir=tmp_path / "pruned", space=SPACE, panel=panel,
        pruner=AfterSecondFold(), progress=False,
    )  # fmt: skip
    assert (pruned.n_trials, pruned.n_pruned, pruned.n_complete) == (2, 2, 0)
    assert all(sorted(t.intermediate_values) == [0, 1] for t in pruned.study.trials)
    assert pruned.best_value is None and not (tmp_path / "pruned" / "best.yaml").exists()
    summary = json.loads((tmp_path / "pruned" / "tuning.json").read_text())
    assert summary["n_trials"] == summary["n_pruned"] == 2


def test_invalid_combinations_are_skipped_and_not_counted(values, panel, tmp_path):
    space = {"lstm": {"model.params.attention_heads": {"type": "categorical", "choices": [3]}}}
    result = tune(values, n_trials=2, out_dir=tmp_path, space=space, panel=panel, progress=False)
    assert (result.n_invalid, result.n_trials) == (2, 0)
    trials = pd.read_parquet(tmp_path / "trials.parquet")
    assert trials["invalid"].str.contains("attention_heads=3 must divide").all()


def test_pruner_and_metric_names():
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("halving"), optuna.pruners.SuccessiveHalvingPruner)
    with pytest.raises(ConfigError, match="unknown pruner 'bogus'"):
        make_pruner("bogus")
    with pytest.raises(ConfigError, match="unknown tuning metric 'r2'"):
        ValidationObjective(_values(), {}, metric="r2", panel=object())
    timing, _ = _config_values("timing_sp500")
    with pytest.raises(ConfigError, match="timing trains on one instrument: use metric 'loss'"):
        ValidationObjective(timing, {}, metric="rank_ic")


# --------------------------------------------------------------------------- search spaces
def test_the_default_space_tunes_the_attention_lstm_and_fits_the_config():
    spaces = load_search_space()
    assert default_space_path().name == "search_space.yaml"
    lstm = spaces["lstm"]
    assert lstm["model.params.hidden_size"].choices == (16, 32, 64, 128)
    assert (lstm["model.params.num_layers"].low, lstm["model.params.num_layers"].high) == (1, 3)
    assert lstm["training.learning_rate"].log and lstm["training.weight_decay"].log
    assert lstm["windows.lookback"].choices == (20, 40, 60)
    assert lstm["training.loss"].choices == ("mse", "ic")
    heads = lstm["model.params.attention_heads"].choices
    assert all(h % d == 0 for h in lstm["model.params.hidden_size"].choices for d in heads)
    check_space(lstm, _values())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "integer", "low": 1, "high": 3}, "type must be one of"),
        ({"type": "int", "high": 3}, "int needs 'low'"),
        ({"type": "int", "low": 3, "high": 1}, "low (3) must not exceed high (1)"),
        ({"type": "int", "low": 1.5, "high": 3}, "must be whole"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"type": "categorical", "choices": []}, "non-empty list of choices"),
        ({"type": "categorical", "choices": [[1, 2]]}, "choices must be numbers"),
        ({"type": "float", "low": 0, "high": 1, "choice": [1]}, "unknown setting(s) ['choice']"),
    ],
)
def test_a_bad_parameter_spec_names_the_model_and_key(tmp_path, spec, message):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"lstm": {"model.params.num_layers": spec}}))
    with pytest.raises(ConfigError) as error:
        load_search_space(path)
    assert "lstm.model.params.num_layers" in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("key", "spec", "message"),
    [
        ("model.params.hiden_size", {"type": "categorical", "choices": [8]}, "hiden_size"),
        ("training.lerning_rate", {"type": "float", "low": 0.1, "high": 0.2}, "lerning_rate"),
        ("training.loss", {"type": "categorical", "choices": ["mse", "nope"]}, "unknown loss"),
        ("windows.lookback", {"type": "int", "low": 0, "high": 20}, "value 0"),
    ],
)
def test_a_key_or_value_the_config_refuses_stops_the_study_up_front(tmp_path, key, spec, message):
    with pytest.raises(ConfigError) as error:
        tune(_values(), n_trials=1, out_dir=tmp_path, space={"lstm": {key: spec}}, progress=False)
    assert f"search space: {key}:" in str(error.value)
    assert message in str(error.value)
    assert not (tmp_path / "study.db").exists()


def test_space_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown model 'tcn'"):
        parse_search_space({"tcn": {"training.loss": {"type": "categorical"}}})
    with pytest.raises(ConfigError, match=r"lstm\.data\.start: data\.\* and model\.name"):
        parse_search_space({"lstm": {"data.start": {"type": "categorical", "choices": ["x"]}}})
    with pytest.raises(ConfigError, match="no entry for model 'gru'"):
        space_for_model(parse_search_space(SPACE), "gru")
    with pytest.raises(ConfigError, match="search space file not found"):
        load_search_space(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("lstm: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_search_space(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="bad study storage URL"):
        tune(_values(), n_trials=1, out_dir=tmp_path, space=SPACE, storage="nodb://x")


# -------------------------------------------------------------- PostgreSQL, many workers
REQUIRE_POSTGRES = os.environ.get("ALPHASEQ_REQUIRE_POSTGRES") == "1"

WORKER = textwrap.dedent(
    """
    import json, sys
    from alphaseq.tuning import tune

    args = json.loads(sys.argv[1])
    result = tune(
        args["values"], n_trials=args["n_trials"], out_dir=args["out_dir"],
        storage=args["storage"], study_name=args["study_name"], space=args["space"],
        seed=args["seed"], progress=False, heartbeat_interval=1, grace_period=3,
    )
    print(json.dumps({"n_trials": result.n_trials}))
    """
)


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def _unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"{reason}, and ALPHASEQ_REQUIRE_POSTGRES=1 requires PostgreSQL")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 and a database for Optuna."""
    bindir = _postgres_bin()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    try:  # SQLAlchemy's default PostgreSQL driver (psycopg 3 with SQLAlchemy >= 2.1)
        sqlalchemy.create_engine("postgresql://")
    except ImportError as exc:
        _unavailable(f"no PostgreSQL driver for SQLAlchemy ({exc}): pip install 'psycopg[binary]'")
    prefix: list[str] = []
    root = tempfile.mkdtemp(prefix="alphaseq-pg-")  # short: the socket path has a limit
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            _unavailable("running as root and there is no 'postgres' user to run the server")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = Path(root) / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "alphaseq", "--auth=trust"],
        **run,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", f"{root}/server.log"]
    subprocess.run([*prefix, *pg_ctl, "-o", options, "-w", "start"], **run)
    try:
        server = f"postgresql://alphaseq@127.0.0.1:{port}"
        engine = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("CREATE DATABASE optuna"))
        engine.dispose()
        yield f"postgresql://alphaseq@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*prefix, *pg_ctl, "-m", "immediate", "-w", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


def _worker(
    tmp_path: Path, name: str, storage: str, study: str, n_trials: int, seed: int, *overrides: str
) -> subprocess.Popen:
    """A worker process running ``tune`` on the shared study."""
    args = {
        "values": _values(*overrides),
        "n_trials": n_trials,
        "out_dir": str(tmp_path / name),
        "storage": storage,
        "study_name": study,
        "space": SPACE,
        "seed": seed,
    }
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # two workers on two cores
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def _load(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def _distinct_params(trials: list[optuna.trial.FrozenTrial]) -> int:
    return len({json.dumps(t.params, sort_keys=True) for t in trials})


def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    # The same seed on both workers, started together: their draws must still differ.
    workers = [_worker(tmp_path, f"w{k}", postgres_url, "shared", 2, seed=0) for k in (1, 2)]
    for process in workers:
        _finish(process)
    trials = _load(postgres_url, "shared")
    assert _distinct_params(trials) == len(trials) == 4
    numbers = [t.number for t in trials]
    assert sorted(numbers) == [0, 1, 2, 3]  # every trial once: unique, none lost
    states = {t.state for t in trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    by_worker = pd.Series([t.user_attrs["worker"] for t in trials]).value_counts()
    assert sorted(by_worker.tolist()) == [2, 2]
    assert {w.split(":")[1] for w in by_worker.index} == {str(p.pid) for p in workers}


def test_a_killed_worker_fails_its_trial_and_the_study_goes_on(postgres_url, tmp_path):
    study = "killed"
    # The victim's trials take a few epochs per fold: it is killed well inside one.
    slow = ("training.epochs=4", "training.patience=4")
    victim = _worker(tmp_path, "victim", postgres_url, study, 20, 1, *slow)
    survivor = _worker(tmp_path, "survivor", postgres_url, study, 2, 2)
    mark = f":{victim.pid}"
    storage, killed = None, None
    try:
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                storage = storage or optuna.storages.RDBStorage(postgres_url)
                trials = optuna.load_study(study_name=study, storage=storage).trials
            except (KeyError, sqlalchemy.exc.SQLAlchemyError):  # no study (or table) yet
                continue
            for trial in trials:
                running = trial.state == optuna.trial.TrialState.RUNNING
                if running and trial.user_attrs.get("worker", "").endswith(mark):
                    victim.send_signal(signal.SIGKILL)  # mid-trial, no chance to clean up
                    killed, killed_at = trial.number, time.monotonic()
                    break
    finally:
        if victim.poll() is None and killed is None:
            victim.kill()
        victim.wait(timeout=30)
    assert killed is not None, "the victim never ran a trial"
    assert victim.returncode == -signal.SIGKILL
    study_id = storage.get_study_id_from_name(study)
    cut_off = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, killed))
    assert cut_off.state == optuna.trial.TrialState.RUNNING  # cut off, not finished
    _finish(survivor)

    # The victim's heartbeat stopped; past the grace period the next worker marks it FAIL.
    time.sleep(max(0.0, killed_at + 4 - time.monotonic()))
    result = tune(
        _values(), n_trials=1, out_dir=tmp_path / "after", storage=postgres_url,
        study_name=study, space=SPACE, seed=3, progress=False, heartbeat_interval=1,
        grace_period=3,
    )  # fmt: skip
    trials = {t.number: t for t in _load(postgres_url, study)}
    assert trials[killed].state == optuna.trial.TrialState.FAIL
    survivor_trials = [
        t for t in trials.values() if t.user_attrs.get("worker", "").endswith(f":{survivor.pid}")
    ]
    assert len(survivor_trials) == 2
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in finished for t in survivor_trials)
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials.values())
    assert sorted(trials) == list(range(len(trials)))
    assert result.n_failed == 1 and result.n_trials == len(trials)
    summary = json.loads((tmp_path / "after" / "tuning.json").read_text())
    assert summary["n_failed"] == 1 and summary["n_trials"] == len(trials)
    assert summary["storage"] == postgres_url


def test_two_workers_on_one_sqlite_study_never_draw_alike(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    workers = [_worker(tmp_path, f"w{k}", storage, "shared", 2, seed=0) for k in (1, 2)]
    for process in workers:
        _finish(process)
    trials = _load(storage, "shared")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert _distinct_params(trials) == 4
    summary = json.loads((tmp_path / "w1" / "tuning.json").read_text())
    assert summary["n_configurations"] <= summary["n_trials"] and "n_running" in summary


def test_trial_seeded_sampler_draws_by_trial_number():
    from alphaseq.tuning.sampler import TrialSeededSampler

    def draws(seed, n=6):
        study = optuna.create_study(sampler=TrialSeededSampler(seed))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n)
        return [t.params["x"] for t in study.trials]

    first = draws(0)
    assert first == draws(0)  # reproducible from the seed
    assert len(set(first)) == 6 and first != draws(1)
    sampler = TrialSeededSampler(0)
    assert len({sampler.trial_seed(k) for k in range(100)}) == 100
    assert TrialSeededSampler(None).trial_seed(3) is None


def test_configurations_tried_counts_distinct_configurations(tmp_path):
    """Two trials that drew the same parameters are one configuration tried."""
    space = {"lstm": {"model.params.hidden_size": {"type": "categorical", "choices": [8]}}}
    result = tune(_values(), n_trials=2, out_dir=tmp_path, space=space, progress=False)
    assert result.n_trials == 2 and result.n_configurations == 1
    best = result.best_config.read_text()
    assert "configurations_tried: 1" in best and "1 distinct configuration(s)" in best


def test_resuming_a_study_with_an_incompatible_space_is_one_clear_error(tmp_path, panel):
    tune(_values(), n_trials=1, out_dir=tmp_path, space=SPACE, progress=False, panel=panel)
    changed = {"lstm": {"model.params.hidden_size": {"type": "int", "low": 4, "high": 8}}}
    with pytest.raises(ConfigError) as error:
        tune(_values(), n_trials=1, out_dir=tmp_path, space=changed, progress=False, panel=panel)
    message = str(error.value)
    assert "drew 'model.params.hidden_size' from CategoricalDistribution" in message
    assert "start a new study (--study NAME)" in message
