"""The report survives what a run can throw at it: a chart that fails, math-like names."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from alphaseq.analysis.attention import plot_attention_heatmap
from alphaseq.report import build_report, figures

PNG = b"\x89PNG\r\n\x1a\n"
# "$10k_$" is a math-text pair that does not parse: drawn as math text it raises.
MATH_LIKE = "$a_b$ budget $10k_$20k"


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, f"no section {section_id!r}"
    return match.group(1)


def images(html: str) -> list[bytes]:
    """The decoded PNGs embedded in ``html``."""
    sources = re.findall(r'<img[^>]*\ssrc="data:image/png;base64,([^"]+)"', html)
    return [base64.b64decode(s) for s in sources]


@pytest.fixture
def run_copy(ci_run, tmp_path) -> Path:
    """A private copy of the shared ci run (its report removed), free to edit."""
    target = tmp_path / "run"
    shutil.copytree(ci_run.run_dir, target, ignore=shutil.ignore_patterns("checkpoints"))
    (target / "report.html").unlink(missing_ok=True)
    return target


def test_a_figure_that_fails_is_logged_and_left_out(run_copy, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no ink left")

    monkeypatch.setattr(figures, "equity_chart", broken)
    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        path = build_report(run_copy)

    assert path == run_copy / "report.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert page.rstrip().endswith("</html>")
    equity = section(page, "equity")
    assert not images(equity)
    assert "could not be drawn" in equity and "no ink left" in equity
    # Every other chart is still there, and the section's neighbours are untouched.
    for section_id in ("drawdowns", "rolling-sharpe", "ic", "turnover", "weights", "training"):
        drawn = images(section(page, section_id))
        assert drawn and all(png.startswith(PNG) for png in drawn), section_id
        assert "could not be drawn" not in section(page, section_id)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "Cumulative net return" in message and "RuntimeError" in message
    assert "no ink left" in message


def test_attention_heatmap_draws_dollar_signs_as_text(tmp_path):
    rng = np.random.default_rng(0)
    profiles = [rng.dirichlet(np.ones(10)) for _ in range(3)]
    path = plot_attention_heatmap(
        profiles,
        tmp_path / "attention.png",
        title="budget $10k_$20k",
        fold_labels=["$x_1$", "fold $10k_$20k", "fold 2"],
        counts=[5, 6, 7],
    )
    assert path.read_bytes().startswith(PNG)
    assert imread(path).ndim == 3  # a complete, decodable image


def test_report_of_a_run_with_math_like_names(run_copy, caplog):
    metrics = json.loads((run_copy / "metrics.json").read_text())
    metrics["run"]["name"] = MATH_LIKE
    old = "equal_weight"
    assert old in metrics["strategies"]
    metrics["strategies"] = {
        (MATH_LIKE if name == old else name): value for name, value in metrics["strategies"].items()
    }
    (run_copy / "metrics.json").write_text(json.dumps(metrics))
    for table in ("returns", "weights"):
        frame = pd.read_parquet(run_copy / f"{table}.parquet")
        assert (frame["strategy"] == old).any()
        frame["strategy"] = frame["strategy"].replace(old, MATH_LIKE)
        if table == "weights":  # a ticker in the holdings legend
            first = frame.loc[frame["strategy"] == "model_topk", "ticker"].iloc[0]
            frame["ticker"] = frame["ticker"].replace(first, "$T_1$ $10k_$")
        frame.to_parquet(run_copy / f"{table}.parquet", index=False)

    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        page = build_report(run_copy).read_text(encoding="utf-8")

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "could not be drawn" not in page
    assert f"<h1>{MATH_LIKE}</h1>" in page  # "$" needs no HTML escaping
    assert MATH_LIKE in section(page, "strategies")
    for section_id in ("equity", "drawdowns", "turnover", "weights"):
        assert images(section(page, section_id)), section_id
