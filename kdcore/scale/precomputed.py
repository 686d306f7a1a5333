"""A run built from precomputed teacher logits (``distill --teacher-logits DIR``): the transfer
set's logits are read from label folders by text hash, after checking that they were made by
this run's teacher (weights, classes, window) and that they cover every transfer text."""

from __future__ import annotations

import numpy as np

from .store import LabelStoreError, PrecomputedLogits

__all__ = ["MISSING_TEXTS_FILE", "transfer_logits_from_folders", "check_same_teacher"]

MISSING_TEXTS_FILE = "missing_teacher_logits.jsonl"


def check_same_teacher(store: PrecomputedLogits, teacher, folders) -> None:
    """Refuse logits of another teacher: other classes, other weights or other window settings."""
    made_by = store.teacher
    where = ", ".join(map(str, folders))
    if len(made_by["label_names"]) != len(teacher.label_names) or made_by["label_names"] != list(teacher.label_names):
        raise LabelStoreError(
            f"The logits in {where} have {len(made_by['label_names'])} classes ({', '.join(made_by['label_names'])}) but "
            f"the run's teacher has {len(teacher.label_names)} ({', '.join(teacher.label_names)}); label with this "
            "run's teacher.")
    if made_by["fingerprint"] != teacher.fingerprint():
        raise LabelStoreError(
            f"The logits in {where} were made by another teacher ({made_by['source']}, weights "
            f"{made_by['fingerprint'][:12]}) than the run's ({teacher.source}, weights {teacher.fingerprint()[:12]}); "
            "label with the run's teacher, or give the teacher that made them (as loaded, no fine-tuning).")
    for key, value in (("max_length", teacher.max_length), ("stride", teacher.config.stride)):
        if made_by[key] != value:
            raise LabelStoreError(f"The logits in {where} were made with {key}={made_by[key]}, the run uses "
                                  f"{key}={value}; use the same window settings.")


def transfer_logits_from_folders(spec, state, writer) -> tuple[np.ndarray, np.ndarray | None]:
    """``(logits, pooled or None)`` of ``state.transfer`` from ``spec.teacher_logits``.

    When some transfer texts have no logits there, they are written to the run's partial folder
    (:data:`MISSING_TEXTS_FILE`, JSON lines) and the build stops saying how to label them.
    """
    folders = spec.teacher_logits
    store = PrecomputedLogits(folders, need_pooled=spec.distill.feature_align > 0)
    check_same_teacher(store, state.teacher, folders)
    texts = state.transfer.texts
    logits, pooled, found = store.lookup(texts)
    if not found.all():
        missing = [{"text": text} for text, hit in zip(texts, found) if not hit]
        path = writer.path / MISSING_TEXTS_FILE
        writer.write_jsonl(MISSING_TEXTS_FILE, missing)
        raise LabelStoreError(
            f"{len(missing)} of {len(texts)} transfer texts have no logits in {', '.join(folders)} (the transfer set "
            "also holds the augmented copies and clauses kd-lens makes from the training texts). They are in "
            f"{path}: label them with `python -m kdcore label {path} --teacher {spec.teacher_source} --out DIR2` and "
            "add `--teacher-logits DIR2`, or build with `--augment-copies 0 --no-clauses` so the transfer set holds "
            "only your data's texts.")
    (writer.path / MISSING_TEXTS_FILE).unlink(missing_ok=True)  # left by an earlier, refused build
    return logits, pooled
