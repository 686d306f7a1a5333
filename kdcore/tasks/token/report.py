"""The report of a token run: one JSON document and one self-contained HTML page rendered from it alone
(inline CSS, no script, no external resource, every text escaped), as :mod:`kdcore.report` does for a
sequence run. It holds the model card, each model's gold per-type table (seqeval's layout), the
distilled-minus-twin margins with their intervals, the explanation agreement, the definitions, hashes,
versions and configurations, and a few test sentences tagged by every model."""

from __future__ import annotations

import json
import os
from pathlib import Path

from markupsafe import Markup

from .analysis import entity_html, entity_legend_html, model_tags
from .entity_trust import ENTITY_DEFINITIONS
from .metrics import per_type_text
from .per_tag import PER_TAG_DEFINITIONS, per_tag_table
from ...report import REPORT_VERSION, template_environment
from ...utils import atomic_write_bytes, strict_json

__all__ = ["build_token_report", "render_token_html", "write_token_report", "TOKEN_DEFINITIONS"]

TOKEN_DEFINITIONS = {
    "decoding": "Every model's per-word scores are read as BIO tags by one decoding: the Viterbi path over per-word "
                "log-probabilities in which no I-x follows O, the sentence start or another type; a CRF student's "
                "own Viterbi path over its emissions and learned tag transitions, under the same constraints.",
    "entity_f1": "Gold entities (exact span and type): F1 of precision (right / predicted) and recall "
                 "(right / gold), micro-averaged over types; per type as seqeval's classification report.",
    "word_fidelity": "Share of test words on which the student's tag equals the teacher's.",
    "mean_tvd": "Mean over test words of the total-variation distance between student and teacher tag probabilities.",
    "entity_agreement_f1": "F1 of the student's entities with the teacher's entities as reference (exact span and "
                           "type): precision = shared / student's, recall = shared / teacher's.",
    "margin": "Entity agreement F1 of a distilled student minus its label-trained twin's, with a percentile "
              "interval from resampling the test sentences (bootstrap).",
    "intervals": "In brackets after a number: its 95% interval from resampling the test sentences (bootstrap), "
                 "so the words and entities of one sentence move together.",
    "explanation agreement": "On the first word of the teacher's test entities: Spearman, Kendall, top-20% overlap "
                             "and sign agreement between the teacher's integrated gradients for its tag and each "
                             "student's exact feature contributions, per word of the sentence.",
    **PER_TAG_DEFINITIONS, **ENTITY_DEFINITIONS,
}
TEMPLATE = "token_report.html.j2"  # in kdcore/templates, beside the sequence report's
_CARD = (("entity_f1", "entity F1", "{:.3f}"), ("fidelity", "word fidelity", "{:.3f}"),
         ("entity_agreement_f1", "entity agreement F1", "{:.3f}"), ("mean_tvd", "mean TVD", "{:.3f}"),
         ("parameters", "parameters", "{:,.0f}"), ("megabytes", "MB", "{:.2f}"),
         ("texts_per_second", "sentences/s", "{:,.0f}"))

def _fmt(value, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def build_token_report(run, n_examples: int = 3) -> dict:
    """Everything about a token ``run`` a reviewer needs, as a JSON-able dict (``n_examples`` test sentences
    tagged by every model)."""

    manifest, metrics = run.manifest, run.metrics or {}
    models = metrics.get("models", {})
    examples = []
    if n_examples:
        test = run.split("test")
        sentences = test.sentences[:n_examples]
        tags = model_tags(run.models(), sentences)
        for i, words in enumerate(sentences):
            entry = {"words": words, "tags": {name: rows[i] for name, rows in tags.items()}}
            if test.has_labels:
                entry["gold"] = test.tag_names(i)
            examples.append(entry)
    teacher = manifest.get("teacher", {})
    return strict_json({
        "report_version": REPORT_VERSION, "task": "token",
        "run": {"name": run.name, "created_at": manifest.get("created_at"), "teacher_source": teacher.get("source"),
                "teacher_fingerprint": teacher.get("fingerprint"), "test_size": metrics.get("test_size"),
                "test_words": metrics.get("test_words")},
        "label_names": run.label_names,
        "model_card": [{"model": name, "role": entry.get("role", ""), **{k: entry.get(k) for k, _, _ in _CARD},
                        **{f"{k}_ci": entry.get(f"{k}_ci") for k, _, _ in _CARD if entry.get(f"{k}_ci")}}
                       for name, entry in models.items()],
        "per_type": {name: entry.get("per_type", []) for name, entry in models.items()},
        "margins": metrics.get("margins", {}), "explanation_metrics": metrics.get("explanations"),
        "per_tag": metrics.get("per_tag"), "entity_trust": _entity_trust(run),
        "definitions": TOKEN_DEFINITIONS, "examples": examples,
        "datasets": manifest.get("datasets", {}), "package_versions": manifest.get("package_versions", {}),
        "configs": {"teacher": teacher.get("config"), "distill": manifest.get("distill"),
                    "students": {n: i.get("config") for n, i in manifest.get("students", {}).items()}},
    })


def _entity_trust(run) -> list[dict]:
    """Each student's per-entity stand-in figures from the run's trust record (none for a run without one)."""
    from ...trust import load_trust

    record = load_trust(run)
    return [{"student": name, **{k: entry.get(k) for k in ("score", "target", "coverage", "coverage_ci",
                                                           "agreement_at_coverage", "test_agreement", "test_entities",
                                                           "test_brier", "test_mean_probability", "headline")}}
            for name, entry in (record.entities if record is not None else {}).items()]


def _per_tag_section(report: dict) -> dict | None:
    """The per-tag table (strings, every cell formatted) and the type confusion tables of a report dict."""
    block = report.get("per_tag")
    if not block:
        return None
    frame = per_tag_table(block)
    def cell(column, value):
        if value is None or value != value:
            return "—"
        if column.endswith("entities"):
            return str(int(value))
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    rows = [[cell(c, v) for c, v in zip(frame.columns, row)] for row in frame.itertuples(index=False)]
    confusion = [{"model": name, "reference": c.get("reference"), "columns": c["columns"],
                  "rows": list(zip(c["rows"], c["counts"]))} for name, c in (block.get("confusion") or {}).items()]
    return {"columns": list(frame.columns), "rows": rows, "confusion": confusion}


def render_token_html(report: dict) -> str:
    """The self-contained HTML page of a :func:`build_token_report` dict."""
    types = sorted({t[2:] for t in report.get("label_names", []) if t != "O"})
    from ...intervals import format_interval

    def cell(row, key, pattern):
        interval = format_interval(row.get(f"{key}_ci"))
        return _fmt(row.get(key), pattern) + (f" ({interval})" if interval else "")

    card = [{"model": row["model"], "role": row["role"], "cells": [cell(row, k, p) for k, _, p in _CARD]}
            for row in report.get("model_card", [])]
    margins = [{"student": name, "twin": m.get("twin"), "difference": _fmt(m.get("difference"), "{:+.3f}"),
                "interval": f"[{_fmt(m.get('low'), '{:+.3f}')}, {_fmt(m.get('high'), '{:+.3f}')}] "
                            f"({round(100 * (m.get('level') or 0))}%)", "sentences": m.get("sentences")}
               for name, m in (report.get("margins") or {}).items()]
    block = report.get("explanation_metrics") or {}
    explanations = None
    if block.get("summary"):
        columns = list(block["summary"][0])
        explanations = {"columns": columns, "rows": [[_fmt(r.get(c), "{:.3f}") if isinstance(r.get(c), float)
                                                      else r.get(c) for c in columns] for r in block["summary"]]}
    examples = []
    for ex in report.get("examples", []):
        rows = ([("gold", Markup(entity_html(ex["words"], ex["gold"], types)))] if ex.get("gold") else [])
        rows += [(name, Markup(entity_html(ex["words"], tags, types))) for name, tags in ex["tags"].items()]
        examples.append({"rows": rows})
    page = template_environment().get_template(TEMPLATE).render(
        report=report, run=report.get("run", {}), card=card, card_titles=[t for _, t, _ in _CARD], margins=margins,
        per_type={name: per_type_text(rows) for name, rows in report.get("per_type", {}).items() if rows},
        explanations=explanations, examples=examples, per_tag=_per_tag_section(report),
        entity_trust=[{**e, "coverage_ci": format_interval(e.get("coverage_ci")) or "—",
                       **{k: _fmt(e.get(k), "{:.3f}") for k in ("coverage", "agreement_at_coverage", "test_agreement",
                                                              "test_brier", "test_mean_probability")}}
                      for e in report.get("entity_trust") or []], legend=Markup(entity_legend_html(types)),
        definitions=report.get("definitions", {}),
        provenance=json.dumps({"datasets": report.get("datasets"), "package_versions": report.get("package_versions")},
                              indent=2, ensure_ascii=False),
        configs=json.dumps(report.get("configs", {}), indent=2, ensure_ascii=False))
    return page.rstrip("\n") + "\n"


def write_token_report(run, out_path: str | os.PathLike, n_examples: int = 3) -> tuple[Path, Path]:
    """Write the HTML report to ``out_path`` and its JSON beside it; returns ``(html_path, json_path)``."""
    html_path = Path(out_path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_name(html_path.name + ".html")
    json_path = html_path.with_suffix(".json")
    report = build_token_report(run, n_examples=n_examples)
    atomic_write_bytes(json_path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    atomic_write_bytes(html_path, render_token_html(report).encode("utf-8"))
    for path in (json_path, html_path):
        os.chmod(path, 0o644)
    return html_path, json_path
