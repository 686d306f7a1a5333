"""The audit in a real browser (headless Chromium driven by Playwright, against ``streamlit run``): build a slice
of one's own on the Audit page, run a probe, then download the report printed to PDF from the Report page.
Skipped only when /usr/bin/chromium is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboard import browser

SERVER_START_S = 90
STEP_MS = 120_000

pytestmark = pytest.mark.skipif(not browser.CHROMIUM.exists(),
                                reason="needs headless Chromium at /usr/bin/chromium: apt-get install chromium")


def test_build_a_slice_run_a_probe_and_download_the_pdf(tiny_run_dir, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run_dir, runs / "tiny")
    with browser.serve_app(runs, tmp_path / "streamlit.log", SERVER_START_S) as base, \
            browser.browser_page(1400, 1200, STEP_MS, accept_downloads=True) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        browser.open_page(page, base, "audit", "Audit", STEP_MS)
        assert page.locator("[data-testid='stException']").count() == 0

        box = page.get_by_role("textbox", name="Keyword, regular expression or column value", exact=True)
        box.fill("film")
        page.get_by_role("button", name="Add slice").click()
        browser.wait_until_idle(page, STEP_MS)
        page.get_by_text("keyword: film: 2 texts, fidelity").wait_for(state="visible")

        page.get_by_role("tab", name="Probes").click()
        page.get_by_role("button", name="Run probe").click()
        browser.wait_until_idle(page, STEP_MS)
        page.get_by_text("negation: applies to").wait_for(state="visible")
        assert page.locator("[data-testid='stException']").count() == 0

        browser.open_page(page, base, "report", "Report", STEP_MS)
        page.get_by_role("button", name="Build the report").click()
        button = page.get_by_role("button", name="Download PDF")
        button.wait_for(state="visible")
        browser.wait_until_idle(page, STEP_MS)
        with page.expect_download() as info:
            button.click()
        pdf = Path(info.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
        assert info.value.suggested_filename == "tiny-report.pdf"
        assert not errors, errors
