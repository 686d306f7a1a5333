"""Word-level attribution highlights for the dashboard: thin wrappers over :mod:`kdcore.visualize`.

The one renderer (palette, scale, escaping) lives in kdcore so the report and the
dashboard draw words the same way; these names keep the dashboard's call shape.
"""

from __future__ import annotations

from typing import Mapping

from kdcore import visualize
from kdcore.visualize import NEGATIVE, POSITIVE, row_scale

__all__ = ["POSITIVE", "NEGATIVE", "row_scale", "highlight", "highlight_table", "legend"]


def highlight(explanation, scale: float | None = None) -> str:
    """The explained text with each word coloured by its score (``scale``: the full-colour
    |score|, default the row's largest); warnings are shown by the explain panel, not here."""
    return visualize.highlight_html(explanation, scale, show_warnings=False)


def highlight_table(explanations: Mapping[str, object], shared_scale: bool = False) -> str:
    """One row per model: name, p(target class), the highlighted text (see
    :func:`kdcore.visualize.highlight_table_html`)."""
    return visualize.highlight_table_html(explanations, shared_scale=shared_scale, show_warnings=False)


def legend(target_name: str) -> str:
    """The palette's two swatches, towards and against ``target_name``."""
    return visualize.legend_html(target_name)
