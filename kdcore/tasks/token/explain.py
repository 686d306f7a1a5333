"""Word attributions for one word's tag: the token task's explanations, as :class:`~kdcore.explanation.Explanation`
records on the same words for every model, so that the agreement metrics of :mod:`kdcore.explain_metrics`
and the one highlight renderer apply unchanged.

- teacher: integrated gradients (Captum, on the word embeddings, [PAD] baseline keeping [CLS]/[SEP], the
  same settings as :func:`kdcore.attribution.explain`) of the tag's logit at the word's first wordpiece,
  wordpieces summed into their words;
- students: each window feature's exact share of the tag's logit (gradient x value; for the linear
  student exactly its weight), credited to the word the feature comes from
  (:meth:`~kdcore.students.token._TokenStudent.word_contributions`).

A word's *text* is the sentence's words joined by single spaces, the spans their places in it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...attribution import DEFAULT_OPTIONS
from ...attribution.common import eval_mode, model_lock
from ...attribution.gradients import run_ig, teacher_tensors
from ...explanation import Explanation
from .metrics import log_softmax

__all__ = ["sentence_spans", "teacher_word_explanation", "student_word_explanation", "word_explanations",
           "entity_agreement_records", "TEACHER_METHOD"]

TEACHER_METHOD = "integrated_gradients"


def sentence_spans(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentence as one text (words joined by spaces) and each word's character span in it."""
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def _record(words, scores, target, probs, method, model, delta=None, warnings=()) -> Explanation:
    text, spans = sentence_spans(words)
    return Explanation(text=text, words=list(words), spans=spans, scores=scores, target=int(target), probs=probs,
                       method=method, model_name=str(getattr(model, "name", type(model).__name__)),
                       label_names=list(model.label_names), convergence_delta=delta, warnings=list(warnings))


def teacher_word_explanation(teacher, words: Sequence[str], position: int, target: int | None = None,
                             n_steps: int = 32) -> Explanation:
    """Integrated gradients of the teacher's logit for tag ``target`` (default: its top tag) at word
    ``position``, summed into words (words outside the window that reads the word get 0)."""
    from captum.attr import IntegratedGradients

    words = [str(w) for w in words]
    if not 0 <= position < len(words):
        raise ValueError(f"position {position} is outside the sentence's {len(words)} words.")
    windows = teacher._windows(teacher._word_pieces([words])[0])
    ids, firsts, _, piece_words = next(w for w in windows if position in w[2])
    piece = firsts.index(position)
    input_ids, baseline_ids, attention = teacher_tensors(teacher, [{"input_ids": ids}], "pad")
    model = teacher.model
    embeddings = model.get_input_embeddings()

    def forward(inputs_embeds, attention_mask):
        return model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).logits[:, piece, :].float()

    opts = {**DEFAULT_OPTIONS, "n_steps": n_steps}
    warnings: list[str] = []
    with model_lock(teacher), eval_mode(model):
        with torch.no_grad():
            input_embeds = embeddings(input_ids).detach()
            baseline_embeds = embeddings(baseline_ids).detach()
            logits = forward(torch.cat([input_embeds, baseline_embeds]), torch.cat([attention, attention]))
        probs = np.exp(log_softmax(logits[0].double().cpu().numpy()))
        target = int(probs.argmax()) if target is None else int(target)
        gap = logits[:1, target] - logits[1:, target]
        attributions, delta = run_ig(IntegratedGradients(forward), input_embeds, baseline_embeds, target,
                                      (attention,), gap, opts, warnings)
    piece_scores = attributions.detach().sum(-1)[0].double().cpu().numpy()
    scores = np.zeros(len(words))
    for k, word in enumerate(piece_words):
        if word >= 0:
            scores[word] += piece_scores[k]
    return _record(words, scores, target, probs, TEACHER_METHOD, teacher, delta, warnings)


def student_word_explanation(student, words: Sequence[str], position: int, target: int) -> Explanation:
    """A token student's exact feature contributions to tag ``target`` at word ``position``, per word."""
    words = [str(w) for w in words]
    logits = student.predict_word_logits([words])[0][position]
    method = "weights" if student.config.kind in ("token_linear", "token_crf") else "gradient_x_input"
    return _record(words, student.word_contributions(words, position, target), target,
                   np.exp(log_softmax(logits)), method, student)


def word_explanations(teacher, students: dict, words: Sequence[str], position: int, target: int | None = None,
                      n_steps: int = 32) -> dict[str, Explanation]:
    """``{"teacher": ..., student name: ...}`` for one word, every model for the same tag (default: the
    teacher's top tag at that word)."""
    out = {"teacher": teacher_word_explanation(teacher, words, position, target, n_steps=n_steps)}
    target = out["teacher"].target
    for name, student in students.items():
        out[name] = student_word_explanation(student, words, position, target)
    return out


def entity_agreement_records(teacher, students: dict, sentences, teacher_tags, max_entities: int = 100,
                             n_steps: int = 32, k_fraction: float = 0.2, progress=None) -> list[dict]:
    """Agreement (Spearman, Kendall, top-k overlap, sign agreement) between the teacher's IG and each student's
    contributions, on the first word of each of the teacher's entities (the first ``max_entities`` in
    sentence order), for the teacher's tag there. One dict per (entity, student)."""
    from .bio import entities
    from ...explain_metrics import agreement
    from ...utils import emit

    chosen = [(i, start, kind) for i, tags in enumerate(teacher_tags) for kind, start, _ in entities(tags)]
    chosen = chosen[:max_entities]
    index = {name: k for k, name in enumerate(teacher.label_names)}
    rows = []
    for done, (i, start, kind) in enumerate(chosen):
        words = sentences[i]
        explained = word_explanations(teacher, students, words, start, index[teacher_tags[i][start]], n_steps=n_steps)
        for name in students:
            rows.append({"sentence": i, "word": start, "type": kind, "model": name,
                         **agreement(explained["teacher"], explained[name], k_fraction=k_fraction)})
        emit(progress, stage="explain_eval", done=done + 1, total=len(chosen))
    return rows
