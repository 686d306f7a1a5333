"""Strings from data drawn safely (dashboard/components/safe.py), CSV downloads without formulas, the server's
bound address and error details, review mode and uploads (AppTest; the real-browser checks are in
tests/test_e2e_safety.py)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.components import safe  # noqa: E402

HOSTILE = [
    "<img src=x onerror=alert(1)>", "<script>alert('x')</script>", "**bold** and _it_", "[click](javascript:alert(1))",
    "![pixel](http://attacker.example/p.png)", ":red[red] :material/home: $x^2$", "# heading", "- item", "12. item",
    "a | b\n--- | ---", "`code` ``more``", "line one\nline two\r\n# two", "&lt;img src=x&gt;", "back\\slash\\*",
    "~~struck~~", "<https://attacker.example>", "{curly} <b>bold</b>", "=1+2", "",
]


def _html_of(markdown: str) -> str:
    """CommonMark + GFM tables and strikethrough (what Streamlit's markdown builds on), as HTML."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_escaping_leaves_plain_text(text):
    rendered = _html_of(f"**class** {safe.md(text)} end")
    body = rendered.replace("<p>", "", 1).replace("</p>\n", "", 1).replace("<strong>class</strong>", "", 1)
    assert "<" not in body.replace("&lt;", ""), rendered  # no element of any kind came from the data
    import html

    flat = " ".join(text.replace("\r", "\n").split("\n"))
    assert " ".join(html.unescape(body).split()) == " ".join(f"{flat} end".split())  # and it reads as written


def test_markdown_escaping_of_streamlit_extensions():
    # Streamlit's own syntax (colour and badge directives, icons, LaTeX) needs its opening character escaped.
    assert safe.md(":red[x] :material/home: $x$") == r"\:red\[x\] \:material/home\: \$x\$"


@pytest.mark.parametrize("text", ["plain", "a`b", "``x", "x`", "`", "a\nb"])
def test_code_span_holds_any_text(text):
    rendered = _html_of(safe.code(text))
    assert rendered.count("<code>") == 1
    inner = rendered.split("<code>", 1)[1].split("</code>", 1)[0]
    import html

    assert html.unescape(inner).strip() == text.replace("\n", " ").strip()


def test_html_escapes_markup_and_quotes():
    assert safe.html('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"


def test_csv_download_neutralises_formula_cells():
    frame = pd.DataFrame({"text": ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                   "fine", "a=b"],
                          "score": [-1.5, 2.0, 3.0, -4.0, 5.0, 6.0, 7.0, 8.0],
                          "=evil column": ["-", "ok", "ok", "ok", "ok", "ok", "ok", "ok"]})
    rows = list(csv.reader(io.StringIO(safe.csv_bytes(frame).decode("utf-8"), newline="")))
    assert rows[0] == ["text", "score", "'=evil column"]
    texts = [r[0] for r in rows[1:]]
    assert texts[:6] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx"]
    assert texts[6:] == ["fine", "a=b"]  # a formula character later in the cell is harmless
    assert [r[1] for r in rows[1:3]] == ["-1.5", "2.0"]  # numbers stay numbers
    assert rows[1][2] == "'-"
    assert frame["text"].iloc[0].startswith("=")  # the frame shown on screen is untouched


def test_every_csv_download_goes_through_safe():
    """No view hands out a CSV of its own making: each download of a frame uses safe.csv_bytes."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "dashboard").rglob("*.py")
                 if ".to_csv(" in p.read_text(encoding="utf-8") and p.name != "safe.py"]
    assert not offenders, offenders


def test_no_data_reaches_markdown_with_html_allowed():
    """The one place that allows HTML in markdown escapes the class name (the old code did not)."""
    source = (ROOT / "dashboard" / "components" / "explain_panel.py").read_text(encoding="utf-8")
    assert "{safe.md(target_name)}" in source


# ------------------------------------------------------------------------------------------ server config
def test_config_binds_localhost_and_hides_error_details():
    """What Streamlit itself reads from the repository's .streamlit/config.toml."""
    code = ("from streamlit import config; config.get_config_options(force_reparse=True); "
            "print(config.get_option('server.address')); print(config.get_option('client.showErrorDetails'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = out.stdout.split()
    assert lines[-2:] == ["127.0.0.1", "none"], out.stdout + out.stderr


def _listening_addresses(port: int) -> set[str]:
    """The local addresses a socket listens on at ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, state = fields[1], fields[3]
            host, port_hex = address.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(host)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc (Linux)")
def test_server_listens_on_loopback_only(tmp_path):
    """`streamlit run dashboard/app.py` with the repository's config: one listening socket, on 127.0.0.1."""
    from dashboard import browser

    port = browser.free_port()
    with browser.serve_app(tmp_path, tmp_path / "streamlit.log", port=port, address=None):
        listening = _listening_addresses(port)
    assert listening == {"0100007F"}, listening  # 127.0.0.1 in /proc's byte order; not 0.0.0.0 nor ::


# ------------------------------------------------------------------------------------------ review mode
@pytest.fixture()
def review_env(tiny_run_dir, monkeypatch):
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(Path(tiny_run_dir).parent))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    monkeypatch.setenv("KDLENS_REVIEW", "1")
    return Path(tiny_run_dir)


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)


def test_review_mode_has_no_distill_view_and_no_folder_box(review_env):
    from dashboard import navigation
    from dashboard.components.sidebar import CUSTOM_KEY

    at = _app().run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(navigation.PAGES) == ["audit", "batch", "explain", "overview", "report", "weights"]
    assert not [w for w in at.sidebar.text_input if w.key == CUSTOM_KEY]  # no "Open a run folder" box
    assert any(review_env.name in t.value for t in at.title)  # the published run is shown


def test_review_mode_refuses_a_folder_path(review_env, tmp_path):
    """A run folder given another way than the picker (here: the session's folder key) is refused."""
    import shutil

    from dashboard.components.sidebar import CUSTOM_KEY

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(review_env, elsewhere)  # a complete run, but not a published one
    at = _app()
    at.session_state[CUSTOM_KEY] = str(elsewhere)
    at.run()
    assert any("review mode" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
    assert not any("elsewhere" in t.value for t in at.title)


def test_outside_review_mode_the_folder_box_opens_a_run(review_env, tmp_path, monkeypatch):
    import shutil

    from dashboard.components.sidebar import CUSTOM_KEY

    monkeypatch.delenv("KDLENS_REVIEW")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(review_env, elsewhere)
    at = _app().run()
    at.sidebar.text_input(key=CUSTOM_KEY).set_value(str(elsewhere)).run()
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    from dashboard import navigation

    assert "distill" in navigation.PAGES


def test_review_mode_with_no_run_offers_no_job(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("KDLENS_REVIEW", "1")
    at = _app().run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "kdlens_build_demo"]
    assert any("No run is published" in i.value for i in at.info)
    assert not (tmp_path / "runs").exists()  # nothing written


# ------------------------------------------------------------------------------------------ uploads
def test_a_job_removes_its_upload_when_it_ends(tmp_path):
    """`python -m dashboard.jobs --remove-after=F -- ARGS`: the command's exit status, and F gone (even on failure)."""
    upload = tmp_path / "upload.csv"
    upload.write_text("text\nx\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "dashboard.jobs", f"--remove-after={upload}", "--", "-c",
                           "import sys, pathlib; sys.exit(3 if pathlib.Path(sys.argv[1]).exists() else 4)",
                           str(upload)], cwd=ROOT, timeout=60)
    assert done.returncode == 3  # the file was there while the command ran
    assert not upload.exists()


def test_sweep_removes_uploads_no_running_job_reads(tmp_path, monkeypatch):
    import os
    import time

    from dashboard.views import distill

    folder = tmp_path / distill.UPLOADS
    folder.mkdir()
    stale, fresh = folder / "old-1.csv", folder / "new-2.csv"
    for path in (stale, fresh):
        path.write_text("text\nx\n", encoding="utf-8")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    distill._sweep_uploads(tmp_path)
    assert not stale.exists()  # left by a killed job: removed
    assert fresh.exists()  # may belong to a job another session is starting now: kept
