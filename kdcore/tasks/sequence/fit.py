"""Training a sequence student: distilled from the teacher's logits of the transfer set, or its
label-trained twin on the gold labels."""

from __future__ import annotations

import logging
import time

import numpy as np

from ...config import DistillConfig, StudentConfig
from ...utils import ProgressFn, emit
from ..base import DistillResult

__all__ = ["distill", "fit_label_twin", "fit_student", "make_student_for"]

logger = logging.getLogger(__name__)


def make_student_for(config: StudentConfig, teacher=None, progress: ProgressFn | None = None):
    from ...students import make_student

    return with_teacher(make_student(config), teacher, progress)


def with_teacher(student, teacher, progress: ProgressFn | None = None):
    """Hand the teacher to a student that reads the teacher's view of its n-grams (``use_teacher``); its passes
    over new n-grams (the vocabulary's in training, unseen ones when it predicts) report to ``progress``."""
    if teacher is not None and hasattr(student, "use_teacher"):
        student.use_teacher(teacher)
        if progress is not None:
            student.ngram_cache_.progress = lambda done, total: emit(progress, stage="ngram_features",
                                                                     student=student.name, done=done, total=total)
    return student


def distill(teacher, student, dataset, config: DistillConfig | None = None, teacher_logits: np.ndarray | None = None,
            teacher_hidden: np.ndarray | None = None, teacher_attributions=None, progress: ProgressFn | None = None,
            device: str | None = None) -> DistillResult:
    """Train ``student`` to imitate ``teacher`` on the texts of ``dataset`` (a transfer set).

    Teacher logits come from ``teacher_logits`` when given, else from the teacher (and its
    on-disk cache). Gold labels of the dataset, where present, are mixed in with ``alpha``.
    """
    config = config or DistillConfig()
    texts = list(dataset.texts)
    if teacher_logits is None:
        if config.feature_align > 0 and teacher_hidden is None:
            teacher_logits, teacher_hidden = teacher.predict_logits(texts, return_pooled=True, progress=progress)
        else:
            teacher_logits = teacher.predict_logits(texts, progress=progress)
    labels = np.asarray(dataset.labels) if getattr(dataset, "labels", None) is not None else None
    started = time.perf_counter()
    if getattr(student, "ngram_cache_", False) is None:  # reads the teacher's n-grams and has none yet
        with_teacher(student, teacher)
    student.fit(texts, teacher_logits=teacher_logits, labels=labels if config.alpha > 0 else None,
                label_names=list(teacher.label_names), distill=config, teacher_hidden=teacher_hidden,
                teacher_attributions=teacher_attributions, progress=progress, device=device)
    return DistillResult(student, getattr(student, "history_", []), time.perf_counter() - started, True)


def fit_label_twin(config: StudentConfig, texts, labels, label_names, dev, progress, device, teacher=None):
    """The label-trained twin: the same student on gold labels only. A linear student with
    ``solver="auto"`` is trained with both solvers (L-BFGS to convergence, and Adam for
    ``max_steps``, which stops early in effect) and the one with the higher dev accuracy is kept, so
    the baseline a distilled student is compared with is the stronger of the two."""
    from ... import metrics as M

    # The solver choice on dev is for the plain linear students (aug_linear always uses L-BFGS).
    if not (config.kind in ("linear", "token_linear") and config.solver == "auto" and dev is not None
            and dev.has_labels):
        return make_student_for(config, teacher, progress).fit(texts, labels=labels, label_names=label_names,
                                                            progress=progress, device=device)
    best, best_accuracy = None, -1.0
    for solver in ("lbfgs", "adam"):
        candidate = StudentConfig.from_dict({**config.to_dict(), "solver": solver})
        student = make_student_for(candidate).fit(texts, labels=labels, label_names=label_names, progress=progress,
                                               device=device)
        accuracy = M.accuracy(dev.labels, student.predict_logits(list(dev.texts)).argmax(axis=1))
        logger.info("label twin %s with %s: dev accuracy %.4f", config.name, candidate.solver, accuracy)
        if accuracy > best_accuracy:
            best, best_accuracy = student, accuracy
    return best




def fit_student(spec, state, config: StudentConfig, distilled: bool) -> DistillResult:
    """One planned student of a build: distilled on the transfer set, or the label twin on its gold texts."""
    transfer = state.transfer
    if distilled:
        return distill(state.teacher, make_student_for(config, state.teacher, state.progress), transfer, spec.distill,
                       teacher_logits=state.transfer_logits, teacher_hidden=state.transfer_hidden,
                       teacher_attributions=state.teacher_attributions, progress=state.progress, device=state.device)
    started = time.perf_counter()
    gold = transfer.labels >= 0
    student = fit_label_twin(config, [t for t, g in zip(transfer.texts, gold) if g], transfer.labels[gold],
                             list(state.teacher.label_names), state.corpus.dev, state.progress, state.device,
                             teacher=state.teacher)
    return DistillResult(student, getattr(student, "history_", []), time.perf_counter() - started, False)
