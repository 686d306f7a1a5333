"""What every attribution method shares: model access, targets, records, and the model lock.

:func:`model_logits` / :func:`model_proba` run any model (teacher, student, or anything with
``predict_proba``); :func:`resolve_target` turns a target into a class index;
:func:`delete_words` builds a perturbed text; ``_record`` / ``_empty`` build the
:class:`~kdcore.explanation.Explanation`; ``model_lock`` and ``eval_mode`` let threads
explain one shared model safely. Re-exported by :mod:`kdcore.attribution`.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Sequence

import numpy as np
import torch

from ..explanation import Explanation


def delete_words(text: str, spans: Sequence[tuple[int, int]], keep_mask: Sequence[bool]) -> str:
    """The text with the words whose ``keep_mask`` is false deleted.

    The result is rebuilt from the original string: each kept word's characters, and
    between two kept words that were neighbours the original text between them. Where
    words were deleted between two kept words, the original whitespace after the left
    word (else before the right one, else one space) separates them, so kept words never
    fuse: ``split_words`` of the result gives exactly the kept words, in order.

    >>> delete_words("Not good, really.", [(0, 3), (4, 8), (8, 9), (10, 16), (16, 17)],
    ...              [True, False, True, True, True])
    'Not , really.'
    """
    if len(spans) != len(keep_mask):
        raise ValueError(f"delete_words needs one keep flag per span; got {len(spans)} spans and {len(keep_mask)} flags.")
    kept = [i for i, keep in enumerate(keep_mask) if keep]
    if not kept:
        return ""
    parts = [text[spans[kept[0]][0]:spans[kept[0]][1]]]
    for left, right in zip(kept, kept[1:]):
        if right == left + 1:
            gap = text[spans[left][1]:spans[right][0]]
        else:
            after_left = text[spans[left][1]:spans[left + 1][0]]
            before_right = text[spans[right - 1][1]:spans[right][0]]
            gap = next((g for g in (after_left, before_right) if g and g.isspace()), " ")
        parts.append(gap)
        parts.append(text[spans[right][0]:spans[right][1]])
    return "".join(parts)


def _is_teacher(model) -> bool:
    from ..teacher import Teacher

    return isinstance(model, Teacher)


def _is_student(model) -> bool:
    return hasattr(model, "featurizer_") and hasattr(model, "module_")


def model_logits(model, texts: Sequence[str]) -> np.ndarray:
    """Logits [n, classes] of any model: the teacher's and students' own, else ``log p``.

    The teacher's disk cache is bypassed: perturbed texts are never worth caching.
    """
    texts = list(texts)
    if _is_teacher(model):
        return np.asarray(model.predict_logits(texts, use_cache=False), dtype=np.float64)
    if hasattr(model, "predict_logits"):
        return np.asarray(model.predict_logits(texts), dtype=np.float64)
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"{type(model).__name__} has neither predict_logits nor predict_proba; it cannot be explained.")
    probs = np.asarray(model.predict_proba(texts), dtype=np.float64)
    return np.log(np.clip(probs, 1e-12, None))


def model_proba(model, texts: Sequence[str]) -> np.ndarray:
    """Probabilities [n, classes] of any model (the teacher's disk cache bypassed)."""
    texts = list(texts)
    if _is_teacher(model):
        return np.asarray(model.predict_proba(texts, use_cache=False), dtype=np.float64)
    return np.asarray(model.predict_proba(texts), dtype=np.float64)


def resolve_target(model, target, probs: np.ndarray | None = None) -> int:
    """A class index from ``target``: None (the predicted class), an index, or a label name."""
    label_names = list(getattr(model, "label_names", []) or [])
    n_classes = len(label_names) if label_names else (len(probs) if probs is not None else None)
    if target is None:
        if probs is None:
            raise ValueError("target=None needs the model's probabilities to pick the predicted class.")
        return int(np.argmax(probs))
    if isinstance(target, str):
        if target in label_names:
            return label_names.index(target)
        raise ValueError(f"target {target!r} is not a label of {getattr(model, 'name', 'the model')}; "
                         f"choose one of {label_names} or a class index.")
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"target must be None, a class index or a label name, got {target!r}.")
    target = int(target)
    if n_classes is not None and not 0 <= target < n_classes:
        raise ValueError(f"target {target} is out of range: the model has {n_classes} classes (0..{n_classes - 1}).")
    return target


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module):
    """Dropout off while explaining; the module's mode is restored afterwards."""
    was_training = module.training
    if was_training:
        module.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        if was_training:
            module.train()


# One lock per model: eval_mode flips a training module to eval and back, and two threads
# explaining one shared (dashboard) model must not interleave those flips; it also keeps a
# shared teacher from running several heavy Captum passes at once.
_LOCKS: "weakref.WeakKeyDictionary[Any, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


def _record(text, words, scores, target, probs, method, model, delta, warnings) -> Explanation:
    return Explanation(
        text=text, words=[w.text for w in words], spans=[(w.start, w.end) for w in words], scores=scores,
        target=int(target), probs=probs, method=method, model_name=str(getattr(model, "name", type(model).__name__)),
        label_names=list(getattr(model, "label_names", []) or []), convergence_delta=delta, warnings=list(warnings),
    )


def _empty(text, target, probs, method, model) -> Explanation:
    return _record(text, [], np.zeros(0), target, probs, method, model, None,
                   ["the text has no words to attribute (empty or whitespace only)"])
