"""Plotly charts of the Audit page: slice fidelity with intervals, probe flip rates. Every string from data
(slice, student, model, probe names) goes in through :func:`dashboard.components.safe.html`."""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from dashboard.components import safe

__all__ = ["slice_fidelity", "flip_rates"]

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")


def _error(values, lows, highs):
    return dict(type="data", symmetric=False, array=[h - v for v, h in zip(values, highs)],
                arrayminus=[v - lo for v, lo in zip(values, lows)])


def slice_fidelity(names: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                   overall: float, student: str) -> go.Figure:
    """One horizontal bar per slice (worst on top) with its Wilson 95% interval, and the whole split's fidelity.
    Slice and student names are escaped: plotly reads a few HTML tags in labels and titles."""
    names = [safe.html(n) for n in names]
    fig = go.Figure(go.Bar(x=list(values), y=names, orientation="h", marker_color="#e8833a",
                           error_x=_error(values, lows, highs),
                           hovertemplate="%{y}<br>fidelity %{x:.3f}<extra></extra>"))
    fig.add_vline(x=overall, line=dict(dash="dash", color="#888888"), annotation_text=f"all texts {overall:.3f}")
    fig.update_layout(title=f"Fidelity per slice: {safe.html(student)}",
                      xaxis=dict(title="fidelity", range=[0, 1.02]),
                      yaxis=dict(autorange="reversed"), height=max(260, 38 * len(names) + 90), **_LAYOUT)
    return fig


def flip_rates(models: Sequence[str], rates: Sequence[float], lows: Sequence[float], highs: Sequence[float],
               probe: str) -> go.Figure:
    """Flip rate of each model under one probe, with Wilson 95% intervals."""
    models = [safe.html(m) for m in models]
    fig = go.Figure(go.Bar(x=models, y=list(rates), marker_color="#2f6fde", error_y=_error(rates, lows, highs),
                           hovertemplate="%{x}<br>flip rate %{y:.3f}<extra></extra>"))
    fig.update_layout(title=f"Flip rate: {safe.html(probe)}",
                      yaxis=dict(title="share of edited texts whose class changes", range=[0, 1]), height=320,
                      **_LAYOUT)
    return fig
