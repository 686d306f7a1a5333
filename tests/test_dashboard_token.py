"""The views render a token run under Streamlit's AppTest (each view as the entry file runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import open_section, seen
from test_dashboard import ROOT, TIMEOUT, _view_script, html_of, no_exceptions


@pytest.fixture()
def token_env(tiny_token_run_dir, monkeypatch):
    runs = Path(tiny_token_run_dir).parent
    monkeypatch.setenv("KDLENS_RUNS_DIR", str(runs))
    monkeypatch.setenv("KDLENS_THREADS", "1")
    return runs


def view(name: str) -> AppTest:
    return AppTest.from_function(_view_script, args=(name, str(ROOT)), default_timeout=TIMEOUT)


def test_overview_shows_the_per_type_table_of_every_model(token_env, tiny_token_run_dir):
    at = view("overview").run()
    no_exceptions(at)
    assert any("tiny-ner" in t.value for t in at.title)
    metrics = json.loads((Path(tiny_token_run_dir) / "metrics.json").read_text())
    # one per-type table per model, in the first section (open on the first load)
    assert len([t for t in at.tabs if t.label in metrics["models"]]) == len(metrics["models"])
    tables = [df.value for df in at.dataframe]
    assert any({"type", "precision", "recall", "f1", "support"} <= set(t.columns) for t in tables)
    assert any("difference" in t.columns for t in tables)  # the twins' margins


def test_overview_shows_the_per_tag_table_confusion_and_entity_trust_curve(token_env, tiny_token_run_dir):
    at = open_section(view("overview").run(), "Per entity type against the teacher")
    no_exceptions(at)
    metrics = json.loads((Path(tiny_token_run_dir) / "metrics.json").read_text())
    per_tag = [df.value for df in at.dataframe if "teacher f1" in df.value.columns]
    assert per_tag, [list(df.value.columns) for df in at.dataframe]
    table = per_tag[0]
    assert table["type"].tolist() == [*metrics["per_tag"]["types"], "micro avg"]
    assert {"linear agreement F1", "linear agreement F1 95% CI", "teacher recall 95% CI"} <= set(table.columns)
    teacher_row = next(r for r in metrics["per_tag"]["teacher_gold"] if r["type"] == "micro avg")
    assert table.loc[table["type"] == "micro avg", "teacher f1"].item() == pytest.approx(teacher_row["f1"], abs=1e-4)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    confusion = [spec for spec in charts if "heatmap" in spec and "%{z} entities" in spec]
    assert len(confusion) == len(metrics["per_tag"]["confusion"])  # one type confusion per model
    at = open_section(at, "Where students stand in")
    no_exceptions(at)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Trust curves per entity" in spec for spec in charts)
    assert not any("%{z} entities" in spec for spec in charts)  # the closed section's charts are not drawn
    assert any("entity agreement" in m.label for m in at.metric)


def test_explain_shows_entities_and_word_attributions(token_env):
    at = view("explain").run()
    no_exceptions(at)
    assert "teacher" in [m.value.strip("*") for m in at.markdown if m.value.startswith("**")]
    # the label-trained twin learned the toy rule (film -> work), so this sentence has an entity to pick
    at.text_input(key="token_explain_words").set_value("the film was fun").run()
    no_exceptions(at)
    assert at.radio and "[work]" in seen(" ".join(at.radio[0].options))
    page = html_of(at)
    assert "kdl-heatmap" in page and "linear-labels" in page
    assert "p(the teacher has this entity)" in page  # a student's entity carries its p(agrees) badge
    at.text_input(key="token_explain_words").set_value("the great film was <b>fun</b>").run()
    no_exceptions(at)
    assert "<b>fun</b>" not in html_of(at)  # typed words are escaped


def test_weights_and_batch_and_report(token_env):
    at = view("weights").run()
    no_exceptions(at)
    assert at.dataframe and "feature" in at.dataframe[0].value.columns
    at = view("batch").run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert "total" in table.columns and "linear: entity mismatches" in table.columns
    assert at.selectbox  # the picked sentence: one row a model, the teacher's and every student's
    names = {m.value.strip("*") for m in at.markdown if m.value.startswith("**")}
    assert {"teacher", "linear", "linear-labels"} <= names, names
    at = view("report").run()
    no_exceptions(at)
    assert any("Download HTML" in b.label for b in at.get("download_button"))


def test_distill_view_spec_for_the_token_corpus():
    from dashboard.views.distill import build_spec

    spec = build_spec("ner", "embedded-minilm", True, None, None, None, ["linear", "mlp"], "kd_kl", 0.5, 0.0, 2, 500,
                      8.0, corpus="wnut16")
    assert spec.task == "token" and [s.kind for s in spec.students] == ["token_linear", "token_mlp"]
    assert spec.teacher.learning_rate == 2e-4
    assert build_spec("r", "embedded-minilm", True, None, None, None, ["linear"], "kd_kl", 0.5, 0.0, 2, 500,
                      1.5).task == "sequence"


def test_token_report_is_self_contained_and_escaped(token_env, tiny_token_run_dir, tmp_path):
    from kdcore.cli import main

    assert main(["report", "--run", str(tiny_token_run_dir), "--out", str(tmp_path / "r.html")]) == 0
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    page = html_path.read_text(encoding="utf-8")
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["task"] == "token" and "<script" not in page.lower()
    assert "precision" in page and "micro avg" in page and "linear-labels" in page
    assert set(report["per_type"]) == set(report["margins"]) | {"teacher", "linear-labels", "mlp-labels", "crf-labels"}


def test_distill_view_checks_the_token_corpus(token_env):
    at = view("distill").run()
    no_exceptions(at)
    at.radio(key="distill_data_kind").set_value("WNUT-16 tweets (entities: one tag a word)").run()
    no_exceptions(at)
    captions = " ".join(c.value for c in at.caption)
    assert "train 1,492" in captions and "person" in captions  # the token corpus's splits and entity types


def test_distill_view_spec_for_an_uploaded_conll_file(tmp_path):
    from dashboard.views.distill import _upload_types, build_spec

    assert {"conll", "csv", "jsonl"} <= set(_upload_types())
    conll = tmp_path / "tags.conll"
    conll.write_text("the\tO\nfilm\tB-work\n\nan\tO\nactor\tB-per\n", encoding="utf-8")
    spec = build_spec("mine", "embedded-minilm", True, conll, None, None, ["linear"], "kd_kl", 0.5, 0.0, 2, 500, 8.0)
    assert spec.task == "token" and spec.data.path == str(conll) and [s.kind for s in spec.students] == ["token_linear"]
    assert spec.teacher.learning_rate == 2e-4  # the token task's fine-tuning
    csv = tmp_path / "texts.csv"
    csv.write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    assert build_spec("t", "embedded-minilm", True, csv, None, None, ["linear"], "kd_kl", 0.5, 0.0, 2, 500,
                      1.5).task == "sequence"


def test_distill_view_reads_a_conll_upload_without_writing_it(token_env):
    """An uploaded CoNLL file makes the form a token run's (token students, no columns to pick), yet nothing is
    written under the runs folder before a job starts."""
    from dashboard.views import distill

    at = view("distill").run()
    no_exceptions(at)
    at.radio(key="distill_data_kind").set_value(distill._DATA_CHOICES[1]).run()
    at.file_uploader(key="distill_upload").upload("tags.conll", b"the\tO\nfilm\tB-work\n\nan\tO\nactor\tB-per\n",
                                                  "text/plain")
    at.run()
    no_exceptions(at)
    students = [m for m in at.multiselect if m.key == "distill_students_token"]
    assert students and set(students[0].options) == {"linear", "mlp", "crf"}, [m.key for m in at.multiselect]  # no aug
    assert not [s for s in at.selectbox if s.key == "distill_text_column"]
    assert not (token_env / distill.UPLOADS).exists()
