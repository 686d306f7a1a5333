"""kdcore.report on the tiny run: content, self-containment, escaping, JSON round trip, CLI."""

from __future__ import annotations

import html
import json
import re

import pytest

from kdcore.report import build_report, render_html, write_report
from kdcore.runs import load_run

INJECTION = '<script>alert("x")</script> a good film <img src=x onerror=alert(1)> & boring'
MODELS = {"teacher", "linear", "linear-labels", "mlp", "mlp-labels"}


@pytest.fixture(scope="module")
def run(tiny_run_dir):
    return load_run(tiny_run_dir)


@pytest.fixture(scope="module")
def report(run):
    return build_report(run, examples=[INJECTION, "a fun film"], method="gradient_x_input")


def test_report_holds_the_model_card_hashes_and_definitions(run, report):
    assert report["run"]["name"] == run.name
    assert {row["model"] for row in report["model_card"]} == MODELS
    teacher_row = next(r for r in report["model_card"] if r["model"] == "teacher")
    assert teacher_row["accuracy"] == pytest.approx(run.metrics["models"]["teacher"]["accuracy"])
    assert teacher_row["fidelity"] == 1.0
    for name in ("accuracy", "macro_f1", "fidelity", "mean_tvd", "megabytes", "texts_per_second"):
        assert report["definitions"][name]
    assert report["datasets"]["test"]["hash"] == run.manifest["datasets"]["test"]["hash"]
    assert report["teacher"]["fingerprint"] == run.manifest["teacher"]["fingerprint"]
    files = run.manifest["files"]
    assert report["weight_hashes"]["students/linear/model.safetensors"] == files["students/linear/model.safetensors"]
    assert report["weight_hashes"]["teacher/model.safetensors"] == files["teacher/model.safetensors"]
    assert "torch" in report["package_versions"]
    assert report["configs"]["students"]["mlp"]["kind"] == "mlp"
    assert report["configs"]["distill"]["loss"] == run.manifest["distill"]["loss"]


def test_report_explains_every_example_with_every_model(report):
    assert [e["text"] for e in report["examples"]] == [INJECTION, "a fun film"]
    for example in report["examples"]:
        explanations = example["explanations"]
        assert set(explanations) == MODELS
        spans = {tuple(map(tuple, e["spans"])) for e in explanations.values()}
        assert len(spans) == 1, "every model explains the same words"
        targets = {e["target"] for e in explanations.values()}
        assert len(targets) == 1, "every model explains the same class"
        for expl in explanations.values():
            assert len(expl["scores"]) == len(expl["words"]) > 0


def test_report_json_round_trips(report):
    text = json.dumps(report, allow_nan=False)  # strict JSON: no NaN, no numpy types
    assert json.loads(text) == report


def test_html_is_self_contained_and_escaped(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script", page, re.I), "the report must not contain any script"
    assert not re.search(r"\b(src|href)\s*=", page, re.I), "no external resource or link"
    assert not re.search(r"https?://", page), "nothing fetched from elsewhere"
    assert "<img" not in page
    # The injection shows as text: decoded, the highlighted row reads as the original.
    assert INJECTION in html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "&lt;" in page and "&amp;" in page
    assert "<svg" in page and "<style>" in page
    for name in MODELS:
        assert f">{name}<" in page


def test_write_report_and_cli(run, tmp_path):
    html_path, json_path = write_report(run, tmp_path / "out" / "report.html", examples=["a good film"],
                                        method="gradient_x_input")
    assert html_path.is_file() and json_path == html_path.with_suffix(".json")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["examples"][0]["text"] == "a good film"
    assert html_path.read_text(encoding="utf-8") == render_html(data)
    assert not list(html_path.parent.glob("*.tmp")), "atomic writes leave no temporary file"

    from kdcore.cli import main

    out = tmp_path / "cli" / "r.html"
    assert main(["report", "--run", str(run.path), "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    # Default examples: the first texts of the run's test split.
    assert [e["text"] for e in data["examples"]] == run.split("test").texts[:3]


def test_html_lists_explanation_metrics(report):
    summary = [{"model": "linear", "method": "integrated_gradients", "n_texts": 2, "spearman_mean": 0.5,
                "spearman_std": 0.25, "comprehensiveness_mean": None, "comprehensiveness_std": None}]
    page = render_html({**report, "explanation_metrics": {"sample_size": 2, "methods": ["integrated_gradients"],
                                                          "summary": summary}})
    section = page.split("Explanation agreement and faithfulness", 1)[1].split("<h2>", 1)[0]
    assert ">spearman<" in section and "0.500 &plusmn; 0.250" in section and "&mdash;" in section
    assert ">2<" in section  # counts stay integers
    assert "Not computed" in render_html({**report, "explanation_metrics": None})
