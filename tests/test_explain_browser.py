"""Explain in a real browser (headless Chromium, Playwright) draws in stages: a long text's student highlights
are on the page before the teacher's attribution (its cheap first pass, labelled as such, may be beside them),
and the teacher's row comes after; its progress, where drawn, only before that row.

The order is read from the page itself: a MutationObserver installed before the text is sent logs every
change of the Explain panel (which models have a highlighted row for the new text, whether the teacher's
progress bar is shown), so the test depends on what was drawn, not on when it looked. Skipped only when
/usr/bin/chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import browser
from dashboard.components.explain_panel import FIRST_PASS

SERVER_START_S = 90
STEP_MS = 120_000
STUDENTS = ("linear", "linear-labels", "mlp", "mlp-labels")
MARKER = "zanzibar"  # a word of the new text only, to tell its rows from the previous text's

pytestmark = pytest.mark.skipif(not browser.CHROMIUM.exists(),
                                reason="needs headless Chromium at /usr/bin/chromium: apt-get install chromium")

# Logs [rows of the new text by model name, teacher progress shown] each time either changes.
OBSERVER = """(marker) => {
  window.__kdlLog = [];
  const state = () => {
    const rows = [...document.querySelectorAll('table.kdl-heatmap tr.kdl-row')]
      .filter(row => row.closest('[data-stale="true"]') === null && row.textContent.includes(marker))
      .map(row => row.querySelector('td').textContent.trim());
    const pending = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
      .some(note => note.closest('[data-stale="true"]') === null && /The teacher.s .* windows done/.test(note.textContent));
    return JSON.stringify([rows, pending]);
  };
  let last = null;
  const record = () => {
    const now = state();
    if (now !== last) { window.__kdlLog.push(JSON.parse(now)); last = now; }
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                        attributes: true});
  record();
}"""


def long_text(words: int = 1500) -> str:
    vocabulary = "a good film but the plot is dull and the actors are fun".split()
    body = [vocabulary[i % len(vocabulary)] for i in range(words - 1)]
    return " ".join([MARKER, *body])


def test_long_text_shows_the_students_before_the_teacher(tiny_run_dir, tmp_path):
    runs_dir = Path(tiny_run_dir).parent
    with browser.serve_app(runs_dir, tmp_path / "streamlit.log", SERVER_START_S) as base, \
            browser.browser_page(1400, 1000, STEP_MS) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        browser.open_page(page, base, "explain", "Explain a prediction", STEP_MS)
        page.evaluate(OBSERVER, MARKER)
        box = page.get_by_role("textbox", name="Text", exact=True)
        box.fill(long_text())
        box.press("Control+Enter")
        teacher_row = page.locator("table.kdl-heatmap tr.kdl-row", has_text=MARKER).filter(
            has=page.locator("td", has_text="teacher"))
        teacher_row.first.wait_for(state="visible")
        browser.wait_until_idle(page, STEP_MS)
        log = page.evaluate("window.__kdlLog")

        # A state with every student's row of the new text and no teacher row yet (the teacher's gradient x
        # input may be there, in a row labelled as a first pass) ...
        staged = [i for i, (rows, _) in enumerate(log) if set(STUDENTS) <= set(rows) and "teacher" not in rows]
        assert staged, log
        assert any(FIRST_PASS in rows for rows, _ in log[:staged[-1] + 1]), log
        # ... and only after it, the teacher's row with the students', the progress gone. The progress bar itself
        # is asserted only where it was drawn: on idle cores the tiny teacher can finish every window between two
        # frames of the page, so whether it reaches the page at all is timing, not behaviour.
        done = [i for i, (rows, pending) in enumerate(log) if "teacher" in rows and not pending]
        assert done and done[0] > staged[0], log
        assert not any("teacher" in rows for rows, _ in log[:staged[0] + 1]), log
        assert all(i < done[0] for i, (_, pending) in enumerate(log) if pending), log
        assert sorted(log[-1][0]) == sorted(("teacher", *STUDENTS)) and not log[-1][1], log
        # The teacher's convergence delta is shown once it is complete.
        assert page.get_by_text("convergence delta").count() == 1
        assert page.locator("[data-testid='stException']").count() == 0
        assert not errors, errors
