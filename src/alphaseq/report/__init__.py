"""Self-contained HTML reports of run directories.

``build_report(run_dir)`` reads what :func:`alphaseq.pipeline.run` wrote (metrics,
folds, predictions, weights, returns, attention) and writes ``run_dir/report.html``: one
file with inline CSS and charts embedded as PNG data URIs, readable offline.
"""

from alphaseq._lazy import lazy_exports

# Imported on first use: reading a run (load_run) needs neither matplotlib nor the page.
_LAZY = {
    "RunData": "alphaseq.report.data",
    "SECTION_IDS": "alphaseq.report.html",
    "build_report": "alphaseq.report.html",
    "load_run": "alphaseq.report.data",
    "render_report": "alphaseq.report.html",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
