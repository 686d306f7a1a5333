"""Print a report's HTML to PDF with the real browser (Playwright driving the system's headless Chromium).

The page is the report's own HTML (no script, no external resource), printed on A4 with its print style sheet
(:file:`kdcore/templates/report.html.j2`). The browser is ``$KDLENS_CHROMIUM`` or ``/usr/bin/chromium`` (the
Debian package; ``playwright install`` is never run).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..utils import atomic_write_bytes

__all__ = ["PdfError", "CHROMIUM", "CHROMIUM_ARGS", "html_to_pdf", "table_overflow"]

CHROMIUM = Path(os.environ.get("KDLENS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Widths of the tables that run past the printed page's content box, measured in print media.
_OVERFLOW_JS = """() => { const w = document.body.clientWidth;
  return [...document.querySelectorAll('table')].filter(t => t.getBoundingClientRect().right > w + 1)
    .map(t => [t.querySelector('th') ? t.querySelector('th').textContent : '', Math.round(t.scrollWidth), w]); }"""


class PdfError(ValueError):
    """The PDF cannot be printed here (no browser); the message says how to get one."""


def _browser(playwright):
    if not CHROMIUM.is_file():
        raise PdfError(f"Printing a PDF needs Chromium at {CHROMIUM}: `apt-get install -y chromium`, or set "
                           "KDLENS_CHROMIUM to its path.")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def html_to_pdf(html: str, out_path: str | os.PathLike | None = None) -> bytes:
    """The PDF of ``html`` printed on A4 (written atomically to ``out_path`` when given), and its bytes."""
    from playwright.sync_api import sync_playwright  # heavy, and only needed to print

    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page()
            page.set_content(html, wait_until="load")
            page.emulate_media(media="print")
            pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        finally:
            browser.close()
    if out_path is not None:
        atomic_write_bytes(out_path, pdf)
        os.chmod(out_path, 0o644)
    return pdf


def table_overflow(html: str) -> list:
    """The tables of ``html`` wider than an A4 page's content box in print media (empty when all fit)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            # A4 is 210 mm wide; 12 mm margins leave 186 mm, about 703 CSS pixels.
            page = browser.new_page(viewport={"width": 703, "height": 1000})
            page.set_content(html, wait_until="load")
            page.emulate_media(media="print")
            return page.evaluate(_OVERFLOW_JS)
        finally:
            browser.close()
