"""kdcore.report on the tiny run: content, self-containment, escaping, JSON round trip, CLI."""

from __future__ import annotations

import html
import json
import re

import pytest
from markupsafe import escape

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


SECTIONS = ["Summary", "Metrics", "Quantitative analyses", "Confusion matrices", "Example explanations", "Appendix",
            "Provenance", "Definitions"]


def _visible(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_html_has_every_section_and_number(run, report):
    page = render_html(report)
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert [h for h in headings if h in SECTIONS] == SECTIONS
    for sub in ("Teacher", "Data", "Weights", "Package versions", "Configurations"):
        assert f"<h3>{sub}</h3>" in page
    text = _visible(page)
    for row in report["model_card"]:
        metrics = page.split("<h2>Metrics</h2>", 1)[1]  # the summary above lists the students too
        cells = re.search(rf"<tr><td class=\"l\">{re.escape(row['model'])}</td>.*?</tr>", metrics).group(0)
        assert f">{row['accuracy']:.3f}<" in cells and f">{row['fidelity']:.3f}<" in cells
        assert f">{row['parameters']:,.0f}<" in cells and f">{row['latency_ms']:.3f}<" in cells
        assert f"{row['model']} accuracy = {row['accuracy']:.4f}" in page  # the SVG bar's tooltip
    for name, matrix in report["confusion_matrices"].items():
        block = page.split(f"<h3>{name}</h3>", 1)[1].split("</table>", 1)[0]
        assert [int(v) for v in re.findall(r'<td class="">(\d+)</td>', block)] == [v for r in matrix for v in r]
    assert f"Test set: {report['test_size']} texts." in text
    assert report["teacher"]["fingerprint"] in page
    for rel, digest in report["weight_hashes"].items():
        assert f'<td class="l">{rel}</td><td class="l"><span class="hash">{digest}</span>' in page
    for name, definition in report["definitions"].items():
        assert f"<dt>{name}</dt><dd>{escape(definition)}</dd>" in page
    assert text.count("Example 1 — gradient_x_input, class ") == 1


def test_hostile_values_everywhere_are_escaped(report):
    hostile = '<script>alert("x")</script> {{ 7*7 }} {% if 1 %}y{% endif %} \'q\''
    card = [{**report["model_card"][0], "model": hostile}]
    page = render_html({**report, "run": {**report["run"], "name": hostile}, "model_card": card,
                        "notes": [hostile], "label_names": [hostile, "pos"],
                        "definitions": {hostile: hostile}})
    assert not re.search(r"<script", page, re.I)
    escaped = str(escape(hostile))  # Jinja's autoescape: &#34; and &#39; for quotes
    assert page.count(escaped) >= 6  # title, h1, card row, SVG label, note, definition (term and text)
    assert _visible(page).count(hostile) >= 5


def test_template_ships_with_the_package():
    import subprocess
    from pathlib import Path

    import kdcore.report as report_module

    template = Path(report_module.__file__).parent / "templates" / "report.html.j2"
    assert template.is_file()
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(template)], cwd=template.parent,
                             capture_output=True, text=True)
    assert tracked.returncode == 0, "kdcore/templates/report.html.j2 must be committed"


def test_report_of_a_long_text_says_it_was_explained_window_by_window(run):
    long_text = " ".join(["a good film but a boring plot"] * 12)  # several of the tiny teacher's windows
    report = build_report(run, examples=[long_text], method="integrated_gradients")
    teacher = report["examples"][0]["explanations"]["teacher"]
    assert len(teacher["words"]) == 7 * 12
    assert any(note.startswith("teacher: explained in") and "windows" in note for note in report["notes"])
    page = render_html(report)
    assert "explained in" in page and "Notes" in page


def test_report_shows_intervals_and_twin_margins(report):
    html_page = render_html(report)
    linear = next(r for r in report["model_card"] if r["model"] == "linear")
    assert re.fullmatch(r"\d\.\d{3}–\d\.\d{3}", linear["fidelity_ci"])
    assert linear["fidelity_ci"] in html_page and "95% CI" in html_page
    assert {m["student"]: m["twin"] for m in report["twin_margins"]} == {"linear": "linear-labels",
                                                                           "mlp": "mlp-labels"}
    assert "Distilled vs label-trained" in html_page
