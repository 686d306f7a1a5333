"""The token transfer set (training sentences and word-swap variants) and the training of a token student:
distilled on the teacher's word logits, or its label-trained twin on the gold tags."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from ...config import StudentConfig
from ...utils import emit
from ..base import DistillResult

__all__ = ["augment_sentences", "fit_student", "fit_token_twin", "teacher_word_cache", "TWIN_L2_GRID"]


def augment_sentences(sentences: Sequence[Sequence[str]], copies: int, swap_prob: float, seed: int = 0) -> list[list[str]]:
    """``copies`` variants of each sentence in which each word is, with probability ``swap_prob``, replaced by
    a word drawn from all the sentences' words (the teacher labels the variants; they carry no gold tags).
    Variants equal to a sentence already present are left out."""
    rng = np.random.default_rng(seed)
    pool = [w for words in sentences for w in words]
    seen = {tuple(words) for words in sentences}
    out = []
    for _ in range(copies):
        for words in sentences:
            swap = rng.random(len(words)) < swap_prob
            variant = [pool[int(rng.integers(len(pool)))] if s else w for w, s in zip(words, swap)]
            if tuple(variant) not in seen:
                seen.add(tuple(variant))
                out.append(variant)
    return out


# The L2 penalties a linear twin is tried with; the one with the best gold dev entity F1 is kept.
TWIN_L2_GRID = (0.03, 0.1, 0.3, 1.0)


def teacher_word_cache(state):
    """The teacher's per-word readings (:class:`~kdcore.students.token_teacher_features.TokenTeacherCache`),
    one for the whole build, so every student that reads them (a CRF and its twin) runs each distinct word
    and window through the teacher once; on disk beside the n-gram cache (``<cache_dir>/token_words``),
    keyed by the teacher's weights and tokenizer."""
    from ...students.token_teacher_features import TokenTeacherCache

    if "teacher_words" not in state.caches:
        state.caches["teacher_words"] = TokenTeacherCache.of(state.teacher)
    return state.caches["teacher_words"]


def fit_token_twin(config: StudentConfig, corpus, options: dict):
    """The label-trained twin on the gold tags of the training sentences. A linear twin is fitted with each L2
    penalty of TWIN_L2_GRID (its own setting among them) and the one with the best gold entity F1 on the dev
    sentences is kept, so the baseline a distilled student is compared with is a tuned one. A twin that reads
    the teacher's word features (``token_crf``) gets them from ``options["teacher"]``, the distilled
    student's source, so the twin differs from it in its targets alone."""
    from ...students import make_student
    from .metrics import entity_scores

    grid = [config.l2]
    if config.kind == "token_linear" and corpus.dev is not None and corpus.dev.has_labels:
        grid = sorted({config.l2, *TWIN_L2_GRID})
    best, best_f1 = None, -1.0
    for l2 in grid:
        candidate = make_student(StudentConfig.from_dict({**config.to_dict(), "l2": l2}))
        candidate.fit_sentences(corpus.train.sentences, tags=corpus.train.tags, **options)
        f1 = entity_scores(corpus.dev.gold_entities(), candidate.tag(corpus.dev.sentences))["f1"] if len(grid) > 1 else 0.0
        if f1 > best_f1:
            best, best_f1 = candidate, f1
    return best


def fit_student(spec, state, config: StudentConfig, distilled: bool) -> DistillResult:
    """Each distilled student on the teacher's soft labels of the transfer set (gold tags mixed in with
    ``alpha`` where there are), or its label-trained twin on the gold tags of the training sentences. A
    student fitted a sentence at a time with the teacher's word features (``token_crf``) reads them
    from the build's one :func:`teacher_word_cache`."""
    from ...students import SENTENCE_STUDENT_CLASSES, make_student

    started = time.perf_counter()
    corpus, teacher = state.corpus, state.teacher
    options = {"label_names": list(teacher.label_names), "progress": state.progress, "device": state.device}
    if config.kind in SENTENCE_STUDENT_CLASSES:  # reads the teacher's words, reporting (done, total) of them
        options["teacher"] = teacher_word_cache(state)
        options["progress"] = lambda done, total: emit(state.progress, stage="student_fit", student=config.name,
                                                       done=done, total=total, message="teacher word features")
    if distilled:
        student = make_student(config)
        gold = None
        if spec.distill.alpha > 0 and corpus.train.has_labels:  # gold where there is, -1 on the variants
            gold = list(corpus.train.tags) + [np.full(len(s), -1) for s in state.transfer[len(corpus.train):]]
        student.fit_sentences(state.transfer, teacher_logits=state.transfer_logits, tags=gold,
                              distill=spec.distill, **options)
    else:
        student = fit_token_twin(config, corpus, options)
    return DistillResult(student, getattr(student, "history_", []), time.perf_counter() - started, distilled)
