"""The token task's evaluation: per-word and per-entity metrics of every model on the test sentences
(definitions in :mod:`kdcore.tasks.token.metrics`), and explanation agreement on the teacher's entities."""

from __future__ import annotations

import numpy as np

from ...records import DISTILLED, METRICS_ROLES, MetricsRow
from ...utils import ProgressFn, emit
from .bio import entity_types
from .per_tag import per_tag_report

__all__ = ["evaluate_token_run", "explanation_metrics", "EXPLAIN_ENTITIES"]

# How many of the teacher's test entities the explanation metrics explain by default.
EXPLAIN_ENTITIES = 60


def _speed(predict, sentences) -> float:
    from ...metrics import texts_per_second

    return texts_per_second(predict, sentences, min_seconds=0.5)


def evaluate_token_run(teacher, students: dict, test, teacher_test_logits=None, roles: dict | None = None,
                       twins: dict | None = None, student_dirs: dict | None = None, teacher_dir=None,
                       progress: ProgressFn | None = None, n_boot: int = 2000) -> dict:
    """Every model's metrics on the test sentences (see :mod:`kdcore.tasks.token.metrics` for the definitions):
    word fidelity and entity agreement with the teacher, gold per-type P/R/F1, size and speed; and for each
    distilled student with a label-trained twin (``twins``: {student: twin}, the manifest's), the entity
    agreement F1 margin with a bootstrap interval over the test sentences."""
    from ...metrics import model_bytes
    from .metrics import (bootstrap_f1_difference, decode, entity_counts, entity_scores, f1_interval,
                          model_decode, per_type_report, share_interval, word_fidelity)

    names = list(teacher.label_names)
    if teacher_test_logits is None:
        teacher_test_logits = teacher.predict_word_logits(test.sentences)
    teacher_tags = decode(teacher_test_logits, names)
    gold = [test.tag_names(i) for i in range(len(test))] if test.has_labels else None
    sentences = test.sentences[:200]
    emit(progress, stage="evaluate", model="teacher")
    teacher_speed = _speed(lambda s: teacher.predict_word_logits(s, use_cache=False), sentences)
    rows = {"teacher": MetricsRow("teacher", METRICS_ROLES["teacher"], fidelity=1.0, mean_tvd=0.0,
                                  parameters=int(teacher.n_parameters()), texts_per_second=teacher_speed,
                                  latency_ms=1000 / teacher_speed)}
    rows["teacher"].update({"entity_agreement_f1": 1.0})
    if teacher_dir is not None:
        size = model_bytes(teacher_dir)
        rows["teacher"].update({"bytes": size, "megabytes": size / 1e6})
    tags_of, counts_of = {"teacher": teacher_tags}, {}
    for name, student in students.items():
        emit(progress, stage="evaluate", model=name)
        logits = student.predict_word_logits(test.sentences)
        tags_of[name] = model_decode(student, test.sentences, logits)
        counts_of[name] = entity_counts(teacher_tags, tags_of[name])
        agreement = entity_scores(teacher_tags, tags_of[name])
        fidelity = word_fidelity(tags_of[name], teacher_tags, logits, teacher_test_logits)
        same = [sum(a == b for a, b in zip(s, t)) for s, t in zip(tags_of[name], teacher_tags)]
        row = MetricsRow(name, METRICS_ROLES[(roles or {}).get(name, DISTILLED)], kind=student.config.kind,
                         fidelity=fidelity["word_fidelity"], mean_tvd=fidelity["mean_tvd"],
                         parameters=int(student.n_parameters()),
                         n_nonzero=int(getattr(student, "n_nonzero_", 0)))
        row.update({"entity_agreement_f1": agreement["f1"], "entity_agreement_precision": agreement["precision"],
                    "entity_agreement_recall": agreement["recall"],
                    "entity_agreement_f1_ci": f1_interval(counts_of[name], n_boot=n_boot),
                    "fidelity_ci": share_interval(same, [len(t) for t in teacher_tags], n_boot=n_boot)})
        # a student with its own decoder is timed to its tags (the CRF's marginals are not what it answers with)
        speed = _speed(student.tag if getattr(student, "decodes_itself", False) else student.predict_word_logits,
                       sentences)
        row.update({"texts_per_second": speed, "latency_ms": 1000 / speed, "speedup_vs_teacher": speed / teacher_speed})
        if student_dirs and name in student_dirs:
            size = model_bytes(student_dirs[name])
            row.update({"bytes": size, "megabytes": size / 1e6})
            if rows["teacher"].bytes:
                row.smaller_than_teacher = rows["teacher"].bytes / max(size, 1)
        rows[name] = row
    if gold is not None:
        for name, row in rows.items():
            per_type = per_type_report(gold, tags_of[name])
            micro = next(r for r in per_type if r["type"] == "micro avg")
            correct = [a == b for g, p in zip(gold, tags_of[name]) for a, b in zip(g, p)]
            row.update({"per_type": per_type, "entity_f1": micro["f1"], "entity_precision": micro["precision"],
                        "entity_recall": micro["recall"], "word_accuracy": float(np.mean(correct)),
                        "entity_f1_ci": f1_interval(entity_counts(gold, tags_of[name]), n_boot=n_boot)})
    per_tag = per_tag_report(tags_of, gold, entity_types(names), n_boot=n_boot)
    margins = {}
    for name, twin in (twins or {}).items():
        if name in counts_of and twin in counts_of:
            margins[name] = {"twin": twin, **bootstrap_f1_difference(counts_of[name], counts_of[twin], n_boot=n_boot),
                             "word_fidelity_difference": rows[name].fidelity - rows[twin].fidelity}
    decoding = {name: "crf_viterbi" if getattr(student, "decodes_itself", False) else "bio_viterbi"
                for name, student in students.items()}
    return {"task": "token", "decoding": "bio_viterbi", "student_decoding": decoding, "test_size": len(test),
            "test_words": test.n_words, "models": {name: row.to_dict() for name, row in rows.items()}, "margins": margins,
            "per_tag": per_tag}



def explanation_metrics(teacher, students: dict, sentences, teacher_logits, n_entities: int,
                        progress: ProgressFn | None = None) -> tuple[list[dict], dict]:
    """Explanation agreement on the teacher's first ``n_entities`` entities of ``sentences``: the records (one
    per entity and student) and the ``metrics.json`` block (mean and std of each metric per student)."""
    import pandas as pd

    from .explain import entity_agreement_records
    from .metrics import decode

    tags = decode(teacher_logits, teacher.label_names)
    records = entity_agreement_records(teacher, students, sentences, tags, max_entities=n_entities, progress=progress)
    frame = pd.DataFrame(records)
    summary = []
    for name, group in frame.groupby("model", sort=False) if len(frame) else []:
        row = {"model": name, "method": "integrated_gradients", "n_entities": int(len(group))}
        for metric in ("spearman", "kendall", "top_k_overlap", "sign_agreement"):
            values = pd.to_numeric(group[metric], errors="coerce")
            row[f"{metric}_mean"] = float(values.mean()) if values.notna().any() else float("nan")
            row[f"{metric}_std"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else float("nan")
        summary.append(row)
    block = {"unit": "entity", "sample_size": len(records) // max(len(students), 1),
             "methods": ["integrated_gradients"], "summary": summary}
    return records, block


