"""Strings from data, made safe where the dashboard draws them: the one place that escapes.

Texts, class and tag names, column, file, feature, model and run names all come from files a user (or
an attacker) wrote. Each drawing site passes them through one of these:

* :func:`md` for Streamlit markdown (``st.markdown``, ``st.caption``, ``st.info``, labels, …): each
  character that can start markup is backslash-escaped (no link, image, emphasis, code, HTML, table,
  directive, colour, icon or LaTeX can start) and line breaks become spaces (no heading or list). It is
  also right with ``unsafe_allow_html``: an escaped ``<`` is text.
* :func:`code` for an inline code span (a path, a command): fenced with more backticks than it holds.
* :func:`html` for HTML we write ourselves (``st.html``, the report), and for plotly text (plotly reads a
  few tags, and turns entities back into characters).
* :func:`csv_bytes` for every CSV a download button hands out: a cell a spreadsheet would run as a
  formula (``=``, ``+``, ``-``, ``@``, tab or carriage return first) is prefixed with a single quote.
"""

from __future__ import annotations

import html as _html
import re

from kdcore.export import FORMULA_STARTS, csv_cell, neutralise_formulas

__all__ = ["md", "code", "html", "csv_cell", "neutralise_formulas", "csv_bytes", "FORMULA_STARTS"]

# The characters that can start markup in Streamlit's markdown (CommonMark + GFM, its directives `:red[...]`,
# icons `:material/x:` and LaTeX `$`); a backslash makes each literal. A leading list or heading marker
# (``-``, ``+``, ``#``, ``1.``) is escaped too.
_MARKDOWN = re.compile(r"([\\`*_\[\]{}<>#|~$:!&])")
_LEADING = re.compile(r"^(\s*\d*)([-+=.)])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def md(value) -> str:
    """``value`` as literal text inside Streamlit markdown, on one line."""
    text = _MARKDOWN.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(value)))
    return _LEADING.sub(lambda m: m.group(1) + "\\" + m.group(2), text, count=1)


def code(value) -> str:
    """``value`` as an inline code span (backticks in it cannot close the span early)."""
    text = _LINE_BREAKS.sub(" ", str(value))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html(value) -> str:
    """``value`` as HTML text (and attribute value): ``& < > " '`` escaped."""
    return _html.escape(str(value), quote=True)


def csv_bytes(frame, index: bool = False) -> bytes:
    """The CSV (UTF-8) of a pandas DataFrame for a download button, formulas neutralised."""
    # CRLF rows: a cell holding a lone CR or LF is then quoted (with "\n" rows a CR would split the row).
    return neutralise_formulas(frame).to_csv(index=index, lineterminator="\r\n").encode("utf-8")
