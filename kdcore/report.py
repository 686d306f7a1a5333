"""A self-contained report of a run: one JSON document and one HTML page built from it.

The JSON (:func:`build_report`) holds everything a reviewer needs to check a run without
kd-lens: the model card (task metrics, fidelity, explanation metrics, size, speed) with
the definition of every number, the dataset and weight hashes, package versions, the
configurations, and word-level explanations of a few example texts by the teacher and
every student. The HTML (:func:`render_html`) is rendered from that JSON alone: inline
CSS and inline SVG, no script, no external resource, every piece of text escaped, so the
file opens offline, in a mail client or an archive, and shows exactly what the JSON says.
The page's markup is the Jinja2 template ``kdcore/templates/report.html.j2`` (autoescape on);
the word highlights come from :mod:`kdcore.visualize`, as in the dashboard.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import jinja2
import numpy as np
from markupsafe import Markup

from .audit import load_audit
from .audit.report import audit_report
from .explanation import Explanation
from .intervals import format_interval
from .metrics import NO_GOLD_LABELS
from .tasks import task_of
from .utils import atomic_write_bytes, strict_json
from .visualize import highlight_html, legend_html

__all__ = ["REPORT_VERSION", "build_report", "render_html", "write_report", "default_examples", "template_environment"]

REPORT_VERSION = 1
DEFAULT_EXAMPLE_COUNT = 3
# Numbers of the model card, in display order: (key in metrics.json, column title, format).
_CARD_COLUMNS = (
    ("accuracy", "accuracy", "{:.3f}"),
    ("accuracy_ci", "95% CI", "{}"),
    ("macro_f1", "macro-F1", "{:.3f}"),
    ("macro_f1_ci", "95% CI", "{}"),
    ("fidelity", "fidelity", "{:.3f}"),
    ("fidelity_ci", "95% CI", "{}"),
    ("mean_tvd", "mean TVD", "{:.3f}"),
    ("parameters", "parameters", "{:,.0f}"),
    ("megabytes", "MB", "{:.2f}"),
    ("texts_per_second", "texts/s", "{:,.0f}"),
    ("latency_ms", "ms/text", "{:.3f}"),
)


# ----------------------------------------------------------------------------- building


def default_examples(run, count: int = DEFAULT_EXAMPLE_COUNT) -> list[str]:
    """The first ``count`` texts of the run's test split (none when the run stores none)."""
    try:
        texts = run.split("test").texts
    except ValueError:
        return []
    return list(texts[:count])


def _definitions() -> dict[str, str]:
    from .explain_metrics import ALL_DEFINITIONS

    return dict(ALL_DEFINITIONS)


def _explain_examples(run, examples: Sequence[str], method: str) -> tuple[list[dict], list[str]]:
    """Word-level explanations of each example by every model, for the teacher's class."""
    notes: list[str] = []
    try:
        from .attribution import explain_many
    except ImportError as err:  # pragma: no cover - the module ships with kd-lens
        return [], [f"Example explanations are missing: {err}."]
    models = run.models()
    out = []
    for text in examples:
        explanations = explain_many(models, text, method=method)
        out.append({
            "text": text,
            "method": method,
            "explanations": {name: expl.to_dict() for name, expl in explanations.items()},
        })
        for name, expl in explanations.items():
            notes.extend(f"{name}: {w}" for w in expl.warnings)
    return out, notes


def _model_card(models: dict, no_gold: bool) -> tuple[list[dict], list[dict]]:
    """The model card's rows (one a model) and each distilled student's fidelity margin over its twin."""
    card, margins = [], []
    for name, entry in models.items():
        row = {"model": name, "role": entry.get("role", "")}
        row.update({k: entry.get(k) for k, _, _ in _CARD_COLUMNS})
        for key in ("accuracy_ci", "macro_f1_ci", "fidelity_ci"):
            row[key] = format_interval(entry.get(key)) or None
        if no_gold:
            row.update(accuracy=NO_GOLD_LABELS, macro_f1=NO_GOLD_LABELS)
        margin = entry.get("fidelity_over_twin")
        if margin:
            margins.append({"student": name, "twin": margin.get("twin"), "difference": margin.get("difference"),
                            "ci": format_interval(margin.get("ci")) or None})
        for extra in ("kind", "n_nonzero", "speedup_vs_teacher", "smaller_than_teacher", "dev_accuracy"):
            if extra in entry:
                row[extra] = entry[extra]
        card.append(row)
    return card, margins


def build_report(run, examples: list[str] | None = None, method: str = "integrated_gradients") -> dict:
    """Everything about ``run`` a reviewer needs, as a JSON-able dict.

    ``examples`` are texts to explain with ``method`` by the teacher and every student
    (default: the first three texts of the run's test split; ``[]`` for none).
    """
    if task_of(run).unit != "text":  # this report explains texts
        raise ValueError(f"Run {run.name!r} is a {run.task} run; its report is its task's "
                         "(kdcore.tasks.task_of(run).write_report; python -m kdcore report picks it).")
    manifest = run.manifest
    metrics = run.metrics or {}
    examples = default_examples(run) if examples is None else [str(t) for t in examples]
    models = metrics.get("models", {})
    no_gold = metrics.get("gold_labels") is False
    card, margins = _model_card(models, no_gold)
    files = manifest.get("files", {})
    weights = {rel: digest for rel, digest in files.items()
               if rel.endswith((".safetensors", "vocab.json")) or rel == "teacher_logits.npy"}
    teacher = manifest.get("teacher", {})
    explained, notes = _explain_examples(run, examples, method) if examples else ([], [])
    from .trust import load_trust

    trust = load_trust(run)
    definitions = _definitions()
    report = {
        "report_version": REPORT_VERSION,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run": {
            "name": run.name,
            "created_at": manifest.get("created_at"),
            "format_version": manifest.get("format_version"),
            "device": manifest.get("device"),
        },
        "label_names": list(run.label_names),
        "teacher": {
            "name": teacher.get("name"),
            "source": teacher.get("source"),
            "fingerprint": teacher.get("fingerprint"),
            "parameters": teacher.get("parameters"),
        },
        "model_card": card,
        "gold_labels": not no_gold,
        "twin_margins": margins,
        "per_class": {name: entry.get("per_class", []) for name, entry in models.items()},
        "confusion_matrices": {name: entry["confusion_matrix"] for name, entry in models.items()
                               if "confusion_matrix" in entry},
        "explanation_metrics": metrics.get("explanations"),
        "trust": trust.to_dict() if trust is not None else None,
        "definitions": definitions,
        "test_size": metrics.get("test_size"),
        "transfer_set": {**manifest.get("transfer_set", {}), **metrics.get("transfer_set", {})},
        "datasets": manifest.get("datasets", {}),
        "weight_hashes": weights,
        "package_versions": manifest.get("package_versions", {}),
        "configs": {
            "teacher": teacher.get("config"),
            "students": {name: info.get("config") for name, info in manifest.get("students", {}).items()},
            "distill": manifest.get("distill"),
        },
        "timings": metrics.get("timings", {}),
        "examples": explained,
        "notes": notes,
        "findings": metrics.get("findings", []),
    }
    report["audit"] = audit_report(strict_json(report), load_audit(run))
    return strict_json(report)


# ----------------------------------------------------------------------------- rendering
_TEMPLATES = Path(__file__).parent / "templates"
_PALETTE = ("#2f6fde", "#e8833a", "#3aa655", "#9b59b6")
_CHART_KEYS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("fidelity", "fidelity"))
_MDASH = Markup("&mdash;")


def _text(value: Any) -> Any:
    """Template filter: a missing value (None or undefined) shows as an em dash, anything else as text."""
    if value is None or isinstance(value, jinja2.Undefined):
        return _MDASH
    return value if isinstance(value, Markup) else str(value)


def _fmt(value: Any, pattern: str) -> Any:
    """Template filter: ``pattern.format(value)``; an em dash for a missing or non-finite number."""
    if value is None or isinstance(value, jinja2.Undefined) or (isinstance(value, float) and not math.isfinite(value)):
        return _MDASH
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


@functools.lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The one Jinja2 environment of every report template (kdcore/templates)."""
    # autoescape on for every template: user text (reviews, names, notes) is escaped by default,
    # and only kd-lens' own Markup (word highlights, em dashes) goes through unescaped.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined)
    env.filters.update(text=_text, fmt=_fmt)
    return env


def _bar_chart(card: list[dict], keys: Sequence[tuple[str, str]] = _CHART_KEYS) -> dict | None:
    """Geometry of the model card's bar chart (grouped horizontal bars, 0..1), drawn by the template."""
    rows = [r for r in card if any(isinstance(r.get(k), (int, float)) for k, _ in keys)]
    if not rows:
        return None
    bar, gap, label_w, width = 11, 8, 150, 420
    group = bar * len(keys) + gap
    chart_rows = []
    for i, row in enumerate(rows):
        y0 = i * group + 4
        bars = [{"key": key, "value": float(row[key]), "color": _PALETTE[j % len(_PALETTE)], "y": y0 + j * bar,
                 "text_y": y0 + j * bar + bar - 2, "width": max(0.0, min(1.0, float(row[key]))) * width}
                for j, (key, _) in enumerate(keys) if isinstance(row.get(key), (int, float))]
        chart_rows.append({"model": row["model"], "label_y": y0 + bar * len(keys) / 2 + 4, "bars": bars})
    legend, x = [], label_w
    for j, (_, title) in enumerate(keys):
        legend.append({"x": x, "title": title, "color": _PALETTE[j % len(_PALETTE)]})
        x += 14 + 8 * len(title) + 16  # about 8 px a character at 11 px type
    return {"width": label_w + width + 60, "height": group * len(rows) + 30, "label_x": label_w - 6,
            "bar_x": label_w, "bar_height": bar - 1, "rows": chart_rows, "legend": legend,
            "legend_y": len(rows) * group + 20}


def _explanation_metrics_table(block: dict | None) -> dict | None:
    """Label columns, metric names and rows of the summary table (None when not computed)."""
    if not block or not block.get("summary"):
        return None
    summary = block["summary"]
    columns = list(dict.fromkeys(k for row in summary for k in row))
    labels = [c for c in columns if not c.endswith(("_mean", "_std", "_ci_low", "_ci_high"))]
    return {
        "sample_size": block.get("sample_size"),
        "methods": block.get("methods", []),
        "labels": labels,
        "metrics": [c[: -len("_mean")] for c in columns if c.endswith("_mean")],
        "rows": summary,
        # numbers (n_texts) align right like the metrics; the names before them align left
        "left": max(1, len(labels) - 1 if "n_texts" in labels else len(labels)),
    }


def _trust_chart(block: dict | None) -> dict | None:
    """Each student's headline and numbers, and the geometry of the fidelity-coverage lines (inline SVG)."""
    from .intervals import format_interval
    from .trust import StudentTrust

    if not block or not block.get("students"):
        return None
    width, height, left, top = 420, 220, 44, 10
    records = [StudentTrust.from_dict(entry) for entry in block["students"].values()]
    low = min(0.5, *(float(r.curve.fidelity.min()) for r in records if r.curve.covered))
    low = math.floor(low * 10) / 10

    def y_of(fidelity: float) -> float:
        return top + (1 - (fidelity - low) / (1 - low)) * height

    lines = [{"name": r.name, "color": _PALETTE[i % len(_PALETTE)],
              "points": " ".join(f"{left + c * width:.1f},{y_of(f):.1f}" for c, f in zip(r.curve.coverage,
                                                                                         r.curve.fidelity))}
             for i, r in enumerate(records)]
    target = float(block.get("target", 0.95))
    ticks = [{"y": y_of(v), "label": f"{v:.1f}"} for v in np.arange(low, 1.0001, 0.1)]
    return {"width": left + width + 20, "height": top + height + 50, "left": left, "top": top,
            "right": left + width, "bottom": top + height, "lines": lines, "ticks": ticks,
            "target_y": y_of(target), "target": target,
            "legend": [{"x": left + 110 * i, "name": line["name"], "color": line["color"]}
                       for i, line in enumerate(lines)],
            "rows": [{"student": r.name, "headline": r.headline(), "score": r.score, "auroc": r.chosen_auroc,
                      "coverage": r.coverage, "coverage_se": r.coverage_se,
                      "coverage_ci": format_interval(r.coverage_ci) or None, "fidelity": r.fidelity_at_coverage,
                      "test_fidelity": r.test_fidelity, "threshold_coverage": r.threshold_coverage,
                      "threshold_fidelity": r.threshold_fidelity, "calibration": r.calibrator.method}
                     for r in records],
            "dev_size": block.get("dev_size"), "test_size": block.get("test_size")}


def _example_explanation(name: str, data: dict) -> Explanation:
    """An Explanation record from the report's JSON (NaN scores were stored as null)."""
    return Explanation(
        text=data["text"], words=list(data.get("words") or []), spans=[tuple(s) for s in data["spans"]],
        scores=[np.nan if s is None else s for s in data["scores"]], target=int(data.get("target") or 0),
        probs=[np.nan if p is None else p for p in data.get("probs") or []], method=data.get("method", ""),
        model_name=data.get("model_name", name), label_names=list(data.get("label_names") or []),
        warnings=list(data.get("warnings") or []))


def _examples(report: dict) -> list[dict]:
    """Each example's method, explained class and rows (model, p(class), highlighted words)."""
    out = []
    for example in report.get("examples", []):
        explanations = example.get("explanations", {})
        first = next(iter(explanations.values()), None)
        target = ""
        if first:
            names = first.get("label_names") or []
            t = first.get("target")
            target = names[t] if isinstance(t, int) and t < len(names) else t
        rows = []
        for name, data in explanations.items():
            probs = data.get("probs") or []
            t = data.get("target")
            p = probs[t] if isinstance(t, int) and t < len(probs) and probs[t] is not None else None
            # highlight_html escapes every character of the text itself; Markup keeps Jinja from escaping twice.
            highlight = Markup(highlight_html(_example_explanation(name, data)))
            rows.append({"model": name, "probability": p, "highlight": highlight})
        out.append({"method": example.get("method"), "target": target, "rows": rows})
    return out


def render_html(report: dict) -> str:
    """A self-contained HTML page of a :func:`build_report` dict (no script, no external resource).

    The page is ``kdcore/templates/report.html.j2`` rendered with autoescape on: inline CSS,
    inline SVG, every piece of text escaped.
    """
    card = report.get("model_card", [])
    page = template_environment().get_template("report.html.j2").render(
        report=report,
        run=report.get("run", {}),
        label_names=[str(n) for n in report.get("label_names", [])],
        card=card,
        card_columns=_CARD_COLUMNS,
        card_titles=[title for _, title, _ in _CARD_COLUMNS],
        chart=_bar_chart(card),
        explanation_metrics=_explanation_metrics_table(report.get("explanation_metrics")),
        trust=_trust_chart(report.get("trust")),
        examples=_examples(report),
        legend=Markup(legend_html()),
        configs_json=json.dumps(report.get("configs", {}), indent=2, ensure_ascii=False),
    )
    return page.rstrip("\n") + "\n"


def write_report(run, out_path: str | os.PathLike, examples: list[str] | None = None,
                 method: str = "integrated_gradients") -> tuple[Path, Path]:
    """Write the HTML report to ``out_path`` and its JSON beside it (same name, ``.json``).

    Both files are written atomically. Returns ``(html_path, json_path)``.
    """
    html_path = Path(out_path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_name(html_path.name + ".html")
    json_path = html_path.with_suffix(".json")
    report = build_report(run, examples=examples, method=method)
    atomic_write_bytes(json_path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    atomic_write_bytes(html_path, render_html(report).encode("utf-8"))
    for path in (json_path, html_path):
        os.chmod(path, 0o644)  # a report is meant to be shared; temporary files are created owner-only
    return html_path, json_path
