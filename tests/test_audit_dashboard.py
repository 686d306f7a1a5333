"""The Audit page under Streamlit's AppTest, on a copy of the tiny run: a slice of one's own, a probe, the
certified thresholds, and saving the audit into the run (the report then includes it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conftest import open_section  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 180
HOSTILE = "<b>film</b>"


def _audit_page(root: str) -> None:
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from dashboard.components.sidebar import run_picker
    from dashboard.views import audit

    run_picker()
    audit.render()


@pytest.fixture()
def page(tiny_run_dir, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run_dir, runs / "tiny")
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(runs))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    return AppTest.from_function(_audit_page, args=(str(ROOT),), default_timeout=TIMEOUT), runs / "tiny"


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_audit_page_builds_a_slice_runs_a_probe_and_saves(page):
    at, run_dir = page
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.value == "Audit" for t in at.title)
    # a slice of one's own: keyword 'film' (2 of the 4 test texts), and a bad regular expression refused
    at.selectbox(key="audit_slice_kind").set_value("keyword")
    at.text_input(key="audit_slice_value").set_value("film")
    _button(at, "Add slice").click().run()
    assert not at.exception and not at.error
    tables = [d.value for d in at.dataframe]
    every = next(t for t in tables if "slice" in t.columns and "group" in t.columns)
    mine = every[every["slice"] == "keyword: film"]
    assert len(mine) == 1 and int(mine["n"].iloc[0]) == 2
    at.selectbox(key="audit_slice_kind").set_value("regex")
    at.text_input(key="audit_slice_value").set_value("(unclosed")
    _button(at, "Add slice").click().run()
    assert any("cannot be built" in e.value for e in at.error)
    assert any("not a valid regular expression" in t.value for t in at.text)
    # a probe: word swaps given by the user, 'good' <-> 'bad'
    at.selectbox(key="audit_probe_choice").set_value("word swaps").run()
    at.text_area(key="audit_swaps").set_value("good,bad")
    at.button(key="audit_run_probe").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("swap: applies to 2 of 4 texts" in t.value for t in at.text)
    flips = next(d.value for d in at.dataframe if "flip rate" in d.value.columns and "flips" in d.value.columns)
    assert set(flips["model"]) >= {"teacher", "linear"}
    # certified thresholds, then the audit saved into the run (its hashes still verify)
    assert any("test coverage (teacher passes saved)" in d.value.columns for d in at.dataframe)
    at.button(key="audit_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from kdcore.audit import load_audit
    from kdcore.runs import load_run

    saved = load_audit(load_run(run_dir))
    assert saved is not None and any(s["name"] == "keyword: film" for s in saved["slices"])


def test_review_mode_shows_the_audit_but_offers_no_save(page, monkeypatch):
    """Review mode is read only: the Audit page draws its tabs (slices, probes, thresholds, all in the
    session) but no button writes the audit into the published run."""
    at, run_dir = page
    monkeypatch.setenv("KDLENS_REVIEW", "1")
    before = sorted(p.name for p in run_dir.iterdir())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.value == "Audit" for t in at.title)
    assert not [b for b in at.button if b.key == "audit_save"]
    assert any(b.key == "audit_run_probe" for b in at.button)  # a probe runs in the session, writing nothing
    assert any("test coverage (teacher passes saved)" in d.value.columns for d in at.dataframe)
    assert sorted(p.name for p in run_dir.iterdir()) == before


def _batch_page(root: str) -> None:
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from dashboard.components.sidebar import run_picker
    from dashboard.views import batch

    run_picker()
    batch.render()


def test_batch_shows_the_hybrid_and_filters_by_slice(page):
    from kdcore.certify import HYBRID_FILE
    from kdcore.runs import load_run, update_run_file

    _, run_dir = page
    # a hybrid whose threshold on linear's margin routes only the texts linear is surest of
    update_run_file(load_run(run_dir), HYBRID_FILE, {"students": {"linear": {
        "score": "logit_margin", "threshold": 1e9, "target": 0.95, "confidence": 0.95,
        "teacher_passes_saved": 0.5}}})
    at = AppTest.from_function(_batch_page, args=(str(ROOT),), default_timeout=TIMEOUT).run()
    at.file_uploader(key="batch_upload").upload("r.csv", b"text\na good film\nboring and dull\nnot good\n", "text/csv")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    results = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert list(results["answered by"]) == ["teacher"] * 3  # no margin reaches 1e9: the teacher answers
    assert list(results["hybrid"]) == list(results["teacher"])
    at.selectbox(key="batch_slice").set_value("has a negation word").run()
    shown = next(d.value for d in at.dataframe if "text" in d.value.columns and "row" in d.value.columns
                 and len(d.value) < 3)
    assert list(shown["text"]) == ["not good"]


def _overview_page(root: str) -> None:
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from dashboard.components.sidebar import run_picker
    from dashboard.views import overview

    run_picker()
    overview.render()


def test_overview_shows_the_saved_audit(page):
    from kdcore.audit import audit_run
    from kdcore.runs import load_run

    _, run_dir = page
    at = AppTest.from_function(_overview_page, args=(str(ROOT),), default_timeout=TIMEOUT).run()
    assert not any("No audit saved" in c.value for c in at.caption)  # drawn only when its section is opened
    at = open_section(at, "Where they stand in worst")
    assert any("No audit saved" in c.value for c in at.caption)
    audit_run(load_run(run_dir), min_support=1, probe_texts=2)
    at = open_section(AppTest.from_function(_overview_page, args=(str(ROOT),), default_timeout=TIMEOUT),
                      "Where they stand in worst")
    assert not at.exception, [e.value for e in at.exception]
    assert any(list(d.value.columns)[:2] == ["student", "slice"] for d in at.dataframe)
