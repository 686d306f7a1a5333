"""The sequence task's evaluation: task metrics, fidelity and compression of every model with 95%
intervals, and the checks that read them (a teacher no better than the majority class, a label-trained
student more accurate than the teacher)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ...records import DISTILLED, LABEL_TRAINED, METRICS_ROLES, MetricsRow
from ...utils import ProgressFn, emit, stage_events

__all__ = ["evaluate_run", "teacher_findings", "teacher_beaten_findings"]


def evaluate_run(teacher, students: dict, test, teacher_test_logits: np.ndarray | None = None,
                 speed_texts: Sequence[str] | None = None, student_dirs: dict | None = None,
                 teacher_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                 roles: dict | None = None, twins: dict | None = None) -> dict:
    """Task metrics, fidelity and compression of the teacher and each student on ``test``, with 95%
    intervals (:mod:`kdcore.intervals`).

    ``roles`` maps a student's name to ``"distilled"`` or ``"label-trained"`` (default: distilled);
    ``twins`` maps a distilled student to its label-trained twin, whose fidelity it is compared with
    on the same texts. ``models`` in the result holds one :class:`~kdcore.records.MetricsRow` dict per
    model; ``gold_labels`` says whether the test split has labels (accuracy needs them).
    """
    from ... import metrics as M

    label_names = list(teacher.label_names)
    if teacher_test_logits is None:
        teacher_test_logits = teacher.predict_logits(test.texts, progress=progress)
    speed_texts = list(speed_texts or test.texts[:500])
    total = 1 + len(students)  # every model's metrics (their intervals included), counted as they finish
    emit(progress, stage="evaluate", model="teacher", done=0, total=total)
    teacher_speed = M.texts_per_second(lambda texts: teacher.predict_logits(texts, use_cache=False), speed_texts,
                                       min_seconds=0.5)
    teacher_row = MetricsRow("teacher", METRICS_ROLES["teacher"], fidelity=1.0, mean_tvd=0.0,
                             parameters=int(teacher.n_parameters()), texts_per_second=teacher_speed,
                             latency_ms=1000 / teacher_speed)
    if teacher_dir is not None:
        size = M.model_bytes(teacher_dir)
        teacher_row.update({"bytes": size, "megabytes": size / 1e6})
    if test.labels is not None:
        teacher_row.update(M.task_metrics(test.labels, teacher_test_logits, label_names))
    rows = [teacher_row]
    agreements = {}
    for done, (name, student) in enumerate(students.items(), start=1):
        emit(progress, stage="evaluate", model=name, done=done, total=total)
        logits = student.predict_logits(test.texts)
        agreements[name] = logits.argmax(1) == np.asarray(teacher_test_logits).argmax(1)
        row = MetricsRow(name, METRICS_ROLES[(roles or {}).get(name, DISTILLED)], kind=student.config.kind)
        row.update(M.fidelity(logits, teacher_test_logits))
        if test.labels is not None:
            row.update(M.task_metrics(test.labels, logits, label_names))
        row.update(M.compression(student, speed_texts, directory=(student_dirs or {}).get(name), min_seconds=0.5))
        row.n_nonzero = int(getattr(student, "n_nonzero_", row.parameters))
        row.speedup_vs_teacher = row.texts_per_second / teacher_speed
        if teacher_row.bytes is not None:
            row.smaller_than_teacher = teacher_row.bytes / max(row.bytes, 1)
        rows.append(row)
    emit(progress, stage="evaluate", model=None, done=total, total=total)
    _twin_margins(rows, twins or {}, agreements, progress)
    return {"test_size": len(test), "gold_labels": test.labels is not None,
            "models": {row.name: row.to_dict() for row in rows}}


def _twin_margins(rows: list, twins: dict, agreements: dict, progress: ProgressFn | None) -> None:
    """Each distilled student's fidelity over its label-trained twin on the same texts, with a bootstrap interval."""
    from ...intervals import paired_difference

    pairs = [(row, twins[row.name]) for row in rows if twins.get(row.name) in agreements and row.name in agreements]
    with stage_events(progress, "evaluate_intervals", total=len(pairs)):
        for done, (row, twin) in enumerate(pairs, start=1):
            row.fidelity_over_twin = {"twin": twin, **paired_difference(agreements[row.name], agreements[twin])}
            emit(progress, stage="evaluate_intervals", model=row.name, done=done, total=len(pairs))


def teacher_findings(teacher_entry: dict, corpus) -> list[dict]:
    """A teacher that does no better than always answering the majority class is probably not the
    teacher meant (an untrained head, the wrong folder, labels that do not match): say so loudly."""
    from ...labels import majority_accuracy

    found = []
    for split, key in (("dev", "dev_accuracy"), ("test", "accuracy")):
        data, accuracy = getattr(corpus, split, None), teacher_entry.get(key)
        if data is None or data.labels is None or accuracy is None:
            continue
        baseline = majority_accuracy(data.labels)
        if accuracy <= baseline:
            found.append({"level": "warning", "message": (
                f"The teacher's {split} accuracy ({accuracy:.3f}) is no better than always answering the most "
                f"frequent class ({baseline:.3f}): it is probably not the teacher you meant (untrained head, wrong "
                "folder, or labels that do not match its classes). Its students imitate that.")})
    return found


def teacher_beaten_findings(models: dict) -> list[dict]:
    """A student trained on the gold labels alone that is clearly more accurate than the teacher (their
    95% intervals do not overlap) says the teacher is undertrained or not the one meant: its distilled
    students would faithfully copy the weaker model."""
    teacher = models.get("teacher", {})
    low_high = teacher.get("accuracy_ci")
    found = []
    for name, entry in models.items():
        ci = entry.get("accuracy_ci")
        if name == "teacher" or entry.get("role") != METRICS_ROLES[LABEL_TRAINED] or not ci or not low_high:
            continue
        if ci[0] > low_high[1]:
            found.append({"level": "warning", "check": "teacher_beaten", "message": (
                f"The label-trained student {name} is more accurate than the teacher on the test split "
                f"({entry['accuracy']:.3f} vs {teacher['accuracy']:.3f}; 95% intervals {ci[0]:.3f}–{ci[1]:.3f} and "
                f"{low_high[0]:.3f}–{low_high[1]:.3f}): the teacher is probably undertrained for this data (fine-tune "
                "it longer: --teacher-epochs) or not the teacher you meant. Its distilled students copy the weaker model.")})
    return found


