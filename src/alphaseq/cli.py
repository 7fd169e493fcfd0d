"""The ``alphaseq`` command line: a thin front over the library, no logic of its own."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from alphaseq import __version__
from alphaseq._safe import path_safe_name
from alphaseq.errors import AlphaseqError

app = typer.Typer(
    name="alphaseq",
    help="Attention-LSTM forecasts, constrained portfolios and leak-free walk-forward backtests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect price data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
config_app = typer.Typer(
    help="Show a resolved config and every key it may set.", no_args_is_help=True
)
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(command: F) -> F:
    """Print an :class:`AlphaseqError` as one line on stderr and exit 2, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AlphaseqError as exc:
            # The message is the user's text and ours: '[mlflow]' or a key like 'a[0]' is
            # not rich markup.
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(2) from None
        except OSError as exc:
            # An output path that is a file, a read-only file system, a full disk: the
            # user's environment, not a bug.
            where = f" '{exc.filename}'" if exc.filename else ""
            reason = exc.strerror or str(exc)
            err_console.print(
                f"[bold red]error:[/] cannot read or write{where}: {reason}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            if _VERBOSE:
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {str(exc)[:300]}"
                " - run again with --verbose for the traceback, and please report it",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


#: Set by ``--verbose``: unexpected errors then show their traceback.
_VERBOSE = False


def _setup_logging(verbose: bool) -> None:
    handler = RichHandler(console=err_console, show_path=False, show_time=False)
    # The handler filters, not the logger: a run's log file still receives INFO records.
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("alphaseq").setLevel(logging.INFO if verbose else logging.WARNING)


def _version(value: bool) -> None:
    if value:
        console.print(f"alphaseq {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """alphaseq: learn temporal patterns in stock panels and test them honestly."""
    global _VERBOSE
    _VERBOSE = verbose
    _setup_logging(verbose)


@data_app.command("check")
@_user_errors
def data_check(
    source: Annotated[
        str, typer.Argument(help="A .csv/.parquet file (long or wide) or a built-in name: sp500.")
    ],
    lookback: Annotated[int, typer.Option(min=1, help="Planned lookback window (days).")] = 60,
    horizon: Annotated[int, typer.Option(min=1, help="Planned label horizon (days).")] = 21,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    date_format: Annotated[
        str | None,
        typer.Option("--date-format", help="strptime format of the dates, e.g. %d/%m/%Y."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA zone whose calendar offsets are read in."),
    ] = None,
    top_n: Annotated[
        int | None,
        typer.Option(
            "--top-n",
            min=1,
            help="Preview data.universe: the N most liquid tickers, chosen at each month end.",
        ),
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="Universe: trailing days of volume.")] = 63,
    min_price: Annotated[
        float | None, typer.Option("--min-price", min=0, help="Universe: minimum close.")
    ] = None,
    min_coverage: Annotated[
        float | None,
        typer.Option("--min-coverage", min=0, max=1, help="Universe: minimum share of days."),
    ] = None,
) -> None:
    """Load a price panel and summarise its coverage and data errors (and, with --top-n,
    how a point-in-time universe changes over time)."""
    from alphaseq.data import load_panel
    from alphaseq.data.checks import summarize

    package_logger = logging.getLogger("alphaseq")
    level = package_logger.level
    if level > logging.INFO:  # the summary lists the repairs itself
        package_logger.setLevel(logging.ERROR)
    try:
        panel = load_panel(source, date_format=date_format, timezone=timezone)
    finally:
        package_logger.setLevel(level)
    summary = summarize(panel, lookback=lookback, horizon=horizon)
    changes = None
    if top_n is not None:
        from alphaseq.backtest.engine import month_end_rows
        from alphaseq.data.universe import select_universe, universe_changes

        chosen = select_universe(
            panel,
            month_end_rows(panel.dates),
            top_n=top_n,
            window=window,
            min_price=min_price,
            min_coverage=min_coverage,
        )
        changes = chosen
    if as_json:
        extra = {} if changes is None else {"universe": universe_changes(changes)}
        console.print_json(json.dumps(summary.to_dict() | extra))
        return
    _print_summary(summary)
    if changes is not None:
        _print_universe(changes, top_n)


def _print_universe(chosen: Any, top_n: int) -> None:
    from alphaseq.data.universe import universe_changes

    changes = universe_changes(chosen, by="year", examples=4)
    console.print(
        f"\nuniverse: top {top_n} by average dollar volume, chosen at each month end from "
        "data up to that day (the first selection is the starting universe)",
        highlight=False,
    )
    table = Table("year", "members", "entries", "exits", "e.g. entered", "e.g. left")
    for year in changes.itertuples():
        table.add_row(
            year.period,
            str(year.members),
            str(year.entries),
            str(year.exits),
            ", ".join(year.entered),
            ", ".join(year.exited),
        )
    console.print(table)


def _print_summary(summary: Any) -> None:
    from alphaseq.data.checks import STALE_RUN

    table = Table(title=f"Data check: {summary.name}", show_header=False, title_justify="left")
    table.add_column(style="bold", overflow="fold")
    table.add_column(overflow="fold")
    table.add_row("source", f"{summary.source} ({summary.layout})")
    if summary.input_rows is not None:
        table.add_row("input rows", f"{summary.input_rows:,}")
    table.add_row("tickers", f"{summary.tickers:,}")
    table.add_row("dates", f"{summary.dates:,}  ({summary.first_date} .. {summary.last_date})")
    table.add_row("valid (date, ticker) cells", f"{summary.valid_cells:,}")
    table.add_row("fields", ", ".join(summary.fields))
    table.add_row(
        "missing within ticker lives",
        ", ".join(f"{k} {v:.3%}" for k, v in summary.missing_in_life.items()),
    )
    table.add_row("zero or negative prices", f"{summary.non_positive_prices:,} (set to missing)")
    if summary.zero_volume_cells is not None:
        table.add_row("zero-volume days", f"{summary.zero_volume_cells:,}")
    moves = f"{summary.large_moves:,}"
    if summary.large_move_examples:
        moves += "  e.g. " + ", ".join(
            f"{e['ticker']} {e['date']} {e['move']:+.0%}" for e in summary.large_move_examples[:3]
        )
    table.add_row("one-day moves over 50%", moves)
    weekend = summary.weekend_dates
    table.add_row(
        "weekend dates",
        f"{len(weekend)}"
        + (f"  e.g. {', '.join(weekend[:3])} (day and month swapped?)" if weekend else ""),
    )
    stale = summary.stale_tickers
    table.add_row(
        f"not trading (>= {STALE_RUN} days flat or without volume)",
        f"{len(stale)}"
        + (
            ": " + ", ".join(f"{s['ticker']} {s['days']}d from {s['since']}" for s in stale[:5])
            if stale
            else ""
        ),
    )
    short = summary.short_tickers
    need = summary.lookback + summary.horizon
    table.add_row(
        f"tickers with < {need} days (lookback {summary.lookback} + horizon {summary.horizon})",
        f"{len(short)}"
        + (f": {', '.join(short[:8])}{' ...' if len(short) > 8 else ''}" if short else ""),
    )
    table.add_row("benchmark", summary.benchmark or "none")
    if summary.survivorship_bias:
        table.add_row("survivorship bias", summary.survivorship_bias)
    console.print(table)
    if summary.repairs:
        console.print("[bold]Repairs made while loading[/]")
        for repair in summary.repairs:
            console.print(f"  - {repair['detail']}", highlight=False)
    else:
        console.print("No repairs were needed while loading.")


@data_app.command("list")
def data_list() -> None:
    """List the built-in data sets."""
    from alphaseq.data import datasets

    table = Table("name", "description")
    for name in sorted(datasets.DATASETS):
        table.add_row(name, datasets.DESCRIPTIONS.get(name, ""))
    console.print(table)


@app.command("features")
def features_list() -> None:
    """List the feature families and the default feature set."""
    from alphaseq.features import DEFAULT_FEATURES, FEATURE_FAMILIES

    table = Table("family", "default window", "needs", "what")
    for family in FEATURE_FAMILIES.values():
        table.add_row(
            family.name,
            "-" if family.default_window is None else str(family.default_window),
            ", ".join(family.requires),
            family.description,
        )
    console.print(table)
    console.print("default set: " + ", ".join(DEFAULT_FEATURES), highlight=False)


@config_app.command("show")
@_user_errors
def config_show(
    config: Annotated[
        str | None,
        typer.Argument(help="Experiment YAML, or a packaged name (default: quickstart)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config value: dotted.key=value (repeatable)."),
    ] = None,
    changed: Annotated[
        bool, typer.Option("--changed", help="Only the keys the config sets, not the defaults.")
    ] = False,
) -> None:
    """Print the fully resolved config (every default filled in) as YAML."""
    import yaml

    from alphaseq.config import apply_overrides, parse_config, resolve_config

    values, source = _config_values(config)
    experiment = resolve_config(
        parse_config(apply_overrides(values, list(overrides or [])), source=source)
    )
    dump = experiment.model_dump(mode="json", exclude_unset=changed)
    console.print(
        f"# {source}" + (" (keys it sets)" if changed else ", resolved with every default"),
        highlight=False,
        markup=False,
    )
    console.print(yaml.safe_dump(dump, sort_keys=False).rstrip(), highlight=False, markup=False)


@config_app.command("keys")
@_user_errors
def config_keys_command(
    pattern: Annotated[
        str | None,
        typer.Argument(help="Only keys containing this text, e.g. 'training' or 'lookback'."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="List this model's model.params instead (e.g. lstm)."),
    ] = None,
) -> None:
    """List every config key with its type, default and description."""
    from alphaseq.config import config_keys, model_parameters

    keys = model_parameters(model) if model else config_keys()
    if pattern:
        keys = [k for k in keys if pattern.lower() in k.key.lower()]
        if not keys:
            from alphaseq._config_base import did_you_mean
            from alphaseq.errors import ConfigError

            names = {part for k in config_keys() for part in k.key.split(".")}
            raise ConfigError(f"no config key contains {pattern!r}{did_you_mean(pattern, names)}")
    table = Table("key", "type", "default", "description", show_lines=False)
    for key in keys:
        table.add_row(key.key, key.type, key.default, key.description)
    console.print(table)


def _config_values(config: str | None) -> tuple[dict[str, Any], str]:
    """Read a config by path, or by the name of a packaged config (default: quickstart)."""
    from alphaseq.experiment.configs import read_experiment_values

    return read_experiment_values(config or "quickstart")


def _threads_override(threads: int | None) -> list[str]:
    """``--threads N`` as the ``--set`` it stands for."""
    return [] if threads is None else [f"training.threads={threads}"]


@app.command("run")
@_user_errors
def run_command(
    config: Annotated[
        str | None,
        typer.Argument(help="Experiment YAML, or a packaged name (default: quickstart)."),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Override data.source (file or built-in name).")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Run directory (default: runs/NAME-TIMESTAMP).")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config value: dotted.key=value (repeatable)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run in --out from its first "
            "unfinished fold (same config and data).",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace whatever --out holds.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check the config and the data, print the resolved config and the folds, "
            "train nothing and write nothing.",
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="CPU threads for torch (sets training.threads)."),
    ] = None,
    track: Annotated[
        str | None,
        typer.Option("--track", help="Log the finished run to an experiment tracker: mlflow."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Train this many folds at once (local processes, the CPU cores divided "
            "between them; with --executor ray: at most this many Ray tasks).",
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option("--executor", help="Where folds train: local (this machine) or ray."),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster for --executor ray: auto (started here with 'ray start'), "
            "host:6379 or ray://host:10001 (default: RAY_ADDRESS, else a local instance).",
        ),
    ] = None,
    ddp: Annotated[
        int | None,
        typer.Option(
            "--ddp",
            min=1,
            help="Train each fold data-parallel on N processes (one GPU each; gloo on CPU), "
            "relaunching this command under torchrun.",
        ),
    ] = None,
) -> None:
    """Run a walk-forward experiment: train per fold, forecast, backtest, write a run directory."""
    import datetime as dt
    from pathlib import Path

    from alphaseq._progress import RunProgress
    from alphaseq.config import apply_overrides, parse_config
    from alphaseq.errors import ConfigError

    if track is not None:
        from alphaseq.tracking import check_tracker

        check_tracker(track)  # before training: a typo or a missing extra answers at once
    values, source = _config_values(config)
    values = apply_overrides(values, [*(overrides or []), *_threads_override(threads)])
    if data is not None:
        values.setdefault("data", {})
        values["data"] = dict(values["data"] or {}) | {"source": data}
    experiment = parse_config(values, source=source)
    if ddp is not None and ((workers or 1) > 1 or executor != "local"):
        raise ConfigError(
            "--ddp trains each fold on all its processes together: it cannot be combined "
            "with --workers or --executor ray"
        )
    # Only now the heavy imports (torch, skfolio): a config mistake answers at once.
    from alphaseq.experiment import RunRecord, run
    from alphaseq.experiment.executors import make_executor
    from alphaseq.training import distributed

    # A bad --workers/--executor/--address answers before anything is printed or made.
    make_executor(executor, workers=workers, address=address, threads=experiment.training.threads)

    if dry_run:
        _dry_run(experiment)
        return
    launch = distributed.environment()
    if ddp is not None and launch is None:
        _relaunch_under_torchrun(ddp)  # this process only waits for torchrun's
        return
    if launch is not None and launch.rank != 0:
        # The other ranks of a torchrun launch train with rank 0 and print nothing.
        run(experiment, Path(out or "."), resume=resume, force=force)
        return
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if resume and not out:
        raise ConfigError("--resume needs the run directory to continue: pass --out DIR")
    # The name is the user's text: one safe path component, never a way out of runs/.
    run_dir = Path(out) if out else Path("runs") / f"{path_safe_name(experiment.name)}-{stamp}"
    if not resume and not force:
        RunRecord.check_new(run_dir)  # before the progress display starts
    verb = "resuming" if resume else "alphaseq run"
    err_console.print(f"[bold]{verb}[/] {experiment.name} -> {run_dir}", highlight=False)
    # One live display in a terminal: fold, epoch, ETA and the running epoch's batches
    # (the trainer's progress callback reports to it); a log gets plain lines instead.
    progress = RunProgress.for_config(
        err_console,
        experiment,
        folds_done=len(RunRecord(run_dir).finished_folds()) if resume else 0,
    )

    def on_fold(done: int, total: int) -> None:
        progress.fold_done(done, total)
        if not err_console.is_terminal and done:
            err_console.print(f"fold {done}/{total} done", highlight=False)

    with progress:
        result = run(
            experiment,
            run_dir,
            on_fold=on_fold,
            resume=resume,
            force=force,
            workers=workers,
            executor=executor,
            address=address,
        )
    _print_strategies(result.metrics)
    console.print(f"run directory: {run_dir}", highlight=False)
    if (run_dir / "report.html").is_file():
        console.print(f"report: {run_dir / 'report.html'}", highlight=False)
    if track is not None:
        from alphaseq import tracking

        run_id = tracking.log_run(run_dir)
        uri = tracking.resolve_tracking_uri()
        console.print(f"mlflow run {run_id} logged to {uri}", highlight=False, soft_wrap=True)


def _relaunch_under_torchrun(processes: int) -> None:
    """``alphaseq run ... --ddp N``: the same command under ``torchrun`` with N processes
    on this machine (without ``--ddp``); exits with its status."""
    import subprocess
    import sys

    from alphaseq.training.distributed import torchrun_command

    arguments, skip = [], False
    for argument in sys.argv[1:]:
        if skip:
            skip = False
        elif argument == "--ddp":
            skip = True
        elif not argument.startswith("--ddp="):
            arguments.append(argument)
    command = torchrun_command(arguments, processes)
    err_console.print(f"[bold]torchrun[/] {processes} processes", highlight=False)
    status = subprocess.run(command).returncode
    if status:
        raise typer.Exit(status)


def _dry_run(experiment: Any) -> None:
    """What ``run`` would do: the resolved config, the data and the folds."""
    import yaml

    from alphaseq.experiment import (
        check_universe,
        load_run_panel,
        make_splitter,
        resolve_config,
        timing_setup,
    )

    panel = load_run_panel(experiment)
    if experiment.mode == "timing":
        panel, experiment = timing_setup(experiment, panel)
    else:
        check_universe(experiment, panel)
    experiment = resolve_config(experiment)
    horizon = max(experiment.labels.horizons)
    folds = make_splitter(experiment).split(panel.dates, horizon)
    console.print(
        yaml.safe_dump(experiment.model_dump(mode="json", exclude_unset=True), sort_keys=False),
        highlight=False,
        markup=False,
    )
    console.print(
        f"data: {panel.name}, {panel.n_tickers} tickers, {panel.n_dates} dates; "
        f"{len(folds)} walk-forward folds; nothing was trained or written (--dry-run)",
        highlight=False,
    )


def _print_strategies(metrics: dict[str, Any]) -> None:
    from alphaseq.backtest.significance import verdicts

    # The verdict first: what a portfolio manager asks before any table.
    for line in verdicts(metrics.get("significance") or {}):
        style = "green" if ": better" in line else "red" if ": worse" in line else "bold"
        console.print(f"[{style}]verdict[/] {line}", highlight=False, soft_wrap=True)
    columns = [
        ("total_return", "total", "{:+.1%}"),
        ("ann_return", "ann. return", "{:+.1%}"),
        ("ann_vol", "ann. vol", "{:.1%}"),
        ("sharpe", "Sharpe", "{:.2f}"),
        ("sortino", "Sortino", "{:.2f}"),
        ("max_drawdown", "max DD", "{:.1%}"),
        ("calmar", "Calmar", "{:.2f}"),
        ("turnover", "turnover", "{:.1%}"),
        ("information_ratio", "IR", "{:.2f}"),
    ]
    run = metrics.get("run", {})
    oos = run.get("out_of_sample", {})
    if run.get("mode") == "timing":
        columns += [
            ("time_in_market", "in market", "{:.0%}"),
            ("win_rate", "win rate", "{:.0%}"),
            ("n_trades", "trades", "{:d}"),
        ]
        detail = "timing one instrument"
    else:
        detail = f"top-k = {run.get('top_k')}"
    table = Table(
        title=(
            f"Out of sample {oos.get('start')}..{oos.get('end')}, net of "
            f"{run.get('cost_bps')} bps costs, {detail}"
        ),
        title_justify="left",
    )
    table.add_column("strategy", style="bold", no_wrap=True, min_width=12)
    for _, header, _ in columns:
        table.add_column(header, justify="right")
    construction = metrics.get("construction") or {}
    failed = {
        name: block.get("failure")
        for name, block in construction.items()
        if isinstance(block, dict) and block.get("failed")
    }
    for name, figures in metrics["strategies"].items():
        if name in failed:  # flat cash is no result: no figures, a clear mark
            table.add_row(f"[red]{name}[/]", "[red]failed[/]", *["-"] * (len(columns) - 1))
            continue
        cells = []
        for key, _, fmt in columns:
            value = figures.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(name, *cells)
    console.print(table)
    console.print(
        "turnover: one-way, ½ Σ|Δw| per rebalance (100 % = the whole book replaced), the "
        "initial build left out",
        highlight=False,
        style="dim",
    )
    for name, reason in failed.items():
        console.print(
            f"[red]strategy {name} failed[/]: {reason}; it never traded (see run.log)",
            highlight=False,
        )
    _print_significance(metrics.get("significance", {}))
    forecast = metrics.get("forecast", {})
    # The direction accuracy of metrics.json, as the report shows it: with its baseline.
    direction = (
        f"direction accuracy {_fmt(forecast.get('direction_accuracy'), '{:.1%}')} (always up "
        f"{_fmt(forecast.get('always_up_accuracy'), '{:.1%}')})"
    )
    against = f" against {forecast['label']}" if forecast.get("label") else ""
    if forecast.get("time_series_ic") is not None:
        console.print(
            f"forecast{against}: time-series IC {forecast['time_series_ic']:.3f}, {direction} "
            f"over {forecast['n_predictions']} dates",
            highlight=False,
        )
    if forecast.get("ic") is not None:
        console.print(
            f"forecast{against}: IC {forecast['ic']:.3f}, rank IC {forecast['rank_ic']:.3f}, "
            f"ICIR {_fmt(forecast.get('icir'), '{:.2f}')}, {direction} over "
            f"{forecast['n_dates']} dates",
            highlight=False,
        )
    for horizon, entry in (metrics.get("classification") or {}).items():
        report = entry.get("report") or {}
        console.print(
            f"classification ({horizon} days): accuracy {_fmt(report.get('accuracy'), '{:.1%}')}"
            f" (always {entry.get('majority_class')}: "
            f"{_fmt(entry.get('majority_class_rate'), '{:.1%}')}) over {entry.get('n')} "
            "forecasts",
            highlight=False,
        )
    _print_diagnostics(metrics.get("diagnostics"), metrics.get("training") or {})
    bias = metrics.get("data", {}).get("survivorship_bias")
    if bias:
        console.print(f"[yellow]survivorship bias:[/] {bias}", highlight=False)


def _interval(summary: dict[str, Any], key: str, spec: str) -> str:
    low, high = summary.get(key) or (None, None)
    return f"[{_fmt(low, spec)}, {_fmt(high, spec)}]"


def _print_diagnostics(diagnostics: dict[str, Any] | None, training: dict[str, Any]) -> None:
    """Rank IC with its interval, quintile spread, decay and the single factors."""
    if not diagnostics:
        return
    model, h = diagnostics["model"], diagnostics["horizon"]
    ic, q = model["rank_ic"], model["quantiles"]
    decay = model.get("decay") or {}
    console.print(
        f"diagnostics ({h}-day raw forward return, 95 % Newey-West intervals): rank IC "
        f"{_fmt(ic['rank_ic'], '{:.3f}')} {_interval(ic, 'rank_ic_ci', '{:.3f}')}; top-bottom "
        f"quintile {_fmt(q['spread'], '{:+.2%}')} {_interval(q, 'spread_ci', '{:+.2%}')}; rank IC "
        "by horizon "
        + ", ".join(f"{k}d {_fmt(v['rank_ic'], '{:.3f}')}" for k, v in decay.items())
        + f"; rank autocorrelation {_fmt(model['autocorrelation']['mean'], '{:.2f}')}",
        highlight=False,
    )
    factors = diagnostics.get("factors") or {}
    if factors:
        console.print(
            "single factors on the same samples: "
            + ", ".join(
                f"{name} {_fmt(f['rank_ic']['rank_ic'], '{:.3f}')} "
                f"{_interval(f['rank_ic'], 'rank_ic_ci', '{:.3f}')}"
                for name, f in factors.items()
            ),
            highlight=False,
        )
    if training.get("first_epoch_share") is not None:
        of = (
            f"{training['fits']} member fits"
            if "fits" in training
            else f"{training['folds']} folds"
        )
        line = f"training: best epoch was the first in {training['first_epoch_stops']} of {of}"
        selection = training.get("selection") or {}
        if selection.get("folds_scored"):
            line += (
                f"; it beat the first by more than validation noise (paired t >= 2) in "
                f"{selection['significant_gains']} of {selection['folds_scored']}"
            )
        console.print(line, highlight=False)


def _print_significance(significance: dict[str, Any]) -> None:
    from alphaseq.backtest.significance import difference_text, difference_verdict

    if not significance:
        return
    baselines = sorted({b for s in significance.values() for b in s.get("vs", {})})
    table = Table(
        title="Significance: PSR = P(true Sharpe > 0), DSR = PSR deflated for the trials "
        "run; annualised Sharpe difference with the p of its Jobson-Korkie/Memmel test "
        "(green: significantly better, red: worse, at 5 %)",
        title_justify="left",
    )
    table.add_column("strategy", style="bold", no_wrap=True, min_width=12)
    for header in ("PSR", "DSR", "trials", *(f"ΔSharpe (p) vs {b}" for b in baselines)):
        table.add_column(header, justify="right")
    styles = {"better": "green", "worse": "red"}
    for name, figures in significance.items():
        cells = [
            _fmt(figures.get("psr"), "{:.2f}"),
            _fmt(figures.get("dsr"), "{:.2f}"),
            str(figures.get("n_trials", "-")),
        ]
        for baseline in baselines:
            test = figures.get("vs", {}).get(baseline, {})
            text = difference_text(test) or "-"
            style = styles.get(difference_verdict(test) or "")
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(name, *cells)
    console.print(table)


def _fmt(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


@app.command("compare")
@_user_errors
def compare_command(
    configs: Annotated[
        list[str],
        typer.Argument(help="Experiment YAMLs or packaged names, run on the same folds."),
    ],
    out: Annotated[
        str | None,
        typer.Option("--out", help="Study directory (default: runs/study-TIMESTAMP)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a value in every config: dotted.key=value."),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Also print the table as Markdown.")
    ] = False,
    tried: Annotated[
        int | None,
        typer.Option(
            "--tried",
            help="Configurations tried in the whole study, when these extend an earlier "
            "one (the DSR is deflated for them; default: the configs given).",
        ),
    ] = None,
) -> None:
    """A forecast study: run several configurations on the same folds and print one table
    (rank IC with its 95 % interval, quintile spread, top-k Sharpe vs equal weight, time,
    first-epoch stops), with the single factors scored on the same samples."""
    import datetime as dt
    from pathlib import Path

    from alphaseq.config import apply_overrides, parse_config
    from alphaseq.experiment.compare import STUDY_COLUMNS, compare, format_cell

    experiments = []
    for name in configs:
        values, source = _config_values(name)
        values = apply_overrides(values, list(overrides or []))
        experiments.append(parse_config(values, source=source))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    study_dir = Path(out) if out else Path("runs") / f"study-{stamp}"

    def on_run(k: int, total: int, name: str) -> None:
        err_console.print(f"[bold]run {k + 1}/{total}[/] {name}", highlight=False)

    study = compare(experiments, study_dir, on_run=on_run, configurations_tried=tried)
    title = (
        f"Forecast study on the same folds ({study.configurations_tried} "
        "configurations tried; DSR deflated for all of them)"
    )
    # As many tables as the terminal's width needs, columns in order, so that no column
    # is squeezed to nothing (rich shrinks columns that do not fit).
    cells = {key: [format_cell(row, key, f) for row in study.rows] for key, _, f in STUDY_COLUMNS}
    first = max(len(str(row["name"])) for row in study.rows) + 4
    parts: list[list] = [[]]
    used = first
    for column in STUDY_COLUMNS:
        key, header = column[0], column[1]
        need = max([len(c) for c in cells[key]] + [len(w) for w in header.split()]) + 3
        if parts[-1] and used + need > console.width:
            parts.append([])
            used = first
        parts[-1].append(column)
        used += need
    for k, columns in enumerate(parts):
        table = Table(title=title if k == 0 else None, title_justify="left")
        table.add_column("", style="bold", no_wrap=True)
        for _, header, _ in columns:
            table.add_column(header, justify="right")
        for r, row in enumerate(study.rows):
            table.add_row(row["name"], *(cells[key][r] for key, _, _ in columns))
        console.print(table)
    if markdown:
        console.print(study.to_markdown(), highlight=False, markup=False)
    console.print(f"study directory: {study_dir}", highlight=False)


@app.command("tune")
@_user_errors
def tune_command(
    config: Annotated[
        str, typer.Argument(help="Experiment YAML, or a packaged name (quickstart, ci, ...).")
    ],
    trials: Annotated[int, typer.Option("--trials", min=1, help="Trials this worker adds.")],
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop starting trials after S seconds.")
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL (default: SQLite in --out).")
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study to create or join.")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Output directory.")] = None,
    space: Annotated[
        str | None, typer.Option("--space", help="Search-space YAML (default: packaged).")
    ] = None,
    metric: Annotated[
        str, typer.Option("--metric", help="Validation figure: rank_ic, ic, sharpe or loss.")
    ] = "rank_ic",
    pruner: Annotated[str, typer.Option("--pruner", help="median, halving or none.")] = "median",
    seed: Annotated[
        int,
        typer.Option("--seed", help="Sampler seed; each trial draws from it and its trial number."),
    ] = 0,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="CPU threads for torch (sets training.threads)."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config value (repeatable).")
    ] = None,
    track: Annotated[
        str | None,
        typer.Option("--track", help="Log the study to an experiment tracker: mlflow."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Run this many workers on the study at once (local processes, or Ray tasks "
            "with --executor ray); --trials is then the total.",
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option("--executor", help="Where workers run: local (this machine) or ray."),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster for --executor ray (see alphaseq run)."),
    ] = None,
) -> None:
    """Search hyper-parameters on the walk-forward VALIDATION windows only (never the tests)."""
    import datetime as dt
    from pathlib import Path

    from alphaseq.config import apply_overrides
    from alphaseq.errors import ConfigError
    from alphaseq.tuning import tune

    if track is not None:
        from alphaseq.tracking import check_tracker

        check_tracker(track)  # before any trial: a typo or a missing extra answers at once
    values, source = _config_values(config)
    values = apply_overrides(values, [*(overrides or []), *_threads_override(threads)])
    name = values.get("name", "experiment")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out) if out else Path("runs") / f"tune-{path_safe_name(name)}-{stamp}"
    settings = {
        "timeout": timeout,
        "storage": storage,
        "study_name": study,
        "out_dir": out_dir,
        "space": space,
        "pruner": pruner,
        "metric": metric,
        "seed": seed,  # per trial number: workers sharing a study never draw alike
        "source": source,
    }
    if (workers or 1) > 1 or executor != "local":
        from alphaseq.tuning.workers import tune_in_parallel

        result = tune_in_parallel(
            values,
            n_trials=trials,
            workers=workers or 1,
            executor=executor,
            address=address,
            **settings,
        )
    else:
        if address is not None:
            raise ConfigError("--address names a Ray cluster: use it with --executor ray")
        result = tune(values, n_trials=trials, **settings)
    console.print(
        f"study {result.study_name!r}: {result.n_trials} trials recorded "
        f"({result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed, "
        f"{result.n_running} running elsewhere; {result.n_configurations} distinct "
        f"configurations); best validation {metric}: {result.best_value}",
        highlight=False,
    )
    if result.best_config is not None:
        console.print(f"best configuration: {result.best_config}", highlight=False)
        console.print(f"run it:  alphaseq run {result.best_config}", highlight=False)
    if track is not None:
        from alphaseq import tracking

        run_id = tracking.log_tuning(result.out_dir, experiment=str(name))
        uri = tracking.resolve_tracking_uri()
        console.print(
            f"mlflow parent run {run_id} logged to {uri}", highlight=False, soft_wrap=True
        )


@app.command("backtest")
@_user_errors
def backtest_command(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by alphaseq run.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Change a portfolio key: portfolio.key=value (repeatable)."),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Write the new results there (default: in RUN_DIR)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write report.html (the slow part).")
    ] = True,
) -> None:
    """Trade a run's stored forecasts again (portfolios, costs, baselines, significance,
    report) without retraining."""
    from alphaseq.experiment import rebacktest

    result = rebacktest(run_dir, list(overrides or []), out_dir=out, force=force, report=report)
    _print_strategies(result.metrics)
    console.print(f"run directory: {result.run_dir}", highlight=False)
    if (result.run_dir / "report.html").is_file():
        console.print(f"report: {result.run_dir / 'report.html'}", highlight=False)


@app.command("report")
@_user_errors
def report_command(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by alphaseq run.")],
) -> None:
    """Write RUN_DIR/report.html: one self-contained page with tables and charts."""
    from alphaseq.errors import ConfigError
    from alphaseq.experiment import RunRecord
    from alphaseq.report import build_report

    record = RunRecord(run_dir)
    if not record.run_dir.is_dir():
        raise ConfigError(f"run directory not found: '{record.run_dir}'")
    record.read_metrics()  # a missing or damaged metrics.json: one clear message
    path = build_report(record.run_dir)
    console.print(f"report written to {path}", highlight=False)


@app.command("predict")
@_user_errors
def predict_command(
    run_dir: Annotated[
        str | None,
        typer.Argument(help="A run directory: forecast with one of its folds' models."),
    ] = None,
    fold: Annotated[
        int | None,
        typer.Option("--fold", min=0, help="Which fold's model (default: the last one)."),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="A forecaster checkpoint instead of a run directory."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Prices to forecast from (default: the run's data)."),
    ] = None,
    date: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Date to forecast (default: the last date); a weekend or holiday means "
            "the last trading day before it.",
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Write .parquet or .csv instead of printing.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads for torch.")
    ] = None,
) -> None:
    """Forecast every ticker for one date from a run's model (or a saved checkpoint)."""
    from pathlib import Path

    from alphaseq._config_base import check_iso_date
    from alphaseq.errors import ConfigError

    try:
        check_iso_date(date)
    except ValueError as exc:
        raise ConfigError(f"--date {exc}") from None
    if (run_dir is None) == (checkpoint is None):
        raise ConfigError("pass a run directory or --checkpoint FILE (one of them)")
    if out and Path(out).suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out must end in .parquet or .csv, got '{out}'")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if run_dir is not None:
        from alphaseq.experiment.predict import predict_run

        result = predict_run(run_dir, fold=fold, date=date, source=data)
        frame, notes, label = result.forecasts, result.notes, f"fold {result.fold}"
    else:
        if fold is not None:
            raise ConfigError("--fold chooses a fold of a run directory, not of --checkpoint")
        frame, notes, label = _predict_checkpoint(checkpoint, data, date)
    for note in notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    if out:
        path = Path(out)
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            from alphaseq._safe import spreadsheet_safe

            spreadsheet_safe(frame).to_csv(path, index=False)
        console.print(f"{len(frame)} forecasts written to {path}", highlight=False)
        return
    if not len(frame):
        console.print("No ticker has a complete window on that date.")
        return
    console.print(
        f"Forecasts for {frame['date'].iloc[0]:%Y-%m-%d} ({label}), {len(frame)} tickers",
        highlight=False,
    )
    table = Table()
    for column in ("rank", "ticker", "prediction"):
        table.add_column(column, justify="left" if column == "ticker" else "right")
    for row in frame.itertuples():
        table.add_row(str(row.rank), str(row.ticker), f"{row.prediction:+.4f}")
    console.print(table)


def _predict_checkpoint(checkpoint: str, data: str | None, date: str | None):
    """``(forecasts, notes, label)`` from a bare checkpoint and the data it records."""
    import numpy as np

    from alphaseq.data import load_panel
    from alphaseq.errors import ConfigError
    from alphaseq.experiment.predict import trading_day
    from alphaseq.forecaster import Forecaster

    model = Forecaster.load(checkpoint)
    recorded = model.metadata_.get("data", {}) if hasattr(model, "metadata_") else {}
    source = data or recorded.get("source")
    if source is None:
        raise ConfigError("the checkpoint records no data source: pass --data")
    panel = load_panel(source, benchmark=recorded.get("benchmark") if data is None else None)
    notes: list[str] = []
    day = trading_day(panel.dates, date, panel.name, notes)
    frame = model.predict(panel, str(day.date()))
    frame = frame.sort_values(["prediction", "ticker"], ascending=[False, True], kind="stable")
    frame.insert(3, "rank", np.arange(1, len(frame) + 1))
    return frame.reset_index(drop=True), notes, model.label_names_[0]


#: Width of the result tables when stdout is a file or a pipe (rich would use 80 and cut
#: figures to "+11…"); a COLUMNS setting still wins.
PIPED_WIDTH = 200


def main() -> None:
    """Entry point of the ``alphaseq`` script."""
    import os
    import sys

    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    app()


if __name__ == "__main__":
    main()
