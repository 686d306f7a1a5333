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
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
RUN_NAME = "demo"
SERVER_START_S = 120
STEP_MS = 180_000  # one step (page load, explaining a text on 2 shared cores) at most
WIDTH, HEIGHT, MAX_HEIGHT = 1700, 1000, 6000  # 1700 px: the Overview model card fits without a scroll bar
SAMPLE_TEXT = ("A warm, funny film with a cast that clearly loves the material, "
               "but the plot drags and the ending feels rushed.")
SAMPLE_MARK = "clearly loves the material"  # in every highlight row once the sample is explained

_SCRIPT_STATE = "document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state')"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_names(run_dir: Path) -> list[str]:
    """The teacher, then every student in the run's manifest (the Explain page's rows)."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return ["teacher", *manifest.get("students", {})]


@contextlib.contextmanager
def serve_app(runs_dir: Path, log_path: Path):
    """``streamlit run dashboard/app.py`` on 127.0.0.1 and a free port; yields its base URL;
    always stops it (SIGTERM to its process group, then SIGKILL)."""
    port = free_port()
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
                raise RuntimeError(f"streamlit did not start in {SERVER_START_S} s:\n"
                                   f"{log_path.read_text(errors='replace')}")
            time.sleep(0.5)
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
def browser_page(width: int = WIDTH, height: int = HEIGHT):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": width, "height": height}).new_page()
            page.set_default_timeout(STEP_MS)
            yield page
        finally:
            browser.close()


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


def open_page(page, base: str, path: str, heading: str) -> None:
    page.goto(f"{base}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).first.wait_for(state="visible")
    wait_until_idle(page)


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


def screenshot(page, target: Path, max_height: int = MAX_HEIGHT) -> Path:
    """Full-page screenshot. Streamlit scrolls inside its main container, not the document,
    so the viewport is grown to the content's height for the shot, then restored."""
    viewport = page.viewport_size
    height = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMain"]');
                   return main ? main.scrollHeight : document.body.scrollHeight; }""")
    page.set_viewport_size({"width": viewport["width"], "height": int(min(max(height, viewport["height"]), max_height))})
    page.wait_for_timeout(800)
    wait_until_idle(page)  # a resize may rerun nothing, but charts redraw
    page.screenshot(path=str(target))
    page.set_viewport_size(viewport)
    return target


def take(runs_dir: Path, out_dir: Path, log_path: Path) -> list[Path]:
    run_dir = runs_dir / RUN_NAME
    models = model_names(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with serve_app(runs_dir, log_path) as base, browser_page() as page:
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
