"""A larger transfer set for the token students: new sentences made from the tagged training
sentences, which the teacher then labels (the new sentences carry no gold tags).

- Mention replacement (Dai and Adel, COLING 2020, "An Analysis of Simple Data Augmentation for
  Named Entity Recognition"): each entity span is, with probability ``mention_prob``, swapped for
  another span of the same type drawn from the training sentences (``"at [Paris]"`` ->
  ``"at [New York City]"``), so the students see each context with more mentions.
- Tag-keeping word substitution: each word outside an entity is, with probability ``word_prob``,
  replaced by another such word of the same shape class (lower-case, capitalised, digits, other),
  so the context words vary and the entity spans stay where they were.

Variants equal to a sentence already present are left out. Only the words are returned: the
teacher's labels of them are the students' targets.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from .tasks.token.bio import entities

__all__ = ["mention_replacement", "tag_keeping_substitution", "augment_token_sentences"]


def _shape_class(word: str) -> str:
    if word.isdigit():
        return "digit"
    if word[:1].isupper():
        return "capital"
    return "lower" if word.isalpha() else "other"


def _mention_pool(sentences, tag_names) -> dict[str, list[tuple[str, ...]]]:
    pool: dict[str, set] = defaultdict(set)
    for words, tags in zip(sentences, tag_names):
        for kind, start, end in entities(tags):
            pool[kind].add(tuple(words[start:end]))
    return {kind: sorted(spans) for kind, spans in pool.items()}


def mention_replacement(sentences: Sequence[Sequence[str]], tag_names: Sequence[Sequence[str]], copies: int = 1,
                        mention_prob: float = 0.7, seed: int = 0) -> list[list[str]]:
    """``copies`` variants of each sentence with entities, each entity swapped (with probability
    ``mention_prob``) for another mention of the same type. ``tag_names``: BIO tags per sentence
    (gold, or the teacher's where there is no gold)."""
    _check(sentences, tag_names, copies, mention_prob)
    rng = np.random.default_rng(seed)
    pool = _mention_pool(sentences, tag_names)
    seen = {tuple(map(str, s)) for s in sentences}
    out = []
    for _ in range(copies):
        for words, tags in zip(sentences, tag_names):
            spans = entities(tags)
            if not spans:
                continue
            variant, at = [], 0
            for kind, start, end in spans:
                variant.extend(words[at:start])
                choices = pool[kind]
                if len(choices) > 1 and rng.random() < mention_prob:
                    variant.extend(choices[int(rng.integers(len(choices)))])
                else:
                    variant.extend(words[start:end])
                at = end
            variant.extend(words[at:])
            _keep(variant, seen, out)
    return out


def tag_keeping_substitution(sentences: Sequence[Sequence[str]], tag_names: Sequence[Sequence[str]], copies: int = 1,
                             word_prob: float = 0.15, seed: int = 0) -> list[list[str]]:
    """``copies`` variants of each sentence in which each word tagged ``O`` is, with probability
    ``word_prob``, replaced by another ``O`` word of the same shape class."""
    _check(sentences, tag_names, copies, word_prob)
    rng = np.random.default_rng(seed)
    pool: dict[str, set] = defaultdict(set)
    for words, tags in zip(sentences, tag_names):
        for word, tag in zip(words, tags):
            if tag == "O":
                pool[_shape_class(word)].add(word)
    pools = {k: sorted(v) for k, v in pool.items()}
    seen = {tuple(map(str, s)) for s in sentences}
    out = []
    for _ in range(copies):
        for words, tags in zip(sentences, tag_names):
            draws = rng.random(len(words))
            variant = []
            for word, tag, draw in zip(words, tags, draws):
                choices = pools.get(_shape_class(word), []) if tag == "O" else []
                variant.append(choices[int(rng.integers(len(choices)))] if choices and draw < word_prob else word)
            _keep(variant, seen, out)
    return out


def augment_token_sentences(sentences, tag_names, mention_copies: int = 2, word_copies: int = 1,
                            mention_prob: float = 0.7, word_prob: float = 0.15, seed: int = 0) -> list[list[str]]:
    """Mention-replacement variants, then tag-keeping substitution variants (different seeds), without
    duplicates."""
    out = mention_replacement(sentences, tag_names, mention_copies, mention_prob, seed) if mention_copies else []
    if word_copies:
        seen = {tuple(s) for s in out}
        out += [s for s in tag_keeping_substitution(sentences, tag_names, word_copies, word_prob, seed + 1)
                if tuple(s) not in seen]
    return out


def _check(sentences, tag_names, copies, prob) -> None:
    if len(sentences) != len(tag_names):
        raise ValueError(f"Got {len(sentences)} sentences but {len(tag_names)} tag rows; give one tag row per sentence.")
    if any(len(w) != len(t) for w, t in zip(sentences, tag_names)):
        raise ValueError("Each sentence needs one tag per word; a tag row's length differs from its sentence's.")
    if copies < 0 or not 0 <= prob <= 1:
        raise ValueError(f"copies must be >= 0 and the probability in [0, 1]; got {copies} and {prob}.")


def _keep(variant: list, seen: set, out: list) -> None:
    key = tuple(map(str, variant))
    if key not in seen:
        seen.add(key)
        out.append([str(w) for w in variant])
