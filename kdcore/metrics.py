"""Task metrics, fidelity to the teacher, and compression. Every definition is stated here.

Task metrics are scikit-learn's (``sklearn.metrics``) with every class listed
(``labels=range(n_classes)``), so a class absent from the gold labels or never predicted
still has its row, and ``zero_division=0``: a precision, recall or F1 whose denominator
is 0 is reported as 0.

Explanation metrics (agreement, faithfulness) live in :mod:`kdcore.explain_metrics`, whose
``ALL_DEFINITIONS`` holds the definitions of both (this module's first) and of the trust curve
(:mod:`kdcore.trust`).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .tasks import task_of

__all__ = [
    "DEFINITIONS", "accuracy", "macro_f1", "macro_f1_interval", "per_class_report", "confusion_matrix",
    "task_metrics", "fidelity", "compression", "metrics_table", "NO_GOLD_LABELS", "model_bytes", "texts_per_second", "softmax",
]

DEFINITIONS = {
    "accuracy": "Share of texts whose predicted class equals the gold label.",
    "macro_f1": "Unweighted mean over classes of F1 = 2PR/(P+R), P and R the class's precision and recall.",
    "fidelity": "Label agreement: share of texts on which the student predicts the same class as the teacher.",
    "mean_tvd": "Mean total-variation distance between student and teacher probabilities: mean over texts of "
                "0.5 * sum_c |p_s(c) - p_t(c)| (0 = identical, 1 = disjoint).",
    "parameters": "Number of trainable parameters (all stored weights).",
    "megabytes": "Size of the model's files on disk (weights, vocabulary, config), in MB (10^6 bytes).",
    "texts_per_second": "Texts classified per second on the CPU, tokenizing or featurizing included.",
    "accuracy_ci, fidelity_ci, macro_f1_ci": "95% intervals: Wilson for accuracy and fidelity, a bootstrap over "
                                              "the test texts for macro-F1 (see kdcore.intervals).",
    "latency_ms": "Milliseconds per text on the CPU (1000 / texts_per_second).",
}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of ``logits`` along the last axis (float64, max subtracted for stability)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _sk():
    """sklearn.metrics, imported on first use: it takes about a second, and kdcore.attribution
    imports this module for :func:`softmax` alone."""
    from sklearn import metrics

    return metrics


def _class_indices(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Both label vectors as int arrays, checked to lie in [0, n_classes)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64).ravel(), np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} vs {y_pred.size}.")
    # scikit-learn silently drops labels outside `labels`; an out-of-range class is a caller's bug.
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} holds class indices outside 0..{n_classes - 1}: pass every class name, "
                             "or map the labels to indices first.")
    return y_true, y_pred


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts ``[n_classes, n_classes]``: rows are gold classes, columns predicted classes."""
    y_true, y_pred = _class_indices(y_true, y_pred, n_classes)
    if y_true.size == 0:  # scikit-learn refuses empty input
        return np.zeros((n_classes, n_classes), dtype=np.int64)
    return _sk().confusion_matrix(y_true, y_pred, labels=range(n_classes)).astype(np.int64)


def accuracy(y_true, y_pred) -> float:
    """Share of equal labels; NaN when there are none."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        return float("nan")
    return float(_sk().accuracy_score(y_true, y_pred))


def per_class_report(y_true, y_pred, label_names: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support per class, one dict per entry of ``label_names``.

    A class never predicted has precision 0, a class absent from the gold labels recall 0
    (scikit-learn's ``zero_division=0``).
    """
    n_classes = len(label_names)
    y_true, y_pred = _class_indices(y_true, y_pred, n_classes)
    if y_true.size == 0:
        zeros = np.zeros(n_classes)
        precision, recall, f1, support = zeros, zeros, zeros, zeros.astype(np.int64)
    else:
        precision, recall, f1, support = _sk().precision_recall_fscore_support(
            y_true, y_pred, labels=range(n_classes), zero_division=0)
    return [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(label_names, precision, recall, f1, support)]


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean F1 over all ``n_classes`` classes (absent classes count as F1 = 0).

    0.0 for empty labels (every class's F1 is 0 by ``zero_division=0``), NaN for no classes.
    """
    if n_classes == 0:
        return float("nan")
    y_true, y_pred = _class_indices(y_true, y_pred, n_classes)
    if y_true.size == 0:
        return 0.0
    return float(_sk().f1_score(y_true, y_pred, labels=range(n_classes), average="macro", zero_division=0))


def _fast_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """macro_f1 without scikit-learn's per-call overhead, for the bootstrap (same definition)."""
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(counts).astype(np.float64)
    denom = counts.sum(axis=0) + counts.sum(axis=1)  # predicted + gold per class; F1 = 2TP / (P + G)
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    return float(f1.mean())


def macro_f1_interval(y_true, y_pred, n_classes: int, **options) -> tuple[float, float]:
    """Bootstrap 95% interval of :func:`macro_f1` over the texts (:func:`kdcore.intervals.bootstrap`)."""
    from .intervals import bootstrap

    y_true, y_pred = _class_indices(y_true, y_pred, n_classes)
    return bootstrap(lambda idx: _fast_macro_f1(y_true[idx], y_pred[idx], n_classes), y_true.size, **options)


def task_metrics(y_true, logits: np.ndarray, label_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1 (each with its 95% interval), per-class report and confusion matrix of
    ``argmax(logits)`` against ``y_true``."""
    from .intervals import wilson

    y_pred = np.asarray(logits).argmax(axis=1)
    y_true = np.asarray(y_true)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "accuracy_ci": list(wilson(int((y_true == y_pred).sum()), int(y_true.size))),
        "macro_f1": macro_f1(y_true, y_pred, len(label_names)),
        "macro_f1_ci": list(macro_f1_interval(y_true, y_pred, len(label_names))),
        "per_class": per_class_report(y_true, y_pred, label_names),
        "confusion_matrix": confusion_matrix(y_true, y_pred, len(label_names)).tolist(),
    }


def fidelity(student_logits: np.ndarray, teacher_logits: np.ndarray) -> dict:
    """Label agreement with the teacher (with its Wilson 95% interval) and mean total-variation distance
    of probabilities."""
    from .intervals import wilson

    student_logits, teacher_logits = np.asarray(student_logits), np.asarray(teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {student_logits.shape} vs {teacher_logits.shape}.")
    agree = student_logits.argmax(1) == teacher_logits.argmax(1)
    tvd = 0.5 * np.abs(softmax(student_logits) - softmax(teacher_logits)).sum(axis=1)
    return {"fidelity": float(agree.mean()), "fidelity_ci": list(wilson(int(agree.sum()), int(agree.size))),
            "mean_tvd": float(tvd.mean())}


def model_bytes(directory: str | os.PathLike) -> int:
    """Total size in bytes of the files under ``directory``."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def texts_per_second(predict, texts: Sequence[str], min_seconds: float = 1.0, max_repeats: int = 50) -> float:
    """Throughput of ``predict(texts)`` after one warm-up call, repeated for at least ``min_seconds``."""
    predict(list(texts[: min(len(texts), 64)]))
    done, started = 0, time.perf_counter()
    for _ in range(max_repeats):
        predict(list(texts))
        done += len(texts)
        if time.perf_counter() - started >= min_seconds:
            break
    return done / (time.perf_counter() - started)


def compression(model, texts: Sequence[str], directory: str | os.PathLike | None = None,
                min_seconds: float = 1.0) -> dict:
    """Parameters, bytes on disk, CPU throughput and latency of one model on ``texts``."""
    if directory is None:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            size = model_bytes(tmp)
    else:
        size = model_bytes(directory)
    speed = texts_per_second(model.predict_proba, texts, min_seconds=min_seconds)
    return {
        "parameters": int(model.n_parameters()),
        "bytes": int(size),
        "megabytes": size / 1e6,
        "texts_per_second": float(speed),
        "latency_ms": 1000.0 / speed,
    }


NO_GOLD_LABELS = "no gold labels"


def metrics_table(metrics: dict):
    """One row per model: the numbers of the run's model card (a pandas DataFrame), as the run's task
    (``metrics["task"]``, sequence when absent) lays them out."""
    return task_of(metrics).metrics_table(metrics)


def sequence_metrics_table(metrics: dict):
    """The sequence task's model card: each share with its 95% interval as text ("0.815–0.856"). A run
    whose test split has no gold labels shows ``"no gold labels"`` in its accuracy and macro-F1 columns."""
    import pandas as pd

    from .intervals import format_interval

    no_gold = metrics.get("gold_labels") is False
    rows = []
    for name, entry in metrics.get("models", {}).items():
        row = {"model": name, "role": entry.get("role", "")}
        for key in ("accuracy", "macro_f1", "fidelity"):
            row[key] = NO_GOLD_LABELS if no_gold and key != "fidelity" else entry.get(key)
            row[f"{key} 95% CI"] = "" if no_gold and key != "fidelity" else format_interval(entry.get(f"{key}_ci"))
        row.update({"parameters": entry.get("parameters"), "MB": entry.get("megabytes"),
                    "texts/s": entry.get("texts_per_second")})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.round({k: v for k, v in {"accuracy": 4, "macro_f1": 4, "fidelity": 4, "MB": 2, "texts/s": 0}.items()
                             if pd.api.types.is_numeric_dtype(frame[k])})
        # An interval column none of whose models has an interval (an older run) is left out.
        frame = frame.drop(columns=[c for c in frame.columns if c.endswith("95% CI") and not frame[c].any()])
    return frame
