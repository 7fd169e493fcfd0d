"""The report's fast paths, checked by what they do rather than by a clock: each chart
is drawn once, a report loads no training or optimisation library, reading a run loads
no plotting library, and legends are sized to fit their chart."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from alphaseq.report import figures

HEAVY = ("torch", "skfolio", "optuna", "lightgbm", "mlflow", "cvxpy", "sklearn")


def loaded_modules(script: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` a fresh interpreter has imported after running ``script``."""
    probe = (
        f"import json, sys\n{script}\n"
        f"print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def daily(n: int = 300, names: tuple[str, ...] = ("model_topk", "benchmark")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame(rng.normal(0, 0.01, (n, len(names))), index=index, columns=list(names))


def test_building_a_report_imports_no_training_or_optimisation_library(ci_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(ci_run.run_dir, run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    script = f"from alphaseq.report import build_report\nbuild_report({str(run_dir)!r})"
    assert loaded_modules(script, HEAVY) == []
    assert (run_dir / "report.html").is_file()


def test_reading_a_run_imports_no_plotting_library():
    script = "import alphaseq.report as r\nr.load_run, r.RunData"
    assert loaded_modules(script, ("matplotlib", *HEAVY)) == []


def test_analysis_package_loads_torch_only_for_attention():
    script = (
        "import alphaseq.analysis.classification\nimport alphaseq.analysis as a\na.regression_block"
    )
    assert loaded_modules(script, ("torch",)) == []
    # The public names still resolve, to the functions of their modules.
    from alphaseq.analysis import plot_attention_heatmap
    from alphaseq.analysis.attention import plot_attention_heatmap as defined

    assert plot_attention_heatmap is defined


def count_draws(monkeypatch) -> list[int]:
    """Count every full draw of a Figure (savefig's dry runs included)."""
    calls: list[int] = []
    original = Figure.draw

    def counting(self, renderer):
        calls.append(1)
        return original(self, renderer)

    monkeypatch.setattr(Figure, "draw", counting)
    return calls


def test_every_chart_is_drawn_exactly_once(monkeypatch):
    draws = count_draws(monkeypatch)
    wide = daily()
    colors = figures.strategy_colors(list(wide.columns))
    figures.equity_chart((1 + wide).cumprod(), colors, wide.index[50])
    assert len(draws) == 1
    history = [
        {"epoch": e, "train_loss": 1 - e / 10, "val_loss": 1.0, "val_ic": 0.01 * e}
        for e in range(4)
    ]
    folds = [{"index": k, "history": history, "best_epoch": 2} for k in range(5)]
    figures.training_curves(folds)  # a grid of panels with twin axes
    assert len(draws) == 2


def test_charts_are_opaque_rgb_pngs_of_the_figure_size(monkeypatch):
    monkeypatch.setattr(figures, "DPI", 50)
    wide = daily()
    uri = figures.drawdown_chart(wide.cumsum() * 0 - 0.1, figures.strategy_colors(list(wide)), None)
    png = base64.b64decode(uri.removeprefix("data:image/png;base64,"), validate=True)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGB"  # no alpha channel: the figure is opaque
        assert image.size == (round(figures.WIDTH * 50), round(3.0 * 50))


@pytest.mark.parametrize("n_labels, length", [(6, 13), (3, 32), (8, 4), (2, 60)])
def test_legend_columns_fit_the_room_they_are_given(n_labels, length):
    labels = [f"{k}" + "x" * (length - 1) for k in range(n_labels)]
    room = 6.3  # inches
    ncols = figures.legend_columns(labels, 6, room)
    assert 1 <= ncols <= min(6, n_labels)
    fig = Figure(figsize=(8.0, 3.0), dpi=100)
    ax = fig.add_subplot()
    for k, label in enumerate(labels):
        ax.plot([0, 1], [k, k], label=label)
    legend = ax.legend(ncols=ncols, frameon=False)
    fig.canvas.draw()
    width = legend.get_window_extent().width / fig.dpi
    if ncols > 1:
        assert width <= room  # what it measured is what matplotlib lays out
    if ncols < min(6, n_labels):
        wider = ax.legend(ncols=ncols + 1, frameon=False)
        fig.canvas.draw()
        assert wider.get_window_extent().width / fig.dpi > room  # and no more would fit


def test_short_labels_keep_the_columns_asked_for():
    assert figures.legend_columns(["a", "b", "c"], 3, 6.0) == 3
    assert figures.legend_columns(["a", "b"], 6, 6.0) == 2
    assert figures.legend_columns([], 3, 6.0) == 1
