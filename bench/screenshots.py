"""Screenshots of the dashboard for the README: the Overview page and the Explain page
(a sample review entered, every model's highlight row drawn), taken in headless Chromium
(Debian package at /usr/bin/chromium, driven by Playwright) against
``streamlit run dashboard/app.py`` serving the demo run (``<run-dir>/demo``).

    python bench/screenshots.py [--run-dir runs] [--out assets/screenshots]

Writes ``overview.png`` and ``explain.png`` (full page) into the output folder. The
server runs on a free port of 127.0.0.1 and is always stopped at the end. Never runs
``playwright install``: the browser is the system's Chromium.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import browser  # noqa: E402
from dashboard.browser import CHROMIUM  # noqa: E402

RUN_NAME = "demo"
SERVER_START_S = 120
STEP_MS = 180_000  # one step (page load, explaining a text on 2 shared cores) at most
WIDTH, HEIGHT, MAX_HEIGHT = 1700, 1000, 6000  # 1700 px: the Overview model card fits without a scroll bar
SAMPLE_TEXT = ("A warm, funny film with a cast that clearly loves the material, "
               "but the plot drags and the ending feels rushed.")
SAMPLE_MARK = "clearly loves the material"  # in every highlight row once the sample is explained


def model_names(run_dir: Path) -> list[str]:
    """The teacher, then every student in the run's manifest (the Explain page's rows)."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return ["teacher", *manifest.get("students", {})]


def wait_until_idle(page) -> None:
    browser.wait_until_idle(page, STEP_MS)


def open_page(page, base: str, path: str, heading: str) -> None:
    browser.open_page(page, base, path, heading, STEP_MS)


def screenshot(page, target: Path) -> Path:
    return browser.full_page_screenshot(page, target, MAX_HEIGHT, settle_timeout_ms=STEP_MS)


def check_clean(page, where: str) -> None:
    problems = []
    if page.locator("[data-testid='stException']").count():
        problems.append("an exception box")
    if page.locator("[data-testid='stAlertContentError']").count():
        problems.append("an error box")
    if page.get_by_text("Page not found").count():
        problems.append("'Page not found'")
    if problems:
        raise RuntimeError(f"{where} shows {', '.join(problems)}")


def take(runs_dir: Path, out_dir: Path, log_path: Path) -> list[Path]:
    run_dir = runs_dir / RUN_NAME
    models = model_names(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with browser.serve_app(runs_dir, log_path, SERVER_START_S) as base, \
            browser.browser_page(WIDTH, HEIGHT, STEP_MS) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))

        # Overview, the default page (the sidebar picks the demo run when there is one).
        open_page(page, base, "", f"Run {RUN_NAME}")
        page.get_by_text("Teacher accuracy").first.wait_for(state="visible")
        page.get_by_text("Model card").first.wait_for(state="visible")
        wait_until_idle(page)
        check_clean(page, "Overview")
        shots.append(screenshot(page, out_dir / "overview.png"))
        print(f"wrote {shots[-1]}", flush=True)

        # Explain: enter the sample, wait for one highlight row per model showing it.
        open_page(page, base, "explain", "Explain a prediction")
        box = page.get_by_role("textbox", name="Text", exact=True)
        box.fill(SAMPLE_TEXT)
        box.press("Control+Enter")
        page.wait_for_function(
            """([mark, count]) => {
                 const table = document.querySelector('table.kdl-heatmap');
                 if (!table) return false;
                 const rows = table.querySelectorAll('tr.kdl-row');
                 return rows.length === count
                     && [...rows].every(r => (r.querySelector('td.kdl-text')?.textContent || '').includes(mark));
               }""", arg=[SAMPLE_MARK, len(models)], timeout=STEP_MS)
        wait_until_idle(page)
        heatmap = page.locator("table.kdl-heatmap").first
        names = [n.strip() for n in heatmap.locator("tr.kdl-row td:first-child").all_inner_texts()]
        if names != models:
            raise RuntimeError(f"Explain shows rows {names}, expected {models}")
        check_clean(page, "Explain")
        page.locator("[data-testid='stMain']").evaluate("el => el.scrollTo(0, 0)")
        shots.append(screenshot(page, out_dir / "explain.png"))
        print(f"wrote {shots[-1]}", flush=True)
        if errors:
            raise RuntimeError(f"errors in the page: {errors}")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs",
                        help=f"runs folder holding the '{RUN_NAME}' run (default: runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots",
                        help="folder for overview.png and explain.png (default: assets/screenshots)")
    args = parser.parse_args(argv)
    runs_dir, out_dir = args.run_dir.resolve(), args.out.resolve()
    if not CHROMIUM.exists():
        print(f"needs headless Chromium at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2
    if not (runs_dir / RUN_NAME / "manifest.json").is_file():
        print(f"no run at {runs_dir / RUN_NAME}: build it with `python -m kdcore demo`", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kdlens-shots-") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        try:
            take(runs_dir, out_dir, log_path)
        except Exception as err:  # noqa: BLE001 - say what went wrong, with the server's log
            print(f"screenshots failed: {err}", file=sys.stderr)
            if log_path.is_file():
                print("--- streamlit log (tail) ---\n" + log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
