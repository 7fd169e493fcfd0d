"""Folds and tuning workers in parallel: local processes (``--workers``) and a real Ray
cluster (``--executor ray``), each giving what one process gives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ci_config
from typer.testing import CliRunner

from alphaseq.cli import app
from alphaseq.errors import ConfigError
from alphaseq.experiment import executors
from alphaseq.experiment.executors import make_executor, threads_per_worker

runner = CliRunner()
REQUIRE_RAY = os.environ.get("ALPHASEQ_REQUIRE_RAY") == "1"


def assert_same_results(run_dir: Path, reference: Path) -> None:
    """Forecasts, weights, returns, fold records and strategy figures equal (timings
    aside)."""
    for table in ("predictions", "weights", "returns"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(run_dir / f"{table}.parquet"),
            pd.read_parquet(reference / f"{table}.parquet"),
            check_exact=True,
        )
    got, expected = (json.loads((d / "folds.json").read_text()) for d in (run_dir, reference))
    assert _untimed(got) == _untimed(expected)
    got, expected = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, reference))
    assert got["strategies"] == expected["strategies"]
    assert got["significance"] == expected["significance"]


def _untimed(value):
    """``value`` without its timings (fold and epoch seconds, samples per second)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


TIMINGS = ("seconds", "samples_per_second")


# ------------------------------------------------------------------ local processes
def test_two_worker_processes_give_the_one_process_results(ci_run, tmp_path):
    from alphaseq.experiment import run

    config = ci_config()
    assert config.training.threads == 1  # the reference trained with one thread per fit
    result = run(config, tmp_path / "w2", workers=2)
    assert_same_results(result.run_dir, ci_run.run_dir)
    log = (result.run_dir / "run.log").read_text()
    assert "in 2 worker processes, 1 torch thread(s) each" in log
    # every fold's own lines come back into the run's log, marked with their worker
    assert sum("[worker " in line and "fold " in line for line in log.splitlines()) == len(
        result.folds
    )


def test_workers_resume_an_interrupted_run(ci_run, tmp_path):
    from alphaseq.experiment import run

    folder = tmp_path / "interrupted"
    shutil.copytree(ci_run.run_dir, folder)
    for name in ("metrics.json", "predictions.parquet", "report.html"):
        (folder / name).unlink()
    shutil.rmtree(folder / "folds" / "01")
    shutil.rmtree(folder / "folds" / "03")
    result = run(ci_config(), folder, resume=True, workers=2)
    assert_same_results(result.run_dir, ci_run.run_dir)
    assert "resuming: folds [0, 2] are finished" in (folder / "run.log").read_text()


def test_threads_are_divided_between_the_workers():
    assert threads_per_worker(2, None, cores=2) == 1
    assert threads_per_worker(2, None, cores=16) == 8
    assert threads_per_worker(4, 2, cores=8) == 2
    with pytest.raises(ConfigError, match=r"--workers 2 × training.threads 2 = 4 threads exceed"):
        threads_per_worker(2, 2, cores=2)
    with pytest.raises(ConfigError, match="--workers 3 exceeds the 2 CPU cores"):
        threads_per_worker(3, None, cores=2)


def test_executor_choices_are_checked_before_anything_runs(tmp_path):
    assert make_executor("local") is None and make_executor("local", workers=1) is None
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        make_executor("dask")
    with pytest.raises(ConfigError, match="--address names a Ray cluster"):
        make_executor("local", address="127.0.0.1:6379")
    cores = executors.available_cores()
    out = tmp_path / "never"
    result = runner.invoke(app, ["run", "ci", "--out", str(out), "--workers", str(cores + 1)])
    assert result.exit_code == 2, result.output
    assert f"--workers {cores + 1} exceeds the {cores} CPU cores" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_script_without_a_main_guard_gets_a_clear_message(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(ConfigError, match='if __name__ == "__main__"'):
        executors.check_not_in_spawned_import()


def test_tuning_workers_share_one_study(tmp_path):
    out = tmp_path / "tune"
    args = ["tune", "ci", "--trials", "3", "--workers", "2", "--out", str(out)]
    result = runner.invoke(app, [*args, "--set", "training.epochs=1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["n_trials"] == 3 and summary["n_running"] == 0
    trials = pd.read_parquet(out / "trials.parquet")
    assert sorted(trials["number"]) == [0, 1, 2]
    assert (out / "best.yaml").is_file()


# ------------------------------------------------------------------------------ Ray
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real Ray head on 127.0.0.1 with two worker CPUs (``ray start --head``), stopped
    afterwards; its address."""
    try:
        import ray  # noqa: F401
    except ImportError:
        reason = "Ray is not installed (pip install 'alphaseq[ray]')"
        if REQUIRE_RAY:
            pytest.fail(f"{reason}, and ALPHASEQ_REQUIRE_RAY=1 requires it")
        pytest.skip(reason)
    port = _free_port()
    # A head on this machine only, for this test module: no usage report, and no token
    # authentication (Ray 2.5x turns it on when ~/.ray/auth_token exists, and then its
    # own 'ray status' cannot reach the head).
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--block",  # stopping this process stops the cluster it started, nothing else
    ]
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with open(log, "w") as output:
        head = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE",)}
    os.environ["RAY_AUTH_MODE"] = "disabled"  # the clients in this process, likewise
    try:
        deadline = time.monotonic() + 120
        while not _head_answers(command[0], address, env):
            if head.poll() is not None or time.monotonic() > deadline:
                head.kill()
                head.wait()
                pytest.fail(f"the Ray head did not start: {log.read_text()[-2000:]}")
            time.sleep(1)
        yield address
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        # 'ray start' leaves a note of its cluster for ray.init(); drop ours, now dead.
        note = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if note.is_file() and note.read_text().strip().endswith(f":{port}"):
            note.unlink()


def _head_answers(ray: str, address: str, env: dict) -> bool:
    try:
        status = subprocess.run(
            [ray, "status", f"--address={address}"], env=env, capture_output=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return False
    return status.returncode == 0


def test_ray_cluster_runs_the_folds_as_one_process_does(ci_run, ray_cluster, tmp_path):
    out = tmp_path / "ray"
    result = runner.invoke(
        app, ["run", "ci", "--out", str(out), "--executor", "ray", "--address", ray_cluster]
    )
    assert result.exit_code == 0, result.output
    assert_same_results(out, ci_run.run_dir)
    assert "as Ray tasks (1 CPU each, GPU: no" in (out / "run.log").read_text()


def _fold_tasks() -> list[int]:
    """PIDs of Ray workers running a fold now (Ray names the process after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::alphaseq-fold"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's workers through /proc")
def test_a_fold_task_killed_midway_is_retried(ci_run, ray_cluster, tmp_path):
    from alphaseq.experiment import run

    outcome: dict = {}

    def start() -> None:
        try:
            outcome["result"] = run(
                ci_config(), tmp_path / "killed", executor="ray", address=ray_cluster
            )
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=start)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        running = _fold_tasks()
        if running:
            killed = running[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None, "no fold task was seen running"
    assert "error" not in outcome, outcome.get("error")
    assert_same_results(outcome["result"].run_dir, ci_run.run_dir)


def test_tuning_workers_as_ray_tasks(ray_cluster, tmp_path):
    out = tmp_path / "tune-ray"
    args = ["tune", "ci", "--trials", "2", "--workers", "2", "--out", str(out)]
    result = runner.invoke(
        app,
        [*args, "--executor", "ray", "--address", ray_cluster, "--set", "training.epochs=1"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["n_trials"] == 2 and summary["n_complete"] == 2


# ----------------------------------------------------------------- torchrun (DDP)
def test_run_with_ddp_trains_each_fold_on_two_processes(ci_run, tmp_path):
    out = tmp_path / "ddp"
    alphaseq = Path(sys.executable).with_name("alphaseq")
    done = subprocess.run(
        [str(alphaseq), "run", "ci", "--ddp", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torchrun 2 processes" in done.stderr
    # rank 0 alone wrote and printed: one run directory, one summary
    assert done.stdout.count("run directory:") == 1
    got = pd.read_parquet(out / "predictions.parquet")
    expected = pd.read_parquet(ci_run.run_dir / "predictions.parquet")
    pd.testing.assert_frame_equal(
        got.drop(columns="prediction"), expected.drop(columns="prediction"), check_exact=True
    )
    # the one-process steps, to float rounding (sums over two ranks run in another order)
    assert (got["prediction"] - expected["prediction"]).abs().max() < 1e-5
    assert sorted(p.name for p in (out / "folds").iterdir()) == ["00", "01", "02", "03"]


def test_ddp_is_not_combined_with_workers(tmp_path):
    out = tmp_path / "never"
    result = runner.invoke(app, ["run", "ci", "--out", str(out), "--ddp", "2", "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert "--ddp trains each fold on all its processes together" in result.output
    assert not out.exists()


def test_tuning_workers_print_a_line_per_trial_even_in_a_terminal(monkeypatch):
    import rich.console

    from alphaseq.tuning.search import _Progress

    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    assert not _Progress(True, 2, "study")._lines  # one process: a progress bar
    assert _Progress("lines", 2, "study")._lines  # workers sharing the terminal: lines
    assert not _Progress(False, 2, "study")._lines
