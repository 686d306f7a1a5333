"""Word-level attribution highlights as escaped HTML (pure functions: Explanation -> str).

Every character of user text goes through ``html.escape``; the only markup is ours
(``span``/``table`` with inline styles), so a review that contains ``<script>`` or an
``onerror=`` attribute is shown as the text it is.
"""

from __future__ import annotations

import html
import math
from typing import Mapping

import numpy as np

__all__ = ["POSITIVE", "NEGATIVE", "row_scale", "highlight", "highlight_table", "legend"]

POSITIVE = (214, 39, 40)   # red: pushes towards the target class
NEGATIVE = (31, 119, 180)  # blue: pushes away from it
_MAX_ALPHA = 0.8


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def row_scale(scores) -> float:
    """Largest |score| of a row (0 when there is none): the full-colour score of that row."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.abs(scores[np.isfinite(scores)])
    return float(finite.max()) if finite.size else 0.0


def _background(score: float, scale: float) -> str:
    if not scale or not math.isfinite(score) or score == 0:
        return "transparent"
    red, green, blue = POSITIVE if score > 0 else NEGATIVE
    alpha = min(1.0, abs(score) / scale) * _MAX_ALPHA
    return f"rgba({red},{green},{blue},{alpha:.3f})"


def highlight(explanation, scale: float | None = None) -> str:
    """The explained text with each word coloured by its score (scaled by ``scale``,
    default: the row's largest |score|); text between words is kept, escaped."""
    text = explanation.text
    scores = np.asarray(explanation.scores, dtype=np.float64)
    scale = row_scale(scores) if scale is None else float(scale)
    parts, cursor = [], 0
    for (start, end), word, score in zip(explanation.spans, explanation.words, scores):
        if start < cursor:
            continue
        if start > cursor:
            parts.append(_escape(text[cursor:start]))
        parts.append(
            f'<span class="kdl-word" style="background:{_background(score, scale)};padding:1px 2px;'
            f'border-radius:3px" title="{_escape(word)}: {score:+.4g}">{_escape(text[start:end])}</span>'
        )
        cursor = end
    parts.append(_escape(text[cursor:]))
    return "".join(parts)


def highlight_table(explanations: Mapping[str, object], shared_scale: bool = False) -> str:
    """One row per model: name, p(target class), the highlighted text.

    With ``shared_scale`` every row uses the largest |score| over all models (raw
    magnitudes comparable across models); otherwise each row uses its own (patterns
    comparable, magnitudes not).
    """
    scale = max((row_scale(e.scores) for e in explanations.values()), default=0.0) if shared_scale else None
    rows = []
    for name, expl in explanations.items():
        probs = np.asarray(expl.probs, dtype=np.float64)
        p = probs[expl.target] if 0 <= expl.target < probs.size else float("nan")
        rows.append(
            '<tr class="kdl-row">'
            '<td style="padding:6px 10px;font-weight:600;white-space:nowrap;vertical-align:top;width:1%">'
            f"{_escape(name)}</td>"
            f'<td style="padding:6px 10px;vertical-align:top;font-variant-numeric:tabular-nums;width:1%">{p:.3f}</td>'
            f'<td class="kdl-text" style="padding:6px 10px;line-height:1.9">{highlight(expl, scale)}</td>'
            "</tr>"
        )
    target = next(iter(explanations.values())).target_name if explanations else ""
    return (
        '<table class="kdl-heatmap" style="border-collapse:collapse;width:100%;font-size:0.95rem">'
        '<thead><tr style="text-align:left;border-bottom:1px solid #ddd">'
        f'<th style="padding:4px 10px">model</th><th style="padding:4px 10px">p({_escape(target)})</th>'
        '<th style="padding:4px 10px">words</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def legend(target_name: str) -> str:
    red = "rgba({},{},{},0.6)".format(*POSITIVE)
    blue = "rgba({},{},{},0.6)".format(*NEGATIVE)
    return (
        f'<span style="background:{red};padding:1px 6px;border-radius:3px">towards {_escape(target_name)}</span> '
        f'<span style="background:{blue};padding:1px 6px;border-radius:3px">against {_escape(target_name)}</span>'
    )
