"""Plotly figures built from plain data (DataFrames, arrays, dicts); no computation of metrics here.

Plotly reads a few HTML tags in every text it draws (titles, ticks, legends, hovers), so each name that came
from data (model, class, feature) goes in through :func:`dashboard.components.safe.html`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.components.safe import html as _text

__all__ = [
    "metric_bars", "size_speed_scatter", "confusion_heatmap", "probability_bars", "deletion_chart",
    "weight_bars", "weights_scatter", "loss_chart", "importance_bars", "trust_curves", "transition_heatmap", "type_confusion_heatmap",
]

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
ROLE_COLORS = {"teacher": "#444444", "distilled student": "#2f6fde", "label-trained student": "#e8833a"}


def metric_bars(card: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "macro_f1", "fidelity"),
                intervals: dict | None = None) -> go.Figure:
    """Grouped bars: one group per model, one bar per metric (all in [0, 1]); numeric columns only
    (a run without gold labels has none for accuracy). ``intervals`` ({metric: {model: [low, high]}})
    draws each bar's 95% interval as an error bar."""
    colors = {"accuracy": "#2f6fde", "macro_f1": "#8da0cb", "fidelity": "#3aa655"}
    fig = go.Figure()
    for metric in metrics:
        if metric in card.columns and pd.api.types.is_numeric_dtype(card[metric]):
            error = None
            known = (intervals or {}).get(metric, {})
            if known:
                values = card[metric].to_numpy(dtype=float)
                spans = [known.get(m) or [v, v] for m, v in zip(card["model"], values)]
                error = dict(type="data", symmetric=False, color="#444", thickness=1,
                             array=[max(0.0, hi - v) if hi is not None else 0 for (lo, hi), v in zip(spans, values)],
                             arrayminus=[max(0.0, v - lo) if lo is not None else 0 for (lo, hi), v in zip(spans, values)])
            fig.add_bar(name=metric, x=card["model"].map(_text), y=card[metric], marker_color=colors.get(metric), error_y=error,
                        hovertemplate="%{x}<br>" + metric + " %{y:.3f}<extra></extra>")
    fig.update_layout(barmode="group", yaxis=dict(range=[0, 1.1], title="score"), title="Quality and fidelity",
                      **_LAYOUT)
    return fig


_FAMILY_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "pentagon", "hexagon")


def size_speed_scatter(card: pd.DataFrame) -> go.Figure:
    """Size on disk against CPU throughput, both log-scale with ticks at powers of ten.

    One legend entry per model (names on hover, not as point labels, which collide when models
    are alike): colour by role, shape by architecture (a student and its label-trained twin, the
    card's ``twin of`` column, share one), label-trained students drawn open so that a twin on top
    of its student leaves it visible.
    """
    fig = go.Figure()
    families: dict[str, str] = {}
    for row in card.to_dict("records"):
        name, role = str(row["model"]), row.get("role")
        family = row.get("twin of") or name
        if role == "teacher":
            symbol = "star"
        else:
            symbol = families.setdefault(family, _FAMILY_SYMBOLS[len(families) % len(_FAMILY_SYMBOLS)])
        if role == "label-trained student":
            symbol += "-open"
        mb, speed = card.loc[card["model"] == name, ["MB", "texts/s"]].iloc[0]
        fig.add_scatter(x=[mb], y=[speed], mode="markers", name=_text(name),
                        marker=dict(size=14, symbol=symbol, color=ROLE_COLORS.get(role),
                                    line=dict(width=2.5 if symbol.endswith("-open") else 1, color=(
                                        ROLE_COLORS.get(role) if symbol.endswith("-open") else "white"))),
                        hovertemplate=f"<b>{_text(name)}</b> ({_text(role or 'model')})<br>%{{x:.2f}} MB<br>"
                                      "%{y:,.0f} texts/s<extra></extra>")
    fig.update_layout(xaxis=dict(type="log", dtick=1, title="size on disk (MB)"),
                      yaxis=dict(type="log", dtick=1, title="texts per second (CPU)"), title="Size vs speed",
                      **_LAYOUT)
    return fig


def confusion_heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> go.Figure:
    matrix = np.asarray(matrix)
    labels = [_text(label) for label in labels]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}",
                               hovertemplate="gold %{y}<br>predicted %{x}<br>%{z} texts<extra></extra>"))
    fig.update_layout(title=_text(title), xaxis=dict(title="predicted"), yaxis=dict(title="gold", autorange="reversed"),
                      height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def transition_heatmap(table: pd.DataFrame, title: str) -> go.Figure:
    """A tag-transition table (rows: previous tag, columns: next tag) as a diverging heatmap; a forbidden step
    (-inf) or a cell the table leaves empty is drawn blank and marked "forbidden" / "-" on hover."""
    values = table.to_numpy(dtype=float)
    shown = np.where(np.isfinite(values), values, np.nan)
    text = np.where(np.isfinite(values), np.char.mod("%.2f", np.nan_to_num(values)),
                    np.where(np.isneginf(values), "forbidden", "-"))
    limit = float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 1.0
    fig = go.Figure(go.Heatmap(z=shown, x=[_text(c) for c in table.columns], y=[_text(r) for r in table.index],
                               text=text, texttemplate="%{text}", colorscale="RdBu", zmid=0.0, zmin=-limit,
                               zmax=limit, hovertemplate="from %{y}<br>to %{x}<br>%{text}<extra></extra>"))
    fig.update_layout(title=_text(title), xaxis=dict(title="next tag", side="top"),
                      yaxis=dict(title="previous tag", autorange="reversed"),
                      height=max(300, 40 * len(table) + 120), margin=dict(l=10, r=10, t=80, b=10))
    return fig


def type_confusion_heatmap(counts: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], title: str,
                           reference: str, model: str) -> go.Figure:
    """Reference entities by type (rows) against what ``model`` has on their words (columns: a type, another
    span, none), as counted by kdcore."""
    counts = np.asarray(counts)
    y, x = [_text(r) for r in rows], [_text(c) for c in columns]
    fig = go.Figure(go.Heatmap(z=counts, x=x, y=y, colorscale="Blues", showscale=False, text=counts,
                               texttemplate="%{text}",
                               hovertemplate=f"{_text(reference)} %{{y}}<br>{_text(model)} %{{x}}<br>%{{z}} entities"
                                             "<extra></extra>"))
    fig.update_layout(title=_text(title), xaxis=dict(title=_text(model)), height=120 + 40 * len(rows),
                      yaxis=dict(title=_text(reference), autorange="reversed"), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def probability_bars(probs: Mapping[str, np.ndarray], labels: Sequence[str]) -> go.Figure:
    """Horizontal stacked bars: each model's class probabilities for one text."""
    names = list(probs)
    fig = go.Figure()
    # Class colours stay clear of the red/blue that attribution highlights use for sign.
    palette = ("#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3")
    for c, label in enumerate(labels):
        values = [float(np.asarray(probs[n]).reshape(-1)[c]) for n in names]
        fig.add_bar(name=_text(label), y=[_text(n) for n in names], x=values,
                    orientation="h", marker_color=palette[c % len(palette)],
                    text=[f"{v:.2f}" for v in values], textposition="inside", insidetextanchor="middle")
    fig.update_layout(barmode="stack", xaxis=dict(range=[0, 1], title="probability"), legend_traceorder="normal",
                      yaxis=dict(autorange="reversed"), height=110 + 38 * len(names), title="Predictions", **_LAYOUT)
    return fig


def deletion_chart(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], target_name: str) -> go.Figure:
    """One line per model: p(target) as words are deleted, most important first."""
    fig = go.Figure()
    for name, (x, y) in curves.items():
        fig.add_scatter(x=list(x), y=list(y), mode="lines+markers", name=_text(name))
    fig.update_layout(xaxis=dict(title="share of words deleted (most important first)", range=[0, 1]),
                      yaxis=dict(title=f"p({_text(target_name)})", range=[0, 1.02]), title="Deletion curves",
                      **{**_LAYOUT, "margin": dict(l=10, r=30, t=40, b=10)})  # room for the last tick, "1"
    return fig


def weight_bars(frame: pd.DataFrame, value: str, title: str, color: str) -> go.Figure:
    """Horizontal bars of ``value`` per feature, largest |value| at the top."""
    fig = go.Figure(go.Bar(x=frame[value], y=frame["feature"].map(_text), orientation="h", marker_color=color,
                           hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    fig.update_layout(title=_text(title), yaxis=dict(autorange="reversed"), height=max(260, 22 * len(frame) + 60),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def importance_bars(frame: pd.DataFrame, title: str) -> go.Figure:
    colors = ["#d62728" if v > 0 else "#1f77b4" for v in frame["importance"]]
    fig = go.Figure(go.Bar(x=frame["importance"], y=frame["feature"].map(_text), orientation="h", marker_color=colors,
                           customdata=frame.get("n_texts"),
                           hovertemplate="%{y}: %{x:.4f} (in %{customdata} texts)<extra></extra>"))
    fig.update_layout(title=_text(title), yaxis=dict(autorange="reversed"), height=max(260, 22 * len(frame) + 60),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def weights_scatter(frame: pd.DataFrame, x: str, y: str, label: str, title: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=frame[x], y=frame[y], mode="markers", text=frame[label].map(_text),
                               marker=dict(size=7, opacity=0.7, color="#2f6fde"),
                               hovertemplate="%{text}<br>" + x + " %{x:.4f}<br>" + y + " %{y:.4f}<extra></extra>"))
    fig.update_layout(title=_text(title), xaxis=dict(title=x), yaxis=dict(title=y), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def loss_chart(events: Sequence[dict]) -> go.Figure:
    """Loss against progress, one line per stage/student, from progress events with a ``loss``."""
    series: dict[str, tuple[list, list]] = {}
    for event in events:
        if event.get("loss") is None:
            continue
        name = str(event.get("student") or event.get("stage") or "loss")
        xs, ys = series.setdefault(name, ([], []))
        xs.append(event.get("step", event.get("epoch", len(xs) + 1)))
        ys.append(float(event["loss"]))
    fig = go.Figure()
    for name, (xs, ys) in series.items():
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=_text(name))
    fig.update_layout(title="Training loss", xaxis=dict(title="step / epoch"), yaxis=dict(title="loss"),
                      height=320, **_LAYOUT)
    return fig


def trust_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], target: float,
                 marks: Mapping[str, tuple[float, float]] | None = None, unit: str = "texts",
                 measure: str = "fidelity", title: str = "Trust curves") -> go.Figure:
    """``measure`` (fidelity; for entities, entity agreement) against coverage, one line per student (``unit``
    sorted by its stand-in score, surest first), the target as a dashed line and each student's headline
    point (``marks``: coverage, measure)."""
    fig = go.Figure()
    palette = ("#2f6fde", "#e8833a", "#3aa655", "#9b59b6", "#d62728", "#17becf")
    for i, (name, (coverage, fidelity)) in enumerate(curves.items()):
        color = palette[i % len(palette)]
        fig.add_scatter(x=list(coverage), y=list(fidelity), mode="lines", name=_text(name), line=dict(color=color),
                        hovertemplate=f"<b>{_text(name)}</b><br>surest %{{x:.0%}} of {unit}<br>{measure} %{{y:.3f}}"
                                      "<extra></extra>")
        if marks and name in marks:
            x, y = marks[name]
            fig.add_scatter(x=[x], y=[y], mode="markers", marker=dict(size=10, color=color, symbol="circle-open",
                                                                      line=dict(width=2.5)),
                            showlegend=False, hovertemplate=f"<b>{_text(name)}</b><br>{x:.0%} of {unit} at {measure} "
                                                            f"{y:.3f}<extra></extra>")
    fig.add_hline(y=target, line=dict(dash="dash", color="#888888", width=1),
                  annotation_text=f"{measure} {target:.2f}", annotation_position="bottom left")
    fig.update_layout(xaxis=dict(title=f"coverage: share of test {unit}, surest first", range=[0, 1],
                                 tickformat=".0%"),
                      yaxis=dict(title=f"{measure} on those {unit}"), title=title, **_LAYOUT)
    return fig
