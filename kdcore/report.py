"""A self-contained report of a run: one JSON document and one HTML page built from it.

The JSON (:func:`build_report`) holds everything a reviewer needs to check a run without
kd-lens: the model card (task metrics, fidelity, explanation metrics, size, speed) with
the definition of every number, the dataset and weight hashes, package versions, the
configurations, and word-level explanations of a few example texts by the teacher and
every student. The HTML (:func:`render_html`) is rendered from that JSON alone: inline
CSS and inline SVG, no script, no external resource, every piece of text escaped, so the
file opens offline, in a mail client or an archive, and shows exactly what the JSON says.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .utils import atomic_write_bytes, json_default

__all__ = ["REPORT_VERSION", "build_report", "render_html", "write_report", "default_examples"]

REPORT_VERSION = 1
DEFAULT_EXAMPLE_COUNT = 3
# Numbers of the model card, in display order: (key in metrics.json, column title, format).
_CARD_COLUMNS = (
    ("accuracy", "accuracy", "{:.3f}"),
    ("macro_f1", "macro-F1", "{:.3f}"),
    ("fidelity", "fidelity", "{:.3f}"),
    ("mean_tvd", "mean TVD", "{:.3f}"),
    ("parameters", "parameters", "{:,.0f}"),
    ("megabytes", "MB", "{:.2f}"),
    ("texts_per_second", "texts/s", "{:,.0f}"),
    ("latency_ms", "ms/text", "{:.3f}"),
)


# ----------------------------------------------------------------------------- building
def _clean(value: Any) -> Any:
    """A strict-JSON copy: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    try:
        return _clean(json_default(value))
    except TypeError:
        return str(value)


def default_examples(run, count: int = DEFAULT_EXAMPLE_COUNT) -> list[str]:
    """The first ``count`` texts of the run's test split (none when the run stores none)."""
    try:
        texts = run.split("test").texts
    except ValueError:
        return []
    return list(texts[:count])


def _definitions() -> dict[str, str]:
    from .metrics import DEFINITIONS

    return dict(DEFINITIONS)


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


def build_report(run, examples: list[str] | None = None, method: str = "integrated_gradients") -> dict:
    """Everything about ``run`` a reviewer needs, as a JSON-able dict.

    ``examples`` are texts to explain with ``method`` by the teacher and every student
    (default: the first three texts of the run's test split; ``[]`` for none).
    """
    manifest = run.manifest
    metrics = run.metrics or {}
    examples = default_examples(run) if examples is None else [str(t) for t in examples]
    models = metrics.get("models", {})
    card = []
    for name, entry in models.items():
        row = {"model": name, "role": entry.get("role", "")}
        row.update({k: entry.get(k) for k, _, _ in _CARD_COLUMNS})
        for extra in ("kind", "n_nonzero", "speedup_vs_teacher", "smaller_than_teacher", "dev_accuracy"):
            if extra in entry:
                row[extra] = entry[extra]
        card.append(row)
    files = manifest.get("files", {})
    weights = {rel: digest for rel, digest in files.items()
               if rel.endswith((".safetensors", "vocab.json")) or rel == "teacher_logits.npy"}
    teacher = manifest.get("teacher", {})
    explained, notes = _explain_examples(run, examples, method) if examples else ([], [])
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
        "per_class": {name: entry.get("per_class", []) for name, entry in models.items()},
        "confusion_matrices": {name: entry["confusion_matrix"] for name, entry in models.items()
                               if "confusion_matrix" in entry},
        "explanation_metrics": metrics.get("explanations"),
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
    }
    return _clean(report)


# ----------------------------------------------------------------------------- rendering
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2933;line-height:1.45;padding:0 1rem}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d9e2ec;
padding-bottom:.2rem}h3{font-size:1.05rem;margin-top:1.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d9e2ec;padding:.25rem .55rem;text-align:right;vertical-align:top}
th{background:#f0f4f8}td.l,th.l{text-align:left}
code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;word-break:break-all}
.muted{color:#627d98;font-size:.85rem}
.hl{line-height:2.1;font-size:.95rem}.hl span.w{padding:.1rem .15rem;border-radius:3px}
dl dt{font-weight:600;margin-top:.4rem}dl dd{margin-left:1rem}
.legend span{display:inline-block;padding:0 .4rem;margin-right:.4rem;border-radius:3px}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#1f2933}
.grid{display:flex;flex-wrap:wrap;gap:0 2rem}.wide{overflow-x:auto}td:first-child{white-space:nowrap}summary{cursor:pointer;color:#334e68}
"""


def _e(value: Any) -> str:
    """Escaped text of any value (None shows as an em dash)."""
    if value is None:
        return "&mdash;"
    return html.escape(str(value), quote=True)


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&mdash;"
    try:
        return _e(pattern.format(value))
    except (ValueError, TypeError):
        return _e(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML. The first ``left`` columns align left."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bar_chart(card: list[dict], keys: Sequence[tuple[str, str]]) -> str:
    """Inline SVG: grouped horizontal bars (0..1) of ``keys`` for every model."""
    palette = ("#2f6fde", "#e8833a", "#3aa655", "#9b59b6")
    rows = [r for r in card if any(isinstance(r.get(k), (int, float)) for k, _ in keys)]
    if not rows:
        return ""
    bar, gap, label_w, width = 11, 8, 150, 420
    group = bar * len(keys) + gap
    height = group * len(rows) + 30
    parts = [f'<svg width="{label_w + width + 60}" height="{height}" '
             f'role="img" aria-label="model metrics">']
    for i, row in enumerate(rows):
        y0 = i * group + 4
        parts.append(f'<text x="{label_w - 6}" y="{y0 + bar * len(keys) / 2 + 4}" text-anchor="end">'
                     f'{_e(row["model"])}</text>')
        for j, (key, _) in enumerate(keys):
            value = row.get(key)
            if not isinstance(value, (int, float)):
                continue
            w = max(0.0, min(1.0, float(value))) * width
            y = y0 + j * bar
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 1}" fill="{palette[j % 4]}">'
                         f'<title>{_e(row["model"])} {_e(key)} = {float(value):.4f}</title></rect>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 2}">{float(value):.3f}</text>')
    legend_y = len(rows) * group + 20
    x = label_w
    for j, (_, title) in enumerate(keys):
        parts.append(f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{palette[j % 4]}"/>'
                     f'<text x="{x + 14}" y="{legend_y}">{_e(title)}</text>')
        x += 14 + 8 * len(title) + 16
    parts.append("</svg>")
    return "".join(parts)


def _color(score: float, scale: float) -> str:
    """Red for positive (towards the target class), blue for negative; alpha by |score|."""
    if not scale or not math.isfinite(score):
        return "transparent"
    alpha = min(1.0, abs(score) / scale) * 0.75
    return f"rgba(214,39,40,{alpha:.3f})" if score > 0 else f"rgba(31,119,180,{alpha:.3f})"


def highlight_html(text: str, spans: Sequence[Sequence[int]], scores: Sequence[float | None]) -> str:
    """The text with each word's background coloured by its score; every character escaped.

    Text between words is kept (escaped) so the original reads unchanged; colours are
    scaled by the largest |score| of this row.
    """
    finite = [abs(s) for s in scores if s is not None and math.isfinite(s)]
    scale = max(finite) if finite else 0.0
    out, cursor = [], 0
    for (start, end), score in zip(spans, scores):
        start, end = int(start), int(end)
        if start < cursor:  # overlapping spans never happen for split_words; be safe anyway
            continue
        out.append(_e(text[cursor:start]) if start > cursor else "")
        value = float(score) if score is not None else float("nan")
        out.append(f'<span class="w" style="background:{_color(value, scale)}" '
                   f'title="{_e(f"{value:+.4g}")}">{_e(text[start:end])}</span>')
        cursor = end
    out.append(_e(text[cursor:]))
    return "".join(out)


def _section_card(report: dict) -> str:
    card = report.get("model_card", [])
    headers = ["model", "role"] + [title for _, title, _ in _CARD_COLUMNS]
    rows = [[_e(r.get("model")), _e(r.get("role"))] + [_fmt(r.get(k), f) for k, _, f in _CARD_COLUMNS] for r in card]
    chart = _bar_chart(card, (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("fidelity", "fidelity")))
    return ("<h2>Model card</h2>"
            f'<p class="muted">Test set: {_e(report.get("test_size"))} texts. Distilled students learn from the '
            "teacher's outputs; label-trained twins (<code>-labels</code>) learn from the gold labels only.</p>"
            + _table(headers, rows, left=2) + chart)


def _section_explanation_metrics(report: dict) -> str:
    block = report.get("explanation_metrics")
    if not block or not block.get("summary"):
        return ("<h2>Explanation agreement and faithfulness</h2><p class=\"muted\">Not computed for this run "
                "(<code>python -m kdcore evaluate --run RUN --explain-sample 60</code> adds them).</p>")
    summary = block["summary"]
    columns = list(dict.fromkeys(k for row in summary for k in row))
    metrics = [c[: -len("_mean")] for c in columns if c.endswith("_mean")]
    labels = [c for c in columns if not c.endswith(("_mean", "_std"))]

    def cell(row: dict, metric: str) -> str:
        mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
        if mean is None:
            return "&mdash;"
        return _fmt(mean, "{:.3f}") + (f" &plusmn; {_fmt(std, '{:.3f}')}" if isinstance(std, (int, float)) else "")

    rows = [[_e(row.get(c)) for c in labels] + [cell(row, m) for m in metrics] for row in summary]
    ordered = labels + metrics
    left = max(1, len(labels) - 1 if "n_texts" in labels else len(labels))
    return ("<h2>Explanation agreement and faithfulness</h2>"
            f'<p class="muted">Computed on {_e(block.get("sample_size"))} test texts with '
            f'{_e(", ".join(block.get("methods", [])))}; mean &plusmn; standard deviation over the texts.</p>'
            + '<div class="wide">' + _table([_e(c) for c in ordered], rows, left=left) + "</div>")


def _section_confusion(report: dict) -> str:
    labels = report.get("label_names", [])
    parts = ["<h2>Confusion matrices</h2><p class=\"muted\">Rows: gold class; columns: predicted class.</p>",
             '<div class="grid">']
    for name, matrix in report.get("confusion_matrices", {}).items():
        rows = [[_e(labels[i] if i < len(labels) else i)] + [_e(v) for v in row] for i, row in enumerate(matrix)]
        parts.append(f"<div><h3>{_e(name)}</h3>" + _table(["gold \\ predicted"] + [_e(l) for l in labels], rows)
                     + "</div>")
    parts.append("</div>")
    return "".join(parts)


def _section_examples(report: dict) -> str:
    examples = report.get("examples", [])
    if not examples:
        return ""
    parts = ["<h2>Example explanations</h2>",
             '<p class="legend muted"><span style="background:rgba(214,39,40,.6)">towards the class</span>'
             '<span style="background:rgba(31,119,180,.6)">against it</span> Each row is scaled by its own largest '
             "|score|; hover a word for its raw score.</p>"]
    for n, example in enumerate(examples, 1):
        explanations = example.get("explanations", {})
        first = next(iter(explanations.values()), None)
        target = ""
        if first:
            names = first.get("label_names") or []
            t = first.get("target")
            target = names[t] if isinstance(t, int) and t < len(names) else t
        parts.append(f"<h3>Example {n} &mdash; {_e(example.get('method'))}, class {_e(target)}</h3>")
        rows = []
        for name, expl in explanations.items():
            probs = expl.get("probs") or []
            t = expl.get("target")
            p = probs[t] if isinstance(t, int) and t < len(probs) and probs[t] is not None else None
            rows.append([_e(name), _fmt(p, "{:.3f}"),
                         f'<div class="hl">{highlight_html(expl["text"], expl["spans"], expl["scores"])}</div>'])
        parts.append(_table(["model", "p(class)", "words"], rows, left=3))
    return "".join(parts)


def _section_provenance(report: dict) -> str:
    teacher = report.get("teacher", {})
    parts = ["<h2>Provenance</h2>", "<h3>Teacher</h3>",
             _table(["", ""], [["source", _e(teacher.get("source"))],
                               ["weights sha256", f'<span class="hash">{_e(teacher.get("fingerprint"))}</span>'],
                               ["parameters", _fmt(teacher.get("parameters"), "{:,.0f}")]], left=2)]
    datasets = report.get("datasets", {})
    rows = [[_e(split), _e(info.get("size")), f'<span class="hash">{_e(info.get("hash"))}</span>']
            for split, info in datasets.items()]
    transfer = report.get("transfer_set", {})
    if transfer:
        rows.append([_e("transfer set"), _e(transfer.get("size", transfer.get("texts"))),
                     f'<span class="hash">{_e(transfer.get("hash"))}</span>'])
    parts += ["<h3>Data</h3>", _table(["split", "texts", "sha256"], rows, left=3)]
    weights = report.get("weight_hashes", {})
    parts += ["<h3>Weights</h3>",
              _table(["file", "sha256"], [[_e(k), f'<span class="hash">{_e(v)}</span>'] for k, v in weights.items()],
                     left=2)]
    versions = report.get("package_versions", {})
    parts += ["<h3>Package versions</h3>", _table(["package", "version"],
                                                   [[_e(k), _e(v)] for k, v in versions.items()], left=2)]
    parts.append("<h3>Configurations</h3><details><summary>teacher, students and distillation settings</summary>")
    parts.append(f"<pre><code>{_e(json.dumps(report.get('configs', {}), indent=2, ensure_ascii=False))}</code></pre>"
                 "</details>")
    return "".join(parts)


def _section_definitions(report: dict) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in report.get("definitions", {}).items())
    return f"<h2>Definitions</h2><dl>{items}</dl>"


def render_html(report: dict) -> str:
    """A self-contained HTML page of a :func:`build_report` dict (no script, no external resource)."""
    run = report.get("run", {})
    notes = report.get("notes", [])
    notes_html = ("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>") if notes else ""
    body = "".join([
        f"<h1>kd-lens report: {_e(run.get('name'))}</h1>",
        f'<p class="muted">Run created {_e(run.get("created_at"))} on {_e(run.get("device"))}; report generated '
        f'{_e(report.get("generated_at"))}. Classes: {_e(", ".join(map(str, report.get("label_names", []))))}.</p>',
        _section_card(report),
        _section_explanation_metrics(report),
        _section_confusion(report),
        _section_examples(report),
        notes_html,
        _section_provenance(report),
        _section_definitions(report),
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            # No script may run in a report, and nothing may be fetched from elsewhere.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            f"<title>kd-lens report: {_e(run.get('name'))}</title><style>{_CSS}</style></head>"
            f"<body>{body}</body></html>\n")


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
