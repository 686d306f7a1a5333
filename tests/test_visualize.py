"""kdcore.visualize: the one word-highlight renderer, on hand-made explanations."""

from __future__ import annotations

import html
import re

import numpy as np

from kdcore import visualize as V
from kdcore.explanation import Explanation

HOSTILE = 'good <script>alert("x")</script>  it\'s {{ 7*7 }} bad'
# words and their spans in HOSTILE (two spaces before "it's" on purpose: gaps are kept)
WORDS = [(w, HOSTILE.index(w), HOSTILE.index(w) + len(w)) for w in ("good", "script", "it's", "bad")]


def _expl(text=HOSTILE, scores=(1.0, -0.5, 0.0, 0.25), warnings=()):
    return Explanation(text=text, words=[w for w, _, _ in WORDS], spans=[(s, e) for _, s, e in WORDS],
                       scores=np.array(scores), target=1, probs=np.array([0.3, 0.7]), method="m",
                       model_name="<m>", label_names=["neg", "pos"], warnings=list(warnings))


def _visible(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_text_is_escaped_and_reads_unchanged():
    out = V.highlight_html(_expl())
    assert "<script" not in out and "</script" not in out and "&lt;/" in out and "&gt;alert(" in out
    assert "&quot;x&quot;" in out and "it&#x27;s" in out
    assert _visible(out) == HOSTILE  # every character, gaps included, in order
    assert "{{ 7*7 }}" in out  # shown as typed, never evaluated


def test_colours_follow_sign_and_named_scale():
    out = V.highlight_html(_expl())
    # own scale: the largest |score| (1.0) is full colour
    assert "rgba(214,39,40,0.800)" in out  # +1.0
    assert "rgba(31,119,180,0.400)" in out  # -0.5
    assert "rgba(214,39,40,0.200)" in out  # +0.25
    assert "background:transparent" in out  # 0.0
    # a shared scale of 2.0: everything half as strong; scores themselves untouched
    shared = V.highlight_html(_expl(), scale=2.0)
    assert "rgba(214,39,40,0.400)" in shared and "rgba(31,119,180,0.200)" in shared
    assert 'title="good: +1"' in shared and 'title="script: -0.5"' in shared
    assert V.row_scale([np.nan, -3.0, 2.0]) == 3.0 and V.row_scale([]) == 0.0
    assert V.word_background(5.0, 0.0) == "transparent"
    assert V.word_background(float("nan"), 1.0) == "transparent"


def test_warnings_notice_is_optional_and_escaped():
    expl = _expl(warnings=["explained in 2 windows <b>"])
    out = V.highlight_html(expl)
    assert "kdl-notice" in out and "explained in 2 windows &lt;b&gt;" in out and "&lt;m&gt;" in out
    assert "kdl-notice" not in V.highlight_html(expl, show_warnings=False)
    assert V.warnings_html(_expl()) == ""


def test_legend_and_table():
    legend = V.legend_html('<"pos">')
    assert "towards &lt;&quot;pos&quot;&gt;" in legend and "against &lt;&quot;pos&quot;&gt;" in legend
    assert "towards the class" in V.legend_html()
    weak = _expl(scores=(0.1, 0.0, 0.0, 0.0))
    table = V.highlight_table_html({"<i>a</i>": _expl(), "b": weak}, shared_scale=True)
    assert table.count('class="kdl-row"') == 2 and "&lt;i&gt;a&lt;/i&gt;" in table and "0.700" in table
    assert "rgba(214,39,40,0.080)" in table  # 0.1 on the shared scale 1.0
    assert "rgba(214,39,40,0.800)" in V.highlight_table_html({"b": weak})  # own scale: full colour
