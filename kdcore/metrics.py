"""Task metrics, fidelity to the teacher, and compression. Every definition is stated here.

Explanation metrics (agreement, faithfulness) live in :mod:`kdcore.explain_metrics` and are
re-exported from this module.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "DEFINITIONS", "accuracy", "macro_f1", "per_class_report", "confusion_matrix", "task_metrics",
    "fidelity", "compression", "metrics_table", "model_bytes", "texts_per_second", "softmax",
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
    "latency_ms": "Milliseconds per text on the CPU (1000 / texts_per_second).",
}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Rows are gold classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        return float("nan")
    return float((y_true == y_pred).mean())


def per_class_report(y_true, y_pred, label_names: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support per class (0 where a class is never predicted)."""
    matrix = confusion_matrix(y_true, y_pred, len(label_names))
    rows = []
    for c, name in enumerate(label_names):
        tp = matrix[c, c]
        predicted, support = matrix[:, c].sum(), matrix[c, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                     "support": int(support)})
    return rows


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    rows = per_class_report(y_true, y_pred, [str(i) for i in range(n_classes)])
    return float(np.mean([r["f1"] for r in rows])) if rows else float("nan")


def task_metrics(y_true, logits: np.ndarray, label_names: Sequence[str]) -> dict:
    y_pred = np.asarray(logits).argmax(axis=1)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, len(label_names)),
        "per_class": per_class_report(y_true, y_pred, label_names),
        "confusion_matrix": confusion_matrix(y_true, y_pred, len(label_names)).tolist(),
    }


def fidelity(student_logits: np.ndarray, teacher_logits: np.ndarray) -> dict:
    """Label agreement with the teacher and mean total-variation distance of probabilities."""
    student_logits, teacher_logits = np.asarray(student_logits), np.asarray(teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {student_logits.shape} vs {teacher_logits.shape}.")
    agree = student_logits.argmax(1) == teacher_logits.argmax(1)
    tvd = 0.5 * np.abs(softmax(student_logits) - softmax(teacher_logits)).sum(axis=1)
    return {"fidelity": float(agree.mean()), "mean_tvd": float(tvd.mean())}


def model_bytes(directory: str | os.PathLike) -> int:
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


def metrics_table(metrics: dict):
    """One row per model: the numbers of the run's model card (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for name, entry in metrics.get("models", {}).items():
        rows.append({
            "model": name,
            "role": entry.get("role", ""),
            "accuracy": entry.get("accuracy"),
            "macro_f1": entry.get("macro_f1"),
            "fidelity": entry.get("fidelity"),
            "parameters": entry.get("parameters"),
            "MB": entry.get("megabytes"),
            "texts/s": entry.get("texts_per_second"),
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.round({"accuracy": 4, "macro_f1": 4, "fidelity": 4, "MB": 2, "texts/s": 0})
    return frame


try:  # explanation metrics, once that module is present
    from .explain_metrics import *  # noqa: F401,F403
    from .explain_metrics import DEFINITIONS as _EXPLAIN_DEFINITIONS

    DEFINITIONS = {**DEFINITIONS, **_EXPLAIN_DEFINITIONS}
except ImportError:  # pragma: no cover
    pass
