"""Task metrics, fidelity, softmax and the model-card table against hand-worked answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdcore import metrics as M

# Three classes; gold never holds class 2 ("absent"), predictions never hold class 1 ("quiet").
#   gold: 0 0 0 1 1      pred: 0 0 2 0 0
# confusion (rows gold, columns predicted): [[2, 0, 1], [2, 0, 0], [0, 0, 0]]
GOLD = [0, 0, 0, 1, 1]
PRED = [0, 0, 2, 0, 0]
NAMES = ["a", "quiet", "absent"]


def test_confusion_matrix_keeps_rows_for_absent_classes():
    matrix = M.confusion_matrix(GOLD, PRED, 3)
    assert matrix.tolist() == [[2, 0, 1], [2, 0, 0], [0, 0, 0]]
    assert matrix.dtype == np.int64
    assert M.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]


def test_per_class_report_by_hand():
    rows = {r["class"]: r for r in M.per_class_report(GOLD, PRED, NAMES)}
    # class a: tp 2, predicted 4, support 3 -> P 1/2, R 2/3, F1 = 2PR/(P+R) = 4/7
    assert rows["a"]["precision"] == pytest.approx(0.5)
    assert rows["a"]["recall"] == pytest.approx(2 / 3)
    assert rows["a"]["f1"] == pytest.approx(4 / 7)
    assert rows["a"]["support"] == 3
    # never predicted: precision 0 by zero_division=0, recall 0 (0 of 2), F1 0
    assert (rows["quiet"]["precision"], rows["quiet"]["recall"], rows["quiet"]["f1"]) == (0.0, 0.0, 0.0)
    assert rows["quiet"]["support"] == 2
    # absent from gold but predicted once: precision 0/1, recall 0 (no support), F1 0
    assert (rows["absent"]["precision"], rows["absent"]["recall"], rows["absent"]["f1"]) == (0.0, 0.0, 0.0)
    assert rows["absent"]["support"] == 0
    assert [r["class"] for r in M.per_class_report(GOLD, PRED, NAMES)] == NAMES
    assert all(isinstance(r["support"], int) and isinstance(r["f1"], float)
               for r in M.per_class_report(GOLD, PRED, NAMES))


def test_accuracy_and_macro_f1_by_hand():
    assert M.accuracy(GOLD, PRED) == pytest.approx(2 / 5)
    # every class counts, the absent ones with F1 = 0: (4/7 + 0 + 0) / 3
    assert M.macro_f1(GOLD, PRED, 3) == pytest.approx(4 / 21)
    assert M.macro_f1([0, 1], [0, 1], 2) == 1.0
    assert math.isnan(M.accuracy([], []))
    assert M.macro_f1([], [], 2) == 0.0


def test_out_of_range_labels_are_refused():
    with pytest.raises(ValueError, match="outside 0..1"):
        M.confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="y_pred"):
        M.per_class_report([0, 1], [0, -1], ["x", "y"])
    with pytest.raises(ValueError, match="length"):
        M.macro_f1([0, 1], [0], 2)


def test_task_metrics_from_logits():
    logits = np.eye(3)[PRED] * 2.0 - 1.0  # argmax = PRED
    out = M.task_metrics(GOLD, logits, NAMES)
    assert out["accuracy"] == pytest.approx(0.4)
    assert out["macro_f1"] == pytest.approx(4 / 21)
    assert out["confusion_matrix"] == [[2, 0, 1], [2, 0, 0], [0, 0, 0]]
    assert [r["class"] for r in out["per_class"]] == NAMES


def test_softmax_by_hand():
    p = M.softmax(np.log([[1.0, 3.0], [2.0, 2.0]]))
    assert p == pytest.approx(np.array([[0.25, 0.75], [0.5, 0.5]]))
    assert p.dtype == np.float64
    # large logits: shifted before exp, so no overflow
    assert M.softmax([1000.0, 1000.0 + math.log(3)]) == pytest.approx([0.25, 0.75])


def test_attribution_uses_the_one_softmax():
    from kdcore import attribution

    assert attribution._softmax is M.softmax


def test_fidelity_and_mean_tvd_by_hand():
    teacher = np.log([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]])
    student = np.log([[0.6, 0.4], [0.7, 0.3], [0.5, 0.5]])
    out = M.fidelity(student, teacher)
    # labels agree on texts 0 and 2 (argmax of a tie is the first class for both)
    assert out["fidelity"] == pytest.approx(2 / 3)
    # TVD per text: 0.3, 0.3, 0 -> mean 0.2
    assert out["mean_tvd"] == pytest.approx(0.2)
    same = M.fidelity(teacher, teacher)
    assert same["fidelity"] == 1.0 and same["mean_tvd"] == pytest.approx(0.0)
    # Wilson interval of 3 agreements in 3 texts: wide, and ending at 1
    assert same["fidelity_ci"][1] == 1.0 and same["fidelity_ci"][0] == pytest.approx(0.4385, abs=1e-4)
    with pytest.raises(ValueError, match="shape"):
        M.fidelity(student[:2], teacher)


def test_metrics_table_rounds_and_orders():
    metrics = {"models": {
        "teacher": {"role": "teacher", "accuracy": 0.912345, "macro_f1": 0.9, "fidelity": 1.0, "parameters": 10,
                    "megabytes": 1.23456, "texts_per_second": 123.6},
        "linear": {"role": "student", "accuracy": 0.8, "fidelity": 0.85554},
    }}
    frame = M.metrics_table(metrics)
    # no model has an interval (an older run): no interval columns
    assert list(frame.columns) == ["model", "role", "accuracy", "macro_f1", "fidelity", "parameters", "MB",
                                   "texts/s"]
    assert frame["model"].tolist() == ["teacher", "linear"]
    assert frame.loc[0, "accuracy"] == 0.9123 and frame.loc[0, "MB"] == 1.23 and frame.loc[0, "texts/s"] == 124
    assert frame.loc[1, "fidelity"] == 0.8555 and math.isnan(frame.loc[1, "macro_f1"])
    assert M.metrics_table({}).empty


def test_definitions_cover_task_and_explanation_metrics():
    from kdcore.explain_metrics import ALL_DEFINITIONS, DEFINITIONS as EXPLANATION
    from kdcore.trust import DEFINITIONS as TRUST

    assert set(M.DEFINITIONS) | set(EXPLANATION) | set(TRUST) == set(ALL_DEFINITIONS)
    assert list(ALL_DEFINITIONS)[0] == "accuracy"  # task metrics first
    assert "fidelity" in M.DEFINITIONS and "spearman" not in M.DEFINITIONS


def test_metrics_table_intervals_and_no_gold_labels():
    metrics = {"models": {
        "teacher": {"role": "teacher", "accuracy": 0.8, "accuracy_ci": [0.4902, 0.9433], "fidelity": 1.0},
        "linear": {"role": "student", "accuracy": 0.7, "fidelity": 0.9, "fidelity_ci": [0.5958, 0.9821]},
    }}
    frame = M.metrics_table(metrics)
    assert list(frame.columns[:6]) == ["model", "role", "accuracy", "accuracy 95% CI", "macro_f1", "fidelity"]
    assert frame.loc[0, "accuracy 95% CI"] == "0.490–0.943" and frame.loc[1, "fidelity 95% CI"] == "0.596–0.982"
    unlabelled = M.metrics_table({"gold_labels": False, "models": {"linear": {"role": "student", "fidelity": 0.9}}})
    assert unlabelled.loc[0, "accuracy"] == M.NO_GOLD_LABELS and unlabelled.loc[0, "macro_f1"] == M.NO_GOLD_LABELS
    assert unlabelled.loc[0, "fidelity"] == 0.9


def test_task_metrics_carry_intervals():
    y = np.array([0, 1, 2] * 20)
    logits = np.eye(3)[np.array([0, 1, 2] * 15 + [1, 2, 0] * 5)]  # 45 of 60 right
    out = M.task_metrics(y, logits, ["a", "b", "c"])
    from kdcore.intervals import wilson

    assert out["accuracy"] == 0.75 and out["accuracy_ci"] == list(wilson(45, 60))
    low, high = out["macro_f1_ci"]
    assert low < out["macro_f1"] < high and high - low < 0.35
