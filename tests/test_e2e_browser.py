"""End to end in a real browser: headless Chromium (Debian package) driven by Playwright,
against ``streamlit run dashboard/app.py`` serving the tiny run.

Upload a CSV on the Batch page, see every model's predictions (in the downloaded results
and in the explanation of a row), and take screenshots (pytest's tmp dir, and
``$KDLENS_SCREENSHOT_DIR`` when set). Skipped only when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from dashboard import browser

SERVER_START_S = 90
STEP_MS = 90_000
MODELS = ("teacher", "linear", "linear-labels", "mlp", "mlp-labels")

pytestmark = pytest.mark.skipif(not browser.CHROMIUM.exists(),
                                reason="needs headless Chromium at /usr/bin/chromium: apt-get install chromium")


def wait_until_idle(page) -> None:
    browser.wait_until_idle(page, STEP_MS)


def open_page(page, base: str, path: str, heading: str) -> None:
    browser.open_page(page, base, path, heading, STEP_MS)


def screenshot(page, name: str, tmp_dir: Path) -> list[Path]:
    """Screenshot of the whole page into ``tmp_dir`` and ``$KDLENS_SCREENSHOT_DIR`` (when set)."""
    targets = [tmp_dir / f"{name}.png"]
    extra = os.environ.get("KDLENS_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        targets.append(Path(extra) / f"{name}.png")
    browser.full_page_screenshot(page, targets[0])
    for target in targets[1:]:
        target.write_bytes(targets[0].read_bytes())
    return targets


def test_batch_upload_predictions_and_explanation(tiny_run_dir, tmp_path):
    runs_dir = Path(tiny_run_dir).parent
    upload = tmp_path / "reviews.csv"
    upload.write_text("text,label\na good film,pos\nboring and dull,neg\nfun and charming actors,pos\n"
                      "\"<script>alert(1)</script> a weak plot\",neg\n", encoding="utf-8")
    with browser.serve_app(runs_dir, tmp_path / "streamlit.log", SERVER_START_S) as base, \
            browser.browser_page(1400, 1000, STEP_MS, accept_downloads=True) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}") or dialog.dismiss())

        open_page(page, base, "", f"Run {Path(tiny_run_dir).name}")  # the default page
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("Page not found").count() == 0
        screenshot(page, "overview", tmp_path)

        open_page(page, base, "batch", "Batch predictions")
        page.locator("input[type='file']").set_input_files(str(upload))
        page.get_by_text("with a student that disagrees with the teacher").wait_for(state="visible")
        wait_until_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.locator("[data-testid='stAlertContentError']").count() == 0

        # Every model's predictions: the results as the user downloads them.
        with page.expect_download() as info:
            page.get_by_role("button", name="Download results (CSV)").click()
        rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
        wait_until_idle(page)
        assert len(rows) == 4
        for model in MODELS:
            assert all(row[model] in ("neg", "pos") for row in rows), model
        assert rows[3]["text"].startswith("<script>")

        # The explanation of the picked row (row 1 by default): one highlighted row per model.
        heatmap = page.locator("table.kdl-heatmap").last
        heatmap.wait_for(state="visible")
        heatmap.scroll_into_view_if_needed()
        assert heatmap.locator("tr.kdl-row").count() == len(MODELS)
        names = heatmap.locator("tr.kdl-row td:first-child").all_inner_texts()
        assert [n.strip() for n in names] == list(MODELS)
        assert "good" in heatmap.inner_text()
        shots = screenshot(page, "batch", tmp_path)
        assert shots[0].stat().st_size > 10_000

        # The Explain page with an injection: it shows as text, and no script runs.
        open_page(page, base, "explain", "Explain a prediction")
        box = page.get_by_role("textbox", name="Text", exact=True)
        box.fill("<img src=x onerror=alert(1)> a good film but boring")
        box.press("Control+Enter")
        page.locator("table.kdl-heatmap").first.wait_for(state="visible")
        wait_until_idle(page)
        heatmap = page.locator("table.kdl-heatmap").first
        assert heatmap.locator("tr.kdl-row").count() == len(MODELS)
        assert "<img src=x onerror=alert(1)>" in heatmap.locator("tr.kdl-row").first.inner_text()
        assert heatmap.locator("img").count() == 0
        screenshot(page, "explain", tmp_path)
        assert not errors, errors
