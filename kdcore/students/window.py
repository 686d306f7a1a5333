"""Window features of one word in its sentence, as ``nn.EmbeddingBag`` inputs: the token students' featurizer.

A *slot* is one word in context: ``(words of the sentence as a tuple, position)``. Its features
have names a reviewer reads without a key:

- ``w=paris``: the word, lower-cased; ``shape=Xxxx``: its shape (upper ``X``, lower ``x``, digit
  ``d``, other characters as they are; runs longer than 4 cut to 4, as spaCy does: "Rome" is ``Xxxx``,
  "Kensington" ``Xxxxx``,
  "2016" ``dddd``, "@user" ``@xxxx``);
- ``pre2=pa`` / ``suf3=ris``: prefixes and suffixes of 1-3 characters (lower-cased);
- ``w[-2]=in`` ... ``w[+2]=.``: the lower-cased words around it (``<s>`` / ``</s>`` past the ends);
- ``first`` / ``last``: first or last word of the sentence.

Each feature has value 1. The features of ``w[k]=`` come from the word at offset ``k``; all the
others from the word itself (:meth:`WindowFeaturizer.sources` says which, for attribution).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import numpy as np
import torch

from .featurize import FeatureBatch

__all__ = ["WindowFeaturizer", "word_shape", "slot_feature_names", "check_slots", "word_slots", "CONTEXT"]

CONTEXT = (-2, -1, 1, 2)
_OFFSET = re.compile(r"^w\[([+-]\d+)\]=")
_SHAPE_RUNS = re.compile(r"(.)\1{4,}")


def word_shape(word: str) -> str:
    """``Xxxx`` for "Rome", ``Xxxxx`` for "Kensington", ``dd`` for "12", ``@xxxx`` for "@user" (runs cut to 4)."""
    mapped = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in word)
    return _SHAPE_RUNS.sub(lambda m: m.group(1) * 4, mapped)


def slot_feature_names(words: Sequence[str], i: int) -> list[str]:
    """The window features of word ``i`` of ``words`` (see the module docstring), each once."""
    word = words[i]
    lower = word.lower()
    names = [f"w={lower}", f"shape={word_shape(word)}"]
    for n in (1, 2, 3):
        if len(lower) >= n:
            names.append(f"pre{n}={lower[:n]}")
            names.append(f"suf{n}={lower[-n:]}")
    for k in CONTEXT:
        j = i + k
        other = "<s>" if j < 0 else "</s>" if j >= len(words) else words[j].lower()
        names.append(f"w[{k:+d}]={other}")
    if i == 0:
        names.append("first")
    if i == len(words) - 1:
        names.append("last")
    return list(dict.fromkeys(names))


def feature_offset(name: str) -> int:
    """Offset of the word a feature comes from (``w[-1]=x`` -> -1; every other feature -> 0)."""
    match = _OFFSET.match(name)
    return int(match.group(1)) if match else 0


def word_slots(sentences: Sequence[Sequence[str]]) -> list[tuple[tuple[str, ...], int]]:
    """Every word of every sentence as a slot, in order."""
    slots = []
    for words in sentences:
        words = tuple(map(str, words))
        slots.extend((words, i) for i in range(len(words)))
    return slots


def check_slots(slots) -> list:
    if isinstance(slots, (str, tuple)):
        raise ValueError("Pass a list of word slots (words, position); build them with word_slots(sentences).")
    slots = list(slots)
    for k, slot in enumerate(slots):
        if not (isinstance(slot, tuple) and len(slot) == 2 and isinstance(slot[0], tuple) and isinstance(slot[1], int)
                and 0 <= slot[1] < len(slot[0])):
            raise ValueError(f"Slot {k} is not (tuple of words, position in it); build slots with word_slots(sentences).")
    return slots


class WindowFeaturizer:
    """Window features of word slots with a vocabulary of those seen at least ``min_count`` times in ``fit``
    (at most ``max_features``, the most frequent first, ties alphabetical, so ids are deterministic)."""

    def __init__(self, min_count: int = 2, max_features: int = 50_000):
        self.min_count = min_count
        self.max_features = max_features

    def fit(self, slots) -> "WindowFeaturizer":
        if self.min_count < 1 or self.max_features < 1:
            raise ValueError("min_count and max_features must be >= 1.")
        counts: Counter = Counter()
        for words, i in check_slots(slots):
            counts.update(slot_feature_names(words, i))
        kept = sorted(((name, c) for name, c in counts.items() if c >= self.min_count), key=lambda x: (-x[1], x[0]))
        self._set_vocabulary([name for name, _ in kept[: self.max_features]])
        return self

    def _set_vocabulary(self, features: list[str]) -> None:
        self.features_ = list(features)
        self._ids = {name: k for k, name in enumerate(self.features_)}

    @property
    def n_features(self) -> int:
        if not hasattr(self, "features_"):
            raise ValueError("This WindowFeaturizer is not fitted yet; call fit(slots) first.")
        return len(self.features_)

    def slot_ids(self, words: Sequence[str], i: int) -> list[int]:
        """Known feature ids of one slot, sorted."""
        get = self._ids.get
        return sorted(k for k in (get(name) for name in slot_feature_names(words, i)) if k is not None)

    def transform(self, slots) -> FeatureBatch:
        """One bag per slot: its known features, each with value 1, sorted by id."""
        self.n_features  # noqa: B018 - raises when not fitted
        flat: list[int] = []
        offsets: list[int] = []
        for words, i in check_slots(slots):
            offsets.append(len(flat))
            flat.extend(self.slot_ids(words, i))
        indices = torch.tensor(flat, dtype=torch.int64)
        return FeatureBatch(indices, torch.tensor(offsets, dtype=torch.int64), torch.ones(len(flat), dtype=torch.float32))

    def sources(self, feature_ids, words: Sequence[str], i: int) -> np.ndarray:
        """The position in ``words`` each feature of slot ``(words, i)`` comes from (context past the
        sentence's ends is credited to the word itself)."""
        out = []
        for k in np.asarray(feature_ids).tolist():
            j = i + feature_offset(self.features_[k])
            out.append(j if 0 <= j < len(words) else i)
        return np.asarray(out, dtype=np.int64)

    def to_dict(self) -> dict:
        return {"featurizer": "window", "min_count": self.min_count, "max_features": self.max_features,
                "features": list(self.features_)}

    @classmethod
    def from_dict(cls, data: dict) -> "WindowFeaturizer":
        if data.get("featurizer") != "window":
            raise ValueError("This vocab.json was not written by WindowFeaturizer.to_dict().")
        featurizer = cls(min_count=data["min_count"], max_features=data["max_features"])
        featurizer._set_vocabulary(data["features"])
        return featurizer
