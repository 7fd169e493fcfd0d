"""The README's "Python" section runs as written: its ```python blocks, in order, in a
fresh directory (it writes prices.csv and runs/ci there)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def python_section_blocks(text: str, heading: str = "Python") -> list[str]:
    """The fenced ```python blocks between ``## <heading>`` and the next ``## `` heading."""
    start = re.search(rf"^## {re.escape(heading)}\s*$", text, flags=re.MULTILINE)
    assert start is not None, f"README has no '## {heading}' section"
    following = re.search(r"^## ", text[start.end() :], flags=re.MULTILINE)
    section = text[start.end() : start.end() + following.start() if following else None]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def test_the_section_has_one_complete_example():
    blocks = python_section_blocks(README.read_text())
    assert len(blocks) >= 1
    code = "\n".join(blocks)
    for step in ("to_csv", "Forecaster(", ".fit(", "alphaseq.backtest(", "metrics()", "report"):
        assert step in code, f"the example lost its {step!r} step"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    for number, block in enumerate(python_section_blocks(README.read_text())):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)

    # What the example promises, checked on what it produced.
    weights, result = namespace["weights"], namespace["result"]
    assert isinstance(weights.index, pd.DatetimeIndex) and len(weights) == 12  # 2019's months
    assert (weights.gt(0).sum(axis=1) == 5).all()
    assert result.returns.name == "net_return" and result.returns.index[0] == weights.index[0]
    assert set(namespace["daily"].columns) >= {"model_topk", "equal_weight"}
    assert namespace["scores"].index.is_monotonic_increasing
    assert namespace["holdings"].sum(axis=1).le(1 + 1e-9).all()
    assert (tmp_path / "runs" / "ci" / "report.html").is_file()
