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
from rich.table import Table

from alphaseq import __version__
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
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
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
) -> None:
    """Load a price panel and summarise its coverage and data errors."""
    from alphaseq.data import load_panel
    from alphaseq.data.checks import summarize

    package_logger = logging.getLogger("alphaseq")
    level = package_logger.level
    if level > logging.INFO:  # the summary lists the repairs itself
        package_logger.setLevel(logging.ERROR)
    try:
        panel = load_panel(source)
    finally:
        package_logger.setLevel(level)
    summary = summarize(panel, lookback=lookback, horizon=horizon)
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
        return
    _print_summary(summary)


def _print_summary(summary: Any) -> None:
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


def main() -> None:
    """Entry point of the ``alphaseq`` script."""
    app()


if __name__ == "__main__":
    main()
