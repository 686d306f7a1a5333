"""Serve the dashboard on localhost and drive it in headless Chromium (Playwright).

Shared by the end-to-end test and ``bench/screenshots.py``. The browser is the system's
Chromium (Debian package); ``playwright install`` is never run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
_SCRIPT_STATE = "document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state')"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(runs_dir: Path, log_path: Path, start_timeout_s: float = 90, port: int | None = None,
              address: str | None = "127.0.0.1", options: Sequence[str] = (), app_args: Sequence[str] = (),
              env: Mapping[str, str] | None = None, root: Path | None = None):
    """``streamlit run dashboard/app.py`` (of the checkout ``root``, default this one) on ``address`` (None: the one
    .streamlit/config.toml sets) and a free port unless given, with extra Streamlit ``options`` (e.g.
    ``--secrets.files F``), arguments for the app (``app_args``, e.g. ``--review``) and environment; yields its base
    URL; always stops it (SIGTERM to its process group, then SIGKILL)."""
    port = port or free_port()
    root = Path(root) if root is not None else ROOT
    env = {**os.environ, "KDLENS_RUNS_DIR": str(runs_dir), "KDLENS_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(root), **(env or {})}
    command = [sys.executable, "-m", "streamlit", "run", str(root / "dashboard" / "app.py"),
               "--server.headless", "true", "--server.port", str(port),
               *(["--server.address", address] if address else []),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *options,
               *(["--", *app_args] if app_args else [])]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
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
                raise RuntimeError(f"streamlit did not start in {start_timeout_s} s:\n"
                                   f"{log_path.read_text(errors='replace')}")
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
def browser_page(width: int, height: int, step_ms: int, accept_downloads: bool = False):
    """A page of headless Chromium with ``step_ms`` as the default timeout of every action."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height},
                                          accept_downloads=accept_downloads)
            page = context.new_page()
            page.set_default_timeout(step_ms)
            yield page
        finally:
            browser.close()


def wait_until_idle(page, timeout_ms: int) -> None:
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


def open_page(page, base: str, path: str, heading: str, timeout_ms: int) -> None:
    page.goto(f"{base}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).first.wait_for(state="visible")
    wait_until_idle(page, timeout_ms)


def full_page_screenshot(page, target: Path, max_height: int = 6000, settle_timeout_ms: int | None = None) -> Path:
    """Screenshot of the whole page. Streamlit scrolls inside its main container, not the
    document, so the viewport is grown to the content's height for the shot, then restored.
    With ``settle_timeout_ms`` it also waits for the app to be idle after the resize
    (charts redraw)."""
    viewport = page.viewport_size
    height = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMain"]');
                   return main ? main.scrollHeight : document.body.scrollHeight; }""")
    page.set_viewport_size({"width": viewport["width"], "height": int(min(max(height, viewport["height"]), max_height))})
    page.wait_for_timeout(800)
    if settle_timeout_ms is not None:
        wait_until_idle(page, settle_timeout_ms)
    page.screenshot(path=str(target))
    page.set_viewport_size(viewport)
    return target
