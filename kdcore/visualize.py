"""Word-attribution highlights as escaped HTML: the one renderer the report and dashboard share.

Display only, kept apart from the algorithms (as Captum keeps ``visualization.py``): pure
functions from :class:`~kdcore.explanation.Explanation` records to HTML strings with inline
styles, so the same markup works inside Streamlit's ``st.html`` and in the offline report.

The palette is one diverging pair: red (:data:`POSITIVE`) for words that push the model
towards the explained class, blue (:data:`NEGATIVE`) for words that push away from it;
the opacity is ``|score| / scale`` times :data:`MAX_ALPHA`, clipped at full. ``scale`` is
named at every call: by default the explanation's own largest |score|
(:func:`row_scale`: patterns comparable across models, magnitudes not), or one shared
number passed in (raw magnitudes comparable). Scores are never changed, only coloured;
each word's raw score is in its ``title`` tooltip.

Every piece of user text (the text, words, model and class names, warnings) goes through
``html.escape``; the only markup is ours, so a text holding ``<script>`` or an
``onerror=`` attribute shows as the text it is.
"""

from __future__ import annotations

import html
import math
from typing import Mapping

import numpy as np

from .explanation import Explanation

__all__ = ["POSITIVE", "NEGATIVE", "MAX_ALPHA", "row_scale", "word_background", "highlight_html",
           "warnings_html", "legend_html", "highlight_table_html"]

POSITIVE = (214, 39, 40)   # red: pushes towards the explained class
NEGATIVE = (31, 119, 180)  # blue: pushes away from it
MAX_ALPHA = 0.8            # full-scale opacity: strong enough to see, light enough to read the word
_LEGEND_ALPHA = 0.6


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _rgba(rgb: tuple[int, int, int], alpha: float) -> str:
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.3f})"


def row_scale(scores) -> float:
    """Largest finite |score| of one explanation (0 when there is none): its full-colour score."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.abs(scores[np.isfinite(scores)])
    return float(finite.max()) if finite.size else 0.0


def word_background(score: float, scale: float) -> str:
    """CSS background of a word with ``score`` when ``scale`` is the full-colour |score|."""
    if not scale or not math.isfinite(score) or score == 0:
        return "transparent"
    alpha = min(1.0, abs(score) / scale) * MAX_ALPHA
    return _rgba(POSITIVE if score > 0 else NEGATIVE, alpha)


def _score_title(word: str, score: float) -> str:
    return f"{word}: {score:+.4g}" if math.isfinite(score) else f"{word}: no score"


def warnings_html(explanation: Explanation) -> str:
    """The explanation's warnings (e.g. explained window by window) as a small notice; "" if none."""
    if not explanation.warnings:
        return ""
    items = "".join(f"<li>{_escape(w)}</li>" for w in explanation.warnings)
    return ('<div class="kdl-notice" style="font-size:.8rem;color:#8a5a00;margin-top:.2rem">'
            f'Note ({_escape(explanation.model_name)}):<ul style="margin:0;padding-left:1.2rem">{items}</ul></div>')


def highlight_html(explanation: Explanation, scale: float | None = None, show_warnings: bool = True) -> str:
    """The explained text with each word's background coloured by its signed score.

    ``scale``: the |score| drawn at full colour; ``None`` for this explanation's own
    largest |score| (:func:`row_scale`). The characters between words are kept as in the
    text (escaped), so the original reads unchanged; each word's ``title`` holds its raw
    score. With ``show_warnings`` the explanation's warnings follow as a notice.
    """
    text = explanation.text
    scores = np.asarray(explanation.scores, dtype=np.float64)
    scale = row_scale(scores) if scale is None else float(scale)
    parts, cursor = [], 0
    for (start, end), word, score in zip(explanation.spans, explanation.words, scores):
        if start < cursor:  # split_words never overlaps spans; skip rather than repeat characters
            continue
        if start > cursor:
            parts.append(_escape(text[cursor:start]))
        parts.append(
            f'<span class="kdl-word" style="background:{word_background(score, scale)};padding:1px 2px;'
            f'border-radius:3px" title="{_escape(_score_title(word, score))}">{_escape(text[start:end])}</span>'
        )
        cursor = end
    parts.append(_escape(text[cursor:]))
    return "".join(parts) + (warnings_html(explanation) if show_warnings else "")


def legend_html(target_name: str | None = None) -> str:
    """Two swatches naming the palette: towards the class (red) and against it (blue)."""
    towards = f"towards {target_name}" if target_name is not None else "towards the class"
    against = f"against {target_name}" if target_name is not None else "against it"
    style = "padding:1px 6px;border-radius:3px"
    return (f'<span class="kdl-legend" style="background:{_rgba(POSITIVE, _LEGEND_ALPHA)};{style}">'
            f"{_escape(towards)}</span> "
            f'<span class="kdl-legend" style="background:{_rgba(NEGATIVE, _LEGEND_ALPHA)};{style}">'
            f"{_escape(against)}</span>")


def _target_probability(explanation: Explanation) -> float:
    probs = np.asarray(explanation.probs, dtype=np.float64)
    return float(probs[explanation.target]) if 0 <= explanation.target < probs.size else float("nan")


def highlight_table_html(explanations: Mapping[str, Explanation], shared_scale: bool = False,
                         show_warnings: bool = False) -> str:
    """One row per model: its name, p(explained class) and the highlighted text.

    With ``shared_scale`` every row is coloured on one scale, the largest |score| over all
    models (raw magnitudes comparable across models); otherwise each row on its own.
    """
    scale = max((row_scale(e.scores) for e in explanations.values()), default=0.0) if shared_scale else None
    cell = "padding:6px 10px;vertical-align:top"
    rows = []
    for name, expl in explanations.items():
        rows.append(
            '<tr class="kdl-row">'
            f'<td style="{cell};font-weight:600;white-space:nowrap;width:1%">{_escape(name)}</td>'
            f'<td style="{cell};font-variant-numeric:tabular-nums;width:1%">{_target_probability(expl):.3f}</td>'
            f'<td class="kdl-text" style="padding:6px 10px;line-height:1.9">'
            f"{highlight_html(expl, scale, show_warnings)}</td></tr>"
        )
    target = next(iter(explanations.values())).target_name if explanations else ""
    return (
        '<table class="kdl-heatmap" style="border-collapse:collapse;width:100%;font-size:0.95rem">'
        '<thead><tr style="text-align:left;border-bottom:1px solid #ddd">'
        f'<th style="padding:4px 10px">model</th><th style="padding:4px 10px">p({_escape(target)})</th>'
        '<th style="padding:4px 10px">words</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
