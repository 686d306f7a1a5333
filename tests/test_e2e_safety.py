"""In a real browser (headless Chromium, Playwright): the sign-in against a local OpenID provider, review mode,
and a run whose class names and texts carry markup and script. Skipped only when /usr/bin/chromium is absent
(and the sign-in test when oidc-provider-mock, from requirements-dev.txt, is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import browser

SERVER_START_S = 90
STEP_MS = 90_000

pytestmark = pytest.mark.skipif(not browser.CHROMIUM.exists(),
                                reason="needs headless Chromium at /usr/bin/chromium: apt-get install chromium")


def _watch(page) -> list[str]:
    """Every dialog (alert, confirm, prompt) and page error, collected (a dialog is dismissed)."""
    events: list[str] = []
    page.on("pageerror", lambda err: events.append(f"page error: {err}"))
    page.on("dialog", lambda dialog: events.append(f"dialog: {dialog.message}") or dialog.dismiss())
    return events


# ------------------------------------------------------------------------------------------------ sign-in
def test_sign_in_with_openid_connect(tiny_run_dir, tmp_path):
    """With an [auth] section in secrets.toml: signed out, only the sign-in button; after signing in at the
    provider (oidc-provider-mock's form), the runs."""
    oidc_provider_mock = pytest.importorskip("oidc_provider_mock", reason="pip install -r requirements-dev.txt")
    pytest.importorskip("authlib", reason="Streamlit's st.login needs Authlib (requirements.txt)")
    port = browser.free_port()
    with oidc_provider_mock.run_server_in_thread() as provider:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            'cookie_secret = "a-test-cookie-secret-of-enough-length-0123456789"\n'
            'client_id = "kd-lens-test"\n'
            'client_secret = "kd-lens-test-secret"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n',
            encoding="utf-8")
        with browser.serve_app(Path(tiny_run_dir).parent, tmp_path / "streamlit.log", SERVER_START_S, port=port,
                               options=["--secrets.files", str(secrets)]) as base, \
                browser.browser_page(1200, 900, STEP_MS) as page:
            events = _watch(page)
            page.goto(base, wait_until="domcontentloaded")
            sign_in = page.get_by_role("button", name="Sign in")
            sign_in.wait_for(state="visible")
            browser.wait_until_idle(page, STEP_MS)
            # Signed out: the sign-in and nothing else (no run, no picker, no pages).
            main = page.locator("[data-testid='stMain']").inner_text()
            assert "tiny" not in main and "Run" not in main.replace("runs", ""), main
            assert page.locator("[data-testid='stSidebar']").count() == 0
            assert page.locator("[data-testid='stSidebarNav']").count() == 0
            page.goto(f"{base}/weights", wait_until="domcontentloaded")  # a page's address shows nothing either
            page.get_by_role("button", name="Sign in").wait_for(state="visible")
            browser.wait_until_idle(page, STEP_MS)
            assert page.get_by_role("heading", name="What the students learned").count() == 0

            page.get_by_role("button", name="Sign in").click()
            page.locator("input[name='sub']").wait_for(state="visible")  # the provider's form
            assert f"localhost:{provider.server_port}" in page.url
            page.locator("input[name='sub']").fill("reviewer@example.org")
            page.get_by_role("button", name="Authorize").click()
            page.get_by_role("heading", name=f"Run {Path(tiny_run_dir).name}").first.wait_for(state="visible")
            browser.wait_until_idle(page, STEP_MS)
            assert page.url.startswith(base)
            assert page.get_by_text("Signed in as reviewer@example.org").count() == 1
            assert page.locator("[data-testid='stSidebarNav']").count() == 1
            assert not events, events


# ------------------------------------------------------------------------------------------------ review mode
def test_review_mode_in_a_browser(tiny_run_dir, tmp_path):
    """`streamlit run dashboard/app.py -- --review` with the repository's config: the run is shown, there is no
    Distill page nor folder box, the Audit page offers no Save, and nothing is written to the runs folder (not
    even by a Batch upload)."""
    runs = Path(tiny_run_dir).parent
    upload = tmp_path / "reviews.csv"
    upload.write_text("text,label\na good film,pos\nboring and dull,neg\n", encoding="utf-8")
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    with browser.serve_app(runs, tmp_path / "streamlit.log", SERVER_START_S, address=None, app_args=["--review"]) \
            as base, browser.browser_page(1200, 900, STEP_MS) as page:
        events = _watch(page)
        browser.open_page(page, base, "", f"Run {Path(tiny_run_dir).name}", STEP_MS)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Overview" in nav and "Report" in nav and "Distill" not in nav, nav
        assert page.get_by_text("Open a run folder").count() == 0
        page.goto(f"{base}/distill", wait_until="domcontentloaded")
        page.wait_for_timeout(1500)
        browser.wait_until_idle(page, STEP_MS)
        assert page.get_by_role("heading", name="Distill a teacher").count() == 0
        browser.open_page(page, base, "batch", "Batch predictions", STEP_MS)
        page.locator("input[type='file']").set_input_files(str(upload))
        page.get_by_text("with a student that disagrees with the teacher").wait_for(state="visible")
        browser.wait_until_idle(page, STEP_MS)
        browser.open_page(page, base, "audit", "Audit", STEP_MS)  # shown whole, but read only
        page.get_by_role("tab", name="Certified threshold").wait_for(state="visible")
        browser.wait_until_idle(page, STEP_MS)
        assert page.get_by_role("button", name="Save the audit into the run").count() == 0
        assert not [e for e in events if e.startswith("dialog")], events
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before


# ------------------------------------------------------------------------------------------------ hostile data
HOSTILE_NEG = "<img src=x onerror=alert(1)>"
# (at most 40 characters: a longer label reads like text to the label checks, which refuse it)
HOSTILE_POS = "**bold**[](javascript:alert(2)):red[hue]"
SCRIPT_TEXT = "<script>alert(3)</script> a great film <img src=x onerror=alert(4)>"


@pytest.fixture(scope="module")
def hostile_run_dir(tmp_path_factory):
    """A finished run whose teacher's classes (id2label) and texts carry markup and script."""
    from types import SimpleNamespace

    import numpy as np
    from conftest import TOY_NEG, TOY_POS, make_tiny_model_dir, tiny_spec

    from kdcore.config import StudentConfig
    from kdcore.data import TextDataset
    from kdcore.pipeline import build_run

    root = tmp_path_factory.mktemp("hostile")
    teacher = make_tiny_model_dir(root / "teacher", label_names=(HOSTILE_NEG, HOSTILE_POS))
    pos = [f"{t} <b>{i}</b>" if i % 3 == 0 else t for i, t in enumerate(TOY_POS)] + [SCRIPT_TEXT]
    neg = [f"{t} **shout** [x](javascript:alert(5))" if i % 3 == 0 else t for i, t in enumerate(TOY_NEG)]
    texts = pos + neg
    labels = np.array([1] * len(pos) + [0] * len(neg))
    full = TextDataset(texts, labels, [HOSTILE_NEG, HOSTILE_POS], name="hostile")
    test_idx = [0, len(pos) - 1, len(pos), len(pos) + 1]
    dev_idx = [2, len(pos) + 2]
    train_idx = [i for i in range(len(texts)) if i not in test_idx + dev_idx]
    corpus = SimpleNamespace(train=full.subset(train_idx), dev=full.subset(dev_idx), test=full.subset(test_idx),
                             unlabelled=None)
    students = (StudentConfig(kind="linear", name="linear", min_count=1, max_steps=20),
                StudentConfig(kind="mlp", name="mlp", min_count=1, max_steps=20, hidden_size=8))
    runs = root / "runs"
    return build_run(tiny_spec("hostile", teacher, students), runs_dir=runs, corpus=corpus)


_INJECTED = """() => {
  const docs = [document, ...Array.from(document.querySelectorAll('iframe'))
                  .map(f => { try { return f.contentDocument; } catch (e) { return null; } }).filter(Boolean)];
  const found = [];
  for (const doc of docs) {
    doc.querySelectorAll('img[src="x"], a[href^="javascript"], [onerror], [onclick]').forEach(
      e => found.push(e.outerHTML.slice(0, 120)));
    doc.querySelectorAll('script').forEach(e => { if (e.textContent.includes('alert')) found.push('script'); });
    doc.querySelectorAll('strong, b, em, i').forEach(e => {
      const t = e.textContent.trim(); if (t === 'bold' || t === 'shout' || t === 'b') found.push(e.outerHTML); });
    doc.querySelectorAll('span[class*="red"], [data-testid="stMarkdownColoredText"]').forEach(e => {
      if (e.textContent.includes('hue')) found.push(e.outerHTML.slice(0, 120)); });
  }
  return found;
}"""


def _assert_inert(page, where: str, events: list[str]) -> None:
    browser.wait_until_idle(page, STEP_MS)
    injected = page.evaluate(_INJECTED)
    assert not injected, f"{where}: {injected}"
    assert page.query_selector("img[src=x]") is None, where
    assert page.locator("[data-testid='stException']").count() == 0, where
    assert not events, f"{where}: {events}"


def test_hostile_class_names_and_texts_stay_text(hostile_run_dir, tmp_path):
    """Every view and the report of a run whose class names and texts carry markup and script: no dialog, no
    injected element, and the names read as written."""
    runs = Path(hostile_run_dir).parent
    upload = tmp_path / "hostile.csv"
    upload.write_text(f'text,label\n"{SCRIPT_TEXT}","{HOSTILE_NEG}"\n"=HYPERLINK(""http://x"",""y"") film",'
                      f'"{HOSTILE_POS.replace(chr(34), chr(34) * 2)}"\n', encoding="utf-8")
    with browser.serve_app(runs, tmp_path / "streamlit.log", SERVER_START_S) as base, \
            browser.browser_page(1400, 1100, STEP_MS, accept_downloads=True) as page:
        events = _watch(page)
        browser.open_page(page, base, "", "Run hostile", STEP_MS)
        _assert_inert(page, "overview", events)
        from dashboard.views.overview import SEQUENCE_SECTIONS

        for label in SEQUENCE_SECTIONS[1:]:  # each section is drawn when its tab is opened
            page.get_by_role("tab", name=label, exact=True).click()
            _assert_inert(page, f"overview, {label}", events)
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert HOSTILE_NEG in sidebar and HOSTILE_POS in sidebar, sidebar

        browser.open_page(page, base, "explain", "Explain a prediction", STEP_MS)
        box = page.get_by_role("textbox", name="Text", exact=True)
        box.fill(SCRIPT_TEXT + " **loud** [y](javascript:alert(6))")
        box.press("Control+Enter")
        page.locator("table.kdl-heatmap").first.wait_for(state="visible")
        _assert_inert(page, "explain", events)
        line = page.get_by_text("Word attributions for class").first.inner_text()
        assert HOSTILE_NEG in line or "**bold**" in line, line  # the class name, as written

        browser.open_page(page, base, "batch", "Batch predictions", STEP_MS)
        page.locator("input[type='file']").set_input_files(str(upload))
        page.get_by_text("with a student that disagrees with the teacher").wait_for(state="visible")
        _assert_inert(page, "batch", events)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download results (CSV)").click()
        downloaded = Path(info.value.path()).read_text(encoding="utf-8")
        assert "\n=HYPERLINK" not in downloaded and "'=HYPERLINK" in downloaded

        browser.open_page(page, base, "weights", "What the students learned", STEP_MS)
        _assert_inert(page, "weights", events)

        browser.open_page(page, base, "audit", "Audit", STEP_MS)
        page.get_by_role("tab", name="Certified threshold").wait_for(state="visible")
        _assert_inert(page, "audit", events)

        browser.open_page(page, base, "report", "Report", STEP_MS)
        page.get_by_role("button", name="Build the report").click()
        page.get_by_role("button", name="Download HTML report").wait_for(state="visible")
        page.wait_for_timeout(1500)
        _assert_inert(page, "report", events)
        frames = [f for f in page.frames if f != page.main_frame]
        assert frames and any(HOSTILE_NEG in f.locator("body").inner_text() for f in frames)

        browser.open_page(page, base, "distill", "Distill a teacher", STEP_MS)
        _assert_inert(page, "distill", events)
