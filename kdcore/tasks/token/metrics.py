"""Token classification metrics (definitions the UI and report state):

- decoding: every model's per-word scores are read as BIO tags by one decoding, the Viterbi path
  under BIO constraints over per-word log-probabilities (:func:`kdcore.bio.viterbi_bio`); a model with
  its own decoder (a CRF student, ``decodes_itself``) is read through it (:func:`model_decode`);
- word fidelity: share of words whose decoded tag equals the teacher's; mean total-variation
  distance of the per-word tag probabilities;
- entity agreement: entities (exact span and type) with the teacher's entities as reference:
  precision = shared / student's, recall = shared / teacher's, F1 (micro over all sentences);
- gold per-type precision / recall / F1 with support, and micro / macro / weighted averages, as in
  seqeval's classification report (computed by seqeval);
- 95% intervals from a bootstrap over sentences (the words and entities of one sentence move together):
  each model's entity F1, word fidelity and entity agreement F1, and the difference between two models'
  entity agreement F1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .bio import entities, viterbi_bio

__all__ = ["decode", "model_decode", "log_softmax", "entity_scores", "word_fidelity", "per_type_report", "per_type_text",
           "entity_counts", "draw_weights", "bootstrap_f1_difference", "token_metrics_table", "margins_text", "f1_interval",
           "share_interval"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def decode(word_logits: Sequence[np.ndarray], label_names: Sequence[str]) -> list[list[str]]:
    """BIO tags of each sentence: the constrained Viterbi path over its per-word log-probabilities."""
    names = list(label_names)
    return [[names[k] for k in viterbi_bio(log_softmax(rows), names)] if len(rows) else [] for rows in word_logits]


def model_decode(model, sentences: Sequence[Sequence[str]], word_logits: Sequence[np.ndarray] | None = None
                 ) -> list[list[str]]:
    """BIO tags a token model gives ``sentences``: its own decoder where it has one (``decodes_itself``: a CRF
    student's Viterbi over its emissions and transitions), else :func:`decode` over its per-word logits
    (``word_logits`` when already computed)."""
    if getattr(model, "decodes_itself", False):
        return model.tag(sentences) if len(sentences) else []
    if word_logits is None:
        word_logits = model.predict_word_logits(sentences) if len(sentences) else []
    return decode(word_logits, model.label_names)


def _spans(sentence) -> list[tuple[str, int, int]]:
    """Entity spans of a sentence given as tags or as spans already."""
    if sentence and isinstance(sentence[0], tuple):
        return list(sentence)
    return entities(list(sentence))


def entity_counts(reference, predicted) -> np.ndarray:
    """Per sentence ``[shared, predicted, reference]`` entity counts (exact span and type); each
    sentence given as its tags or its spans."""
    if len(reference) != len(predicted):
        raise ValueError(f"Got {len(reference)} reference sentences but {len(predicted)} predicted ones.")
    rows = []
    for ref, pred in zip(reference, predicted):
        ref_spans, pred_spans = set(_spans(ref)), set(_spans(pred))
        rows.append((len(ref_spans & pred_spans), len(pred_spans), len(ref_spans)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _f1(shared, n_pred, n_ref) -> dict:
    precision = shared / n_pred if n_pred else 0.0
    recall = shared / n_ref if n_ref else 0.0
    f1 = 2 * shared / (n_pred + n_ref) if n_pred + n_ref else 1.0  # no entity anywhere: full agreement
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "shared": int(shared),
            "predicted": int(n_pred), "reference": int(n_ref)}


def entity_scores(reference, predicted) -> dict:
    """Micro precision / recall / F1 of ``predicted`` entities against ``reference`` (exact span and type)."""
    shared, n_pred, n_ref = entity_counts(reference, predicted).sum(axis=0)
    return _f1(shared, n_pred, n_ref)


def word_fidelity(student_tags, teacher_tags, student_logits=None, teacher_logits=None) -> dict:
    """Share of words with the teacher's decoded tag, and (given logits) the mean per-word TVD."""
    same = [a == b for s, t in zip(student_tags, teacher_tags) for a, b in zip(s, t)]
    out = {"word_fidelity": float(np.mean(same)) if same else float("nan"), "words": len(same)}
    if student_logits is not None and teacher_logits is not None:
        p = np.exp(log_softmax(np.concatenate(student_logits)))
        q = np.exp(log_softmax(np.concatenate(teacher_logits)))
        out["mean_tvd"] = float(0.5 * np.abs(p - q).sum(axis=1).mean())
    return out


def per_type_report(gold_tags, predicted_tags) -> list[dict]:
    """Rows ``{type, precision, recall, f1, support}`` per entity type, then ``micro avg``, ``macro avg`` and
    ``weighted avg``: seqeval's classification report (default mode, as conlleval)."""
    from seqeval.metrics import classification_report

    report = classification_report([list(t) for t in gold_tags], [list(t) for t in predicted_tags],
                                   output_dict=True, zero_division=0)
    rows = []
    for name, values in report.items():
        rows.append({"type": name, "precision": float(values["precision"]), "recall": float(values["recall"]),
                     "f1": float(values["f1-score"]), "support": int(values["support"])})
    return rows


def per_type_text(rows: list[dict], digits: int = 3) -> str:
    """A per-type table laid out as seqeval's printed classification report."""
    width = max([len(r["type"]) for r in rows] + [12])
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for r in rows:
        if r["type"] == "micro avg":
            lines.append("")
        lines.append(f"{r['type']:>{width}} {r['precision']:>9.{digits}f} {r['recall']:>9.{digits}f} "
                     f"{r['f1']:>9.{digits}f} {r['support']:>9d}")
    return "\n".join(lines)


def _resample_f1(counts: np.ndarray, draws: np.ndarray) -> np.ndarray:
    summed = counts[draws].sum(axis=1)
    denominator = summed[:, 1] + summed[:, 2]
    return np.where(denominator > 0, 2 * summed[:, 0] / np.maximum(denominator, 1), 1.0)


def _draws(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def draw_weights(n: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``[n_boot, n]``: how often each of ``n`` sentences is drawn in each bootstrap resample, the very draws
    of :func:`f1_interval` and :func:`share_interval` with the same seed (so a resampled sum of per-sentence
    counts is one matrix product)."""
    draws = _draws(n, n_boot, seed)
    offsets = (np.arange(n_boot) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def f1_interval(counts: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile interval of the micro entity F1 of :func:`entity_counts` rows, resampling sentences."""
    counts = np.asarray(counts)
    if not len(counts):
        return [float("nan"), float("nan")]
    boot = _resample_f1(counts, _draws(len(counts), n_boot, seed))
    return [float(q) for q in np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])]


def share_interval(hits: np.ndarray, totals: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> list[float]:
    """Percentile interval of ``sum(hits) / sum(totals)`` (e.g. words agreeing with the teacher over words),
    resampling sentences, so the words of one sentence move together."""
    hits, totals = np.asarray(hits, dtype=np.float64), np.asarray(totals, dtype=np.float64)
    if not len(hits):
        return [float("nan"), float("nan")]
    draws = _draws(len(hits), n_boot, seed)
    boot = hits[draws].sum(axis=1) / np.maximum(totals[draws].sum(axis=1), 1)
    return [float(q) for q in np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])]


def bootstrap_f1_difference(counts_a: np.ndarray, counts_b: np.ndarray, n_boot: int = 2000, seed: int = 0,
                            level: float = 0.95) -> dict:
    """F1(a) - F1(b) with a percentile interval and standard error from resampling sentences.

    ``counts_*`` are :func:`entity_counts` rows of the same sentences (same reference)."""
    counts_a, counts_b = np.asarray(counts_a), np.asarray(counts_b)
    if counts_a.shape != counts_b.shape:
        raise ValueError("Both models need entity counts on the same sentences.")

    def f1(c):
        denominator = c[..., 1] + c[..., 2]
        return np.where(denominator > 0, 2 * c[..., 0] / np.maximum(denominator, 1), 1.0)

    difference = float(f1(counts_a.sum(0)) - f1(counts_b.sum(0)))
    draws = _draws(len(counts_a), n_boot, seed)
    boot = _resample_f1(counts_a, draws) - _resample_f1(counts_b, draws)
    low, high = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"difference": difference, "low": float(low), "high": float(high), "se": float(boot.std(ddof=1)),
            "level": level, "n_boot": n_boot, "sentences": int(len(counts_a))}


def token_metrics_table(metrics: dict):
    """One row per model of a token run's metrics.json (a pandas DataFrame): gold entity F1, word fidelity,
    entity agreement F1 with the teacher, size and speed."""
    import pandas as pd

    from ...intervals import format_interval

    rows = []
    for name, entry in metrics.get("models", {}).items():
        rows.append({"model": name, "role": entry.get("role", ""), "entity_f1": entry.get("entity_f1"),
                     "entity_f1 95% CI": format_interval(entry.get("entity_f1_ci")),
                     "word_fidelity": entry.get("fidelity"), "word_fidelity 95% CI": format_interval(entry.get("fidelity_ci")),
                     "entity_agreement_f1": entry.get("entity_agreement_f1"),
                     "entity_agreement_f1 95% CI": format_interval(entry.get("entity_agreement_f1_ci")),
                     "parameters": entry.get("parameters"), "MB": entry.get("megabytes"),
                     "sentences/s": entry.get("texts_per_second")})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.round({"entity_f1": 4, "word_fidelity": 4, "entity_agreement_f1": 4, "MB": 2, "sentences/s": 0})
    return frame


def margins_text(metrics: dict) -> str:
    """The distilled-minus-twin entity agreement margins of a token run's metrics.json, one line each."""
    lines = []
    for name, m in (metrics.get("margins") or {}).items():
        lines.append(f"{name} - {m['twin']}: entity agreement F1 {m['difference']:+.4f} "
                     f"[{m['low']:+.4f}, {m['high']:+.4f}] ({round(100 * m['level'])}% bootstrap over "
                     f"{m['sentences']} sentences, se {m['se']:.4f}); word fidelity "
                     f"{m.get('word_fidelity_difference', float('nan')):+.4f}")
    return "\n".join(lines)
