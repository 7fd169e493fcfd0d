"""The HTML report in a real browser: headless Chromium loads it offline without errors."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from alphaseq.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECTIONS = (
    "header",
    "strategies",
    "significance",
    "equity",
    "drawdowns",
    "rolling-sharpe",
    "monthly-returns",
    "ic",
    "turnover",
    "weights",
    "training",
    "folds",
)


def _browser():
    if CHROMIUM is None:
        reason = "Chromium is not installed (Debian package 'chromium'; .ci/run installs it)"
        if os.environ.get("ALPHASEQ_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and ALPHASEQ_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return sync_api


@pytest.fixture(scope="module")
def report_path(ci_run):
    return build_report(ci_run.run_dir)


def _open(sync_api, path, screenshot):
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        present = {s: page.query_selector(f"section#{s}") is not None for s in SECTIONS}
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.naturalWidth, e.complete, e.src.slice(0, 22)])"
        )
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return errors, requests, present, images


def test_report_loads_in_chromium_without_errors(report_path, tmp_path):
    sync_api = _browser()
    screenshot = tmp_path / "report.png"
    errors, requests, present, images = _open(sync_api, report_path, screenshot)
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []  # offline
    assert all(present.values()), [s for s, ok in present.items() if not ok]
    assert images and all(width > 0 and done for width, done, _ in images)
    assert all(src.startswith("data:image/png") for _, _, src in images)

    from matplotlib.image import imread

    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[0] > 2000  # a long page, not an empty one
    assert pixels.std() > 0.05  # not blank
    assert len(np.unique(pixels.reshape(-1, 3)[::97], axis=0)) > 50
