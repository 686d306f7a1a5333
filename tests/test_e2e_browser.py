"""End to end in a real browser: headless Chromium (Debian package) driven by Playwright,
against ``streamlit run dashboard/app.py`` serving the tiny run.

Distill a three-class upload in the Distill view and open the new run; upload a CSV on the Batch page, see every model's predictions (in the downloaded results
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
        assert page.locator("[data-testid='stPlotlyChart']").count() == 0  # sections are drawn when opened
        page.get_by_role("tab", name="Charts", exact=True).click()
        page.locator("[data-testid='stPlotlyChart']").first.wait_for(state="visible")
        assert page.locator("[data-testid='stException']").count() == 0

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


def test_distill_a_multiclass_upload_and_open_the_run(tmp_path):
    """Distill view, as a user: a three-class CSV uploaded, a trained teacher whose head lists the classes
    in another order, the checks seen before Start, the run built in the background, opened in the Overview."""
    from conftest import make_tiny_model_dir

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    teacher = make_tiny_model_dir(tmp_path / "teacher", label_names=("tech", "politics", "sports"))
    rows = ([f"the new phone and its chip {i},tech" for i in range(12)]
            + [f"the senate vote on the bill {i},politics" for i in range(12)]
            + [f"the match and the final goal {i},sports" for i in range(12)])
    upload = tmp_path / "topics.csv"
    upload.write_text("text,topic\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with browser.serve_app(runs_dir, tmp_path / "streamlit.log", SERVER_START_S) as base, \
            browser.browser_page(1400, 1400, STEP_MS) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        open_page(page, base, "distill", "Distill a teacher")
        name = page.get_by_role("textbox", name="Run name", exact=True)
        name.fill("topics")
        name.press("Enter")
        wait_until_idle(page)
        page.get_by_text("A local folder", exact=True).click()
        wait_until_idle(page)
        folder = page.get_by_role("textbox", name="Teacher folder", exact=True)
        folder.fill(str(teacher))
        folder.press("Enter")
        wait_until_idle(page)
        page.get_by_text("Upload a file", exact=True).click()
        wait_until_idle(page)
        page.locator("input[type='file']").set_input_files(str(upload))
        page.get_by_text("Before you start: what the checks found").wait_for(state="visible")
        wait_until_idle(page)
        # "topic" is not a name the reader detects: without a label column the checks say so ...
        assert page.get_by_text("No gold labels: the teacher labels every text").first.is_visible()
        # ... and the user picks it.
        page.locator("[data-testid='stSelectbox']").filter(has_text="Label column").click()
        page.get_by_role("option", name="topic", exact=True).click()
        wait_until_idle(page)
        found = page.get_by_text("The teacher's classes match the data's by name").first
        found.wait_for(state="visible")
        assert "tech→tech, politics→politics, sports→sports" in found.inner_text()
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
        for label, value in (("Augmented copies", "0"), ("MLP training steps", "3")):
            box = page.get_by_role("spinbutton", name=label, exact=True)
            box.fill(value)
            box.press("Enter")
            wait_until_idle(page)
        page.get_by_role("button", name="Start distillation").click()
        page.get_by_text("Started (pid").wait_for(state="visible")
        # The job runs in the background; the progress panel polls it until the run is ready.
        page.get_by_text("Run topics is ready").wait_for(state="visible", timeout=240_000)
        screenshot(page, "distill", tmp_path)
        page.get_by_role("button", name="Open topics").click()
        page.get_by_role("heading", name="Run topics").first.wait_for(state="visible")
        wait_until_idle(page)
        try:
            page.get_by_text("classes tech, politics, sports").first.wait_for(state="visible", timeout=180_000)
        except Exception as err:  # say what the page showed instead
            page.screenshot(path=str(tmp_path / "overview-after-open.png"), full_page=True)
            raise AssertionError("The Overview of the new run did not show its classes; the page read:\n"
                                 + page.locator("[data-testid='stMain']").inner_text()[:2000]) from err
        assert page.locator("[data-testid='stException']").count() == 0
        assert not errors, errors
    from kdcore.runs import load_run

    run = load_run(runs_dir / "topics")
    assert run.label_names == ["tech", "politics", "sports"]  # the teacher's order, the data re-indexed to it
    assert run.metrics["models"]["teacher"]["confusion_matrix"] and len(run.metrics["models"]["teacher"]["per_class"]) == 3


def test_distill_an_uploaded_conll_file_and_open_the_token_run(tmp_path):
    """Distill view, as a user: a CoNLL file of tagged words uploaded, a trained token classifier as the
    teacher, the token checks seen before Start, the token run built in the background, opened in the
    Overview (which the run's task draws: entity types and the trust curve over sentences)."""
    from conftest import make_tiny_token_model_dir, make_toy_token_corpus

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    teacher = make_tiny_token_model_dir(tmp_path / "token-teacher")
    corpus = make_toy_token_corpus(n_sentences=120)
    blocks = []
    for split in (corpus.train, corpus.dev, corpus.test):
        for i, words in enumerate(split.sentences):
            blocks.append("\n".join(f"{w}\t{t}" for w, t in zip(words, split.tag_names(i))))
    upload = tmp_path / "reviews.conll"
    upload.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    with browser.serve_app(runs_dir, tmp_path / "streamlit.log", SERVER_START_S) as base, \
            browser.browser_page(1400, 1400, STEP_MS) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        open_page(page, base, "distill", "Distill a teacher")
        name = page.get_by_role("textbox", name="Run name", exact=True)
        name.fill("tagged")
        name.press("Enter")
        wait_until_idle(page)
        page.get_by_text("A local folder", exact=True).click()
        wait_until_idle(page)
        folder = page.get_by_role("textbox", name="Teacher folder", exact=True)
        folder.fill(str(teacher))
        folder.press("Enter")
        wait_until_idle(page)
        page.get_by_text("Upload a file", exact=True).click()
        wait_until_idle(page)
        page.locator("input[type='file']").set_input_files(str(upload))
        page.get_by_text("Before you start: what the checks found").wait_for(state="visible")
        wait_until_idle(page)
        page.get_by_text("The teacher's tags match the data's by name").first.wait_for(state="visible")
        assert page.get_by_text("Label column").count() == 0  # words and tags: no columns to pick
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
        for label, value in (("Augmented copies", "0"), ("MLP training steps", "3")):
            box = page.get_by_role("spinbutton", name=label, exact=True)
            box.fill(value)
            box.press("Enter")
            wait_until_idle(page)
        page.get_by_role("button", name="Start distillation").click()
        page.get_by_text("Started (pid").wait_for(state="visible")
        page.get_by_text("Run tagged is ready").wait_for(state="visible", timeout=240_000)
        page.get_by_role("button", name="Open tagged").click()
        page.get_by_role("heading", name="Run tagged").first.wait_for(state="visible")
        wait_until_idle(page)
        try:
            page.get_by_text("entity types per, work").first.wait_for(state="visible", timeout=180_000)
            page.get_by_role("tab", name="Where students stand in", exact=True).click()
            page.get_by_text("Where each student stands in for the teacher").first.wait_for(state="visible")
        except Exception as err:  # say what the page showed instead
            page.screenshot(path=str(tmp_path / "token-overview-after-open.png"), full_page=True)
            raise AssertionError("The Overview of the new token run did not show its entity types; the page read:\n"
                                 + page.locator("[data-testid='stMain']").inner_text()[:2000]
                                 + f"\npage errors: {errors}\nconsole: {console[-20:]}") from err
        screenshot(page, "distill-token", tmp_path)
        assert page.locator("[data-testid='stException']").count() == 0
        assert not errors, errors
    from kdcore.runs import load_run

    run = load_run(runs_dir / "tagged")
    assert run.task == "token" and run.label_names == ["O", "B-per", "I-per", "B-work", "I-work"]
    assert (run.path / "trust.json").is_file() and run.metrics["models"]["teacher"]["per_type"]
