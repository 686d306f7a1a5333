"""The per-tag report of a token run (definitions the UI and report state):

- per entity type, the teacher against the gold entities: precision = right / the teacher's entities of the
  type, recall = right / gold entities of the type, F1 (exact span and type, as seqeval's report);
- per entity type, each student against the teacher's entities (agreement): precision = shared / the
  student's entities of the type, recall = shared / the teacher's entities of the type, F1;
- each number with a 95% percentile interval from resampling the test sentences (bootstrap; the entities of
  one sentence move together), on the draws of :mod:`kdcore.tasks.token.metrics`'s interval helpers;
- the confusion between types: for each reference entity (the teacher's, for a student; gold, for the
  teacher), what the other model has on the same words: an entity of the same span with some type, an
  entity overlapping it with another span (``other span``), or nothing there (``none``).

Every model's tags are given as decoded (:func:`kdcore.tasks.token.metrics.model_decode`), so a model with
a decoding of its own (a CRF's Viterbi) is read through it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...intervals import format_interval
from .bio import entities
from .metrics import draw_weights

__all__ = ["type_counts", "per_type_scores", "type_confusion", "per_tag_report", "per_tag_table",
           "per_tag_text", "OTHER_SPAN", "NO_ENTITY", "PER_TAG_DEFINITIONS"]

OTHER_SPAN = "other span"
NO_ENTITY = "none"
PER_TAG_DEFINITIONS = {
    "per-tag teacher": "Per entity type, the teacher's precision (right / its entities of the type), recall "
                       "(right / gold entities of the type) and F1 on gold (exact span and type).",
    "per-tag agreement": "Per entity type, a student's precision (shared / its entities of the type), recall "
                         "(shared / the teacher's entities of the type) and F1 against the teacher's entities.",
    "type confusion": "For each reference entity (the teacher's for a student, gold for the teacher): the type of "
                      "the other model's entity on exactly the same words, 'other span' when its entity only "
                      "overlaps them, 'none' when it has no entity there.",
}


def _spans(tags) -> list[tuple[str, int, int]]:
    return entities(list(tags))


def type_counts(reference, predicted, types: Sequence[str]) -> np.ndarray:
    """``[sentences, types, 3]`` counts ``[shared, predicted, reference]`` of each type per sentence (an
    entity is shared when both have its exact span and type)."""
    if len(reference) != len(predicted):
        raise ValueError(f"Got {len(reference)} reference sentences but {len(predicted)} predicted ones.")
    index = {kind: k for k, kind in enumerate(types)}
    counts = np.zeros((len(reference), len(types), 3), dtype=np.int64)
    for i, (ref, pred) in enumerate(zip(reference, predicted)):
        ref_spans, pred_spans = set(_spans(ref)), set(_spans(pred))
        for column, spans in ((0, ref_spans & pred_spans), (1, pred_spans), (2, ref_spans)):
            for kind, _, _ in spans:
                if kind in index:
                    counts[i, index[kind], column] += 1
    return counts


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    return top / np.maximum(bottom, 1)


def _intervals(counts: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> dict[str, np.ndarray]:
    """``{metric: [k, 2]}`` percentile intervals of precision, recall and F1 of each of ``k`` columns of
    ``[sentences, k, 3]`` counts, all from one set of resampled sentences (those of :func:`f1_interval` and
    :func:`share_interval`: the same numbers, at one matrix product for every type)."""
    n, k = counts.shape[:2]
    summed = (draw_weights(n, n_boot, seed) @ counts.reshape(n, k * 3)).reshape(n_boot, k, 3)
    shared, n_pred, n_ref = summed[..., 0], summed[..., 1], summed[..., 2]
    boot = {"precision": _ratio(shared, n_pred), "recall": _ratio(shared, n_ref),
            "f1": np.where(n_pred + n_ref > 0, _ratio(2 * shared, n_pred + n_ref), 1.0)}
    quantiles = [(1 - level) / 2, 1 - (1 - level) / 2]
    return {metric: np.quantile(values, quantiles, axis=0).T for metric, values in boot.items()}


def _row(kind: str, totals: np.ndarray, intervals: dict, column: int) -> dict:
    """One type's precision / recall / F1 from its summed counts, each with its interval; None where undefined
    (no entity on the side that divides)."""
    shared, n_pred, n_ref = (int(v) for v in totals)
    defined = {"precision": n_pred > 0, "recall": n_ref > 0, "f1": n_pred + n_ref > 0}
    row = {"type": kind, "support": n_ref, "predicted": n_pred, "shared": shared,
           "precision": shared / n_pred if n_pred else None, "recall": shared / n_ref if n_ref else None,
           "f1": 2 * shared / (n_pred + n_ref) if n_pred + n_ref else None}
    for metric, ok in defined.items():
        row[f"{metric}_ci"] = [float(v) for v in intervals[metric][column]] if ok else None
    return row


def per_type_scores(reference, predicted, types: Sequence[str], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Rows ``{type, support, predicted, shared, precision, recall, f1, *_ci}`` per entity type of
    ``predicted`` against ``reference``, then ``micro avg`` over the types."""
    counts = type_counts(reference, predicted, types)
    counts = np.concatenate([counts, counts.sum(axis=1, keepdims=True)], axis=1)  # the micro average last
    if not len(counts):
        raise ValueError("The per-tag report needs at least one test sentence.")
    intervals = _intervals(counts.astype(np.float64), n_boot, seed)
    totals = counts.sum(axis=0)
    return [_row(kind, totals[k], intervals, k) for k, kind in enumerate([*types, "micro avg"])]


def type_confusion(reference, predicted, types: Sequence[str]) -> dict:
    """``{rows, columns, counts}``: for each reference entity of type ``rows[i]``, what ``predicted`` has on its
    words: ``columns`` are the types, then :data:`OTHER_SPAN` and :data:`NO_ENTITY` (see the module docstring)."""
    columns = [*types, OTHER_SPAN, NO_ENTITY]
    counts = np.zeros((len(types), len(columns)), dtype=np.int64)
    for ref, pred in zip(reference, predicted):
        pred_spans = _spans(pred)
        by_span = {(start, end): kind for kind, start, end in pred_spans}
        for kind, start, end in _spans(ref):
            if kind not in types:
                continue
            if (start, end) in by_span and by_span[(start, end)] in types:
                column = types.index(by_span[(start, end)])
            elif any(s < end and start < e for _, s, e in pred_spans):
                column = len(types)
            else:
                column = len(types) + 1
            counts[types.index(kind), column] += 1
    return {"rows": list(types), "columns": columns, "counts": counts.tolist()}


def per_tag_report(tags_of: Mapping[str, list], gold, types: Sequence[str], teacher: str = "teacher",
                   n_boot: int = 2000, seed: int = 0) -> dict:
    """The ``per_tag`` block of a token run's metrics.json: ``tags_of`` ({model: decoded tags of each test
    sentence}, the teacher under ``teacher``), ``gold`` (the test sentences' gold tags, or None)."""
    types = list(types)
    reference = tags_of[teacher]
    report = {"types": types, "teacher": teacher, "n_boot": n_boot, "sentences": len(reference),
              "teacher_gold": per_type_scores(gold, reference, types, n_boot, seed) if gold is not None else None,
              "agreement": {}, "confusion": {}}
    if gold is not None:
        report["confusion"][teacher] = {"reference": "gold", **type_confusion(gold, reference, types)}
    for name, tags in tags_of.items():
        if name == teacher:
            continue
        report["agreement"][name] = per_type_scores(reference, tags, types, n_boot, seed)
        report["confusion"][name] = {"reference": teacher, **type_confusion(reference, tags, types)}
    return report


def _number(value) -> float | None:
    return None if value is None else round(float(value), 4)


def per_tag_table(report: Mapping):
    """One row per entity type (and the micro average) of a ``per_tag`` block (a pandas DataFrame): the
    teacher's gold support, precision, recall and F1 with intervals, then each student's agreement F1 with
    the teacher and its interval."""
    import pandas as pd

    types = [*report.get("types", []), "micro avg"]
    gold = {r["type"]: r for r in report.get("teacher_gold") or []}
    agreement = {name: {r["type"]: r for r in rows} for name, rows in (report.get("agreement") or {}).items()}
    rows = []
    for kind in types:
        row = {"type": kind}
        if gold:
            g = gold.get(kind, {})
            row.update({"gold entities": g.get("support"), "teacher entities": g.get("predicted")})
            for metric in ("precision", "recall", "f1"):
                row[f"teacher {metric}"] = _number(g.get(metric))
                row[f"teacher {metric} 95% CI"] = format_interval(g.get(f"{metric}_ci"))
        for name, by_type in agreement.items():
            a = by_type.get(kind, {})
            row[f"{name} agreement F1"] = _number(a.get("f1"))
            row[f"{name} agreement F1 95% CI"] = format_interval(a.get("f1_ci"))
        rows.append(row)
    return pd.DataFrame(rows)


def _with_interval(value, interval: str) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:.3f} ({interval})" if interval else f"{value:.3f}"


def per_tag_text(report: Mapping | None) -> str:
    """The per-tag table in plain text, for the command line: each number followed by its interval."""
    if not report:
        return ""
    table = per_tag_table(report)
    compact = table[[c for c in ("type", "gold entities", "teacher entities") if c in table.columns]].copy()
    for column in table.columns:
        if f"{column} 95% CI" in table.columns:
            compact[column] = [_with_interval(v, ci) for v, ci in zip(table[column], table[f"{column} 95% CI"])]
    head = (f"Per entity type on {report.get('sentences', '?')} test sentences (teacher on gold; students' "
            "agreement F1 with the teacher's entities; in brackets the 95% bootstrap interval over sentences):")
    return head + "\n" + compact.to_string(index=False, na_rep="—")
