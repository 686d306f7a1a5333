"""The BIO tag scheme, named once: entity spans of a tag sequence, IOB1 -> BIO conversion, which
tag may follow which, and the BIO-constrained Viterbi decoding every token model is read with.

Tags are strings ``"O"``, ``"B-<type>"`` or ``"I-<type>"``. A sequence is *valid* when every
``I-x`` follows ``B-x`` or ``I-x`` (of the same type).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["entity_type", "is_valid_tag", "is_valid_sequence", "entities", "iob1_to_bio", "allowed_transitions",
           "viterbi_bio", "entity_types"]


def is_valid_tag(tag: str) -> bool:
    """``O``, or ``B-``/``I-`` followed by a non-empty type."""
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def entity_type(tag: str) -> str | None:
    """The type of a B-/I- tag; None for ``O``."""
    return None if tag == "O" else tag[2:]


def entity_types(label_names: Sequence[str]) -> list[str]:
    """The entity types of a tag set, sorted."""
    return sorted({tag[2:] for tag in label_names if tag != "O"})


def _may_follow(previous: str | None, tag: str) -> bool:
    """May ``tag`` come after ``previous`` (None = sentence start) in a valid BIO sequence?"""
    if not tag.startswith("I-"):
        return True
    return previous is not None and previous != "O" and previous[2:] == tag[2:]


def is_valid_sequence(tags: Sequence[str]) -> bool:
    """True when no ``I-x`` follows ``O``, the sentence start, or a tag of another type."""
    previous = None
    for tag in tags:
        if not is_valid_tag(tag) or not _may_follow(previous, tag):
            return False
        previous = tag
    return True


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity spans ``(type, start, end)`` (end exclusive) of a tag sequence.

    A ``B-x`` starts an entity that ``I-x`` tags continue; an ``I-x`` that cannot continue (after
    ``O`` or another type) starts one too, as in conlleval and seqeval's default mode. On a valid
    sequence both readings agree.
    """
    spans: list[tuple[str, int, int]] = []
    current: list | None = None
    for i, tag in enumerate(tags):
        kind = entity_type(tag)
        continues = current is not None and tag.startswith("I-") and kind == current[0]
        if continues:
            current[2] = i + 1
            continue
        if current is not None:
            spans.append(tuple(current))
            current = None
        if kind is not None:
            current = [kind, i, i + 1]
    if current is not None:
        spans.append(tuple(current))
    return spans


def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    """IOB1 (``B-x`` only between two adjacent entities of one type) to BIO (IOB2): an ``I-x`` that
    starts an entity becomes ``B-x``."""
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def allowed_transitions(label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(start [C], transition [C, C])`` booleans: which tag may open a sentence, and
    ``transition[i, j]``: may tag ``j`` follow tag ``i``."""
    start = np.array([_may_follow(None, tag) for tag in label_names], dtype=bool)
    transition = np.array([[_may_follow(prev, tag) for tag in label_names] for prev in label_names], dtype=bool)
    return start, transition


def viterbi_bio(scores: np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """The highest-scoring *valid* BIO tag sequence of one sentence.

    ``scores`` ``[n_words, C]`` are per-word log-probabilities (or any additive scores); the path
    maximises their sum over the sequences in which no ``I-x`` follows ``O``, ``B-y``/``I-y`` of
    another type, or the sentence start. Needs ``O`` among ``label_names`` (so a valid path always
    exists). Returns the tag ids ``[n_words]``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(label_names):
        raise ValueError(f"scores must be [n_words, {len(label_names)}]; got {scores.shape}.")
    if "O" not in label_names:
        raise ValueError("BIO decoding needs an 'O' tag among the label names.")
    n = scores.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values.")
    start, transition = allowed_transitions(label_names)
    blocked = np.where(transition, 0.0, -np.inf)  # [prev, next]
    best = np.where(start, scores[0], -np.inf)
    back = np.zeros((n, len(label_names)), dtype=np.int64)
    for i in range(1, n):
        candidates = best[:, None] + blocked  # [prev, next]
        back[i] = candidates.argmax(axis=0)
        best = candidates[back[i], np.arange(len(label_names))] + scores[i]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(best.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path
