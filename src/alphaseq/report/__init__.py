"""Self-contained HTML reports of run directories.

``build_report(run_dir)`` reads what :func:`alphaseq.pipeline.run` wrote (metrics,
folds, predictions, weights, returns, attention) and writes ``run_dir/report.html``: one
file with inline CSS and charts embedded as PNG data URIs, readable offline.
"""

from alphaseq.report.data import RunData, load_run
from alphaseq.report.html import SECTION_IDS, build_report, render_report

__all__ = ["SECTION_IDS", "RunData", "build_report", "load_run", "render_report"]
