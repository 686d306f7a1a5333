"""The report as an audit document: summary first, the audit's sections and Art. 13 items, hostile text escaped,
every table within an A4 page when printed, and the PDF Chromium prints (CLI ``report --pdf``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kdcore.audit import audit_run
from kdcore.audit.pdf import CHROMIUM
from kdcore.report import build_report, render_html
from kdcore.runs import load_run

HOSTILE = '<script>alert("x")</script>'
needs_chromium = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"needs headless Chromium at {CHROMIUM}: "
                                    "apt-get install chromium")


@pytest.fixture(scope="module")
def audited(tiny_run_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("audited")
    copy = shutil.copytree(tiny_run_dir, root / "tiny")
    run = load_run(copy)
    audit_run(run, user=[{"kind": "keyword", "value": "film", "name": HOSTILE}], min_support=1, probe_texts=4)
    return load_run(copy)


def test_report_opens_on_the_summary_and_names_each_art13_item(audited):
    report = build_report(audited, examples=[])
    block = report["audit"]
    assert block["available"] and [s["student"] for s in block["students"]] == audited.student_names
    assert [a["item"] for a in block["art13"]] == [f"Art. 13(3)(b)({k})" for k in
                                                    ("i", "ii", "iii", "iv", "v", "vi", "vii")]
    page = render_html(report)
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[0] == "Summary"
    for section in ("Intended use", "Factors", "Metrics", "Evaluation data", "Quantitative analyses",
                    "Caveats and recommendations", "EU AI Act Art. 13(3)(b)", "Appendix"):
        assert section in headings
    assert headings.index("Quantitative analyses") < headings.index("Appendix")
    assert "Certified stand-in threshold" in page and "Counterfactual probes" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page  # the user's slice name is drawn escaped


def test_report_without_an_audit_says_how_to_get_one(tiny_run_dir):
    page = render_html(build_report(load_run(tiny_run_dir), examples=[]))
    assert "No audit yet" in page and "python -m kdcore audit" in page


@needs_chromium
def test_every_table_fits_the_printed_page_and_the_cli_prints_a_pdf(audited, tmp_path):
    from kdcore.audit.pdf import table_overflow
    from kdcore.cli import main

    report = build_report(audited, examples=["a good film"], method="gradient_x_input")
    report["explanation_metrics"] = {"sample_size": 2, "methods": ["integrated_gradients"], "summary": [
        {"model": m, "method": "integrated_gradients", "n_texts": 2, **{f"metric_{i}_mean": 0.5 for i in range(12)},
         **{f"metric_{i}_std": 0.1 for i in range(12)}} for m in ("teacher", "linear", "mlp")]}
    assert table_overflow(render_html(report)) == []
    wide = "<table><tr>" + "".join(f"<td>a-long-unbreakable-cell-{i}</td>" for i in range(40)) + "</tr></table>"
    assert table_overflow(wide), "the check must see a table wider than the page"
    out = tmp_path / "report.html"
    assert main(["report", "--run", str(audited.path), "--out", str(out), "--pdf"]) == 0
    pdf = Path(out.with_suffix(".pdf")).read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
