"""End to end in a real browser: headless Chromium (Debian package) driven by Playwright,
against ``streamlit run dashboard/app.py`` serving the tiny run.

Upload a CSV on the Batch page, see every model's predictions (in the downloaded results
and in the explanation of a row), and take screenshots (pytest's tmp dir, and
``$KDLENS_SCREENSHOT_DIR`` when set). Skipped only when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SERVER_START_S = 90
STEP_MS = 90_000
MODELS = ("teacher", "linear", "linear-labels", "mlp", "mlp-labels")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs headless Chromium at /usr/bin/chromium: apt-get install chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(runs_dir: Path, log_path: Path, port: int | None = None):
    """``streamlit run dashboard/app.py`` on 127.0.0.1; yields its base URL; always stops it."""
    port = port or free_port()
    env = {**os.environ, "KDLENS_RUNS_DIR": str(runs_dir), "KDLENS_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
               "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited ({server.returncode}):\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = log_path.read_text(errors="replace")
                raise RuntimeError(f"streamlit did not start in {SERVER_START_S} s:\n{log}")
            time.sleep(0.3)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(STEP_MS)
            yield page
        finally:
            browser.close()


_SCRIPT_STATE = "document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state')"


def wait_until_idle(page, timeout_ms: int = STEP_MS) -> None:
    """Wait for Streamlit to finish the script run and draw it: the app reports its script
    as not running, and no skeleton placeholder or stale element is left."""
    try:  # the rerun an action triggers may take a moment to start
        page.wait_for_function(f"() => {_SCRIPT_STATE} === 'running'", timeout=1500)
    except Exception:  # noqa: BLE001 - it may also have finished already
        pass
    page.wait_for_function(
        f"""() => {_SCRIPT_STATE} === 'notRunning'
              && !document.querySelector('[data-testid="stSkeleton"]')
              && !document.querySelector('[data-stale="true"]')""", timeout=timeout_ms)
    page.wait_for_timeout(500)


def screenshot(page, name: str, tmp_dir: Path, max_height: int = 6000) -> list[Path]:
    """Screenshot of the whole page into ``tmp_dir`` and ``$KDLENS_SCREENSHOT_DIR`` (when set).

    Streamlit scrolls inside its main container, not the document, so the viewport is
    grown to the content's height for the shot, then restored.
    """
    targets = [tmp_dir / f"{name}.png"]
    extra = os.environ.get("KDLENS_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        targets.append(Path(extra) / f"{name}.png")
    viewport = page.viewport_size
    height = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMain"]');
                   return main ? main.scrollHeight : document.body.scrollHeight; }""")
    tall = int(min(max(height, viewport["height"]), max_height))
    page.set_viewport_size({"width": viewport["width"], "height": tall})
    page.wait_for_timeout(800)
    page.screenshot(path=str(targets[0]))
    page.set_viewport_size(viewport)
    for target in targets[1:]:
        target.write_bytes(targets[0].read_bytes())
    return targets


def open_page(page, base: str, path: str, heading: str) -> None:
    page.goto(f"{base}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).first.wait_for(state="visible")
    wait_until_idle(page)


def test_batch_upload_predictions_and_explanation(tiny_run_dir, tmp_path):
    runs_dir = Path(tiny_run_dir).parent
    upload = tmp_path / "reviews.csv"
    upload.write_text("text,label\na good film,pos\nboring and dull,neg\nfun and charming actors,pos\n"
                      "\"<script>alert(1)</script> a weak plot\",neg\n", encoding="utf-8")
    with serve_app(runs_dir, tmp_path / "streamlit.log") as base, browser_page() as page:
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
