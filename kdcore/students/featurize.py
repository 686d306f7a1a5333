"""The shared featurizer of the students: words, word pairs and (optionally) word triples as
``nn.EmbeddingBag`` inputs.

Words are those of :func:`kdcore.words.split_words` (the teacher's own pre-tokenizer words,
lower-cased, accents stripped); a text becomes a *bag* of (feature id, value) pairs fed to
``nn.EmbeddingBag(mode="sum", per_sample_weights=values)``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..words import Word, normalize_word, split_words, word_pattern
from .word_ids import WordIds

__all__ = ["FeatureBatch", "Featurizer"]

NGRAM_MAX = 3  # the longest n-gram a featurizer can use: words, adjacent pairs, adjacent triples


class FeatureBatch(NamedTuple):
    """Bags of features for ``nn.EmbeddingBag``: the features of text ``i`` are
    ``indices[offsets[i]:offsets[i+1]]`` with values ``values[...]`` (the last text runs to
    the end). ``module(*batch)`` gives logits."""

    indices: torch.Tensor
    offsets: torch.Tensor
    values: torch.Tensor

    @property
    def n_texts(self) -> int:
        return int(self.offsets.numel())

    def to(self, device) -> "FeatureBatch":
        return FeatureBatch(self.indices.to(device), self.offsets.to(device), self.values.to(device))


class _NormCache(dict):
    """raw token -> normalised word, computed on first sight (``normalize_word`` semantics)."""

    def __init__(self, lowercase: bool):
        super().__init__()
        self.lowercase = lowercase
        self.saw_empty = False

    def __missing__(self, raw: str) -> str:
        norm = normalize_word(raw, self.lowercase)
        if not norm:
            # split_words drops words that normalise to nothing (control characters);
            # the fast path must then filter them too, or pairs and triples would differ.
            self.saw_empty = True
        if len(self) < 1_000_000:
            self[raw] = norm
        return norm


class Featurizer:
    """Words and word n-grams of :func:`kdcore.words.split_words`, as EmbeddingBag inputs.

    Parameters
    ----------
    ngram_max: 1 for words only, 2 for words and adjacent word pairs (feature name ``"w1 w2"``),
        3 for those and adjacent word triples (``"w1 w2 w3"``).
    min_count: a feature is kept when it occurs in at least this many texts of ``fit``
        (document frequency: a word repeated inside one text counts once, so one long text
        cannot fill the vocabulary with its own quirks).
    max_features: vocabulary size cap; the most frequent features are kept, ties broken
        alphabetically, so the vocabulary (and feature ids) are deterministic.
    weighting: the value of a feature that occurs ``c`` times in a text: ``"count"`` -> c,
        ``"log"`` -> log(1 + c), ``"tfidf"`` -> c * idf with smooth idf
        ``ln((1 + n) / (1 + df)) + 1`` (no length normalisation, so a feature's value depends
        only on its own count and a linear student's word score stays weight x value).
    lowercase: lower-case and strip accents (as an uncased BERT tokenizer does).

    Unknown features are skipped; a text with no known feature is an empty bag.
    """

    def __init__(self, ngram_max: int = 2, min_count: int = 2, max_features: int = 50_000,
                 weighting: str = "log", lowercase: bool = True):
        self.ngram_max = ngram_max
        self.min_count = min_count
        self.max_features = max_features
        self.weighting = weighting
        self.lowercase = lowercase

    # -- vocabulary -------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.ngram_max not in range(1, NGRAM_MAX + 1):
            raise ValueError(f"ngram_max must be 1, 2 or 3, got {self.ngram_max}.")
        if self.weighting not in ("count", "log", "tfidf"):
            raise ValueError(f"weighting={self.weighting!r} is not valid; choose one of count, log, tfidf.")
        if self.min_count < 1 or self.max_features < 1:
            raise ValueError("min_count and max_features must be >= 1.")

    def _words_fast(self, text: str) -> list[str]:
        norm = self._norm_cache
        findall = self._findall_ascii if text.isascii() else self._findall
        words = list(map(norm.__getitem__, findall(text)))
        if norm.saw_empty:
            words = [w for w in words if w]
        return words

    def _setup_fast_path(self) -> None:
        self._findall = word_pattern().findall
        self._findall_ascii = _ascii_word_pattern().findall
        self._norm_cache = _NormCache(self.lowercase)

    def fit(self, texts: Sequence[str]) -> "Featurizer":
        """Build the vocabulary (and idf) from ``texts``."""
        self._check_params()
        texts = _check_texts(texts)
        self._setup_fast_path()
        doc_freq: Counter = Counter()
        for text in texts:
            doc_freq.update(self._distinct_keys(self._words_fast(text)))
        kept = [(key, df) for key, df in doc_freq.items() if df >= self.min_count]
        kept.sort(key=lambda item: (-item[1], _feature_name(item[0])))
        kept = kept[: self.max_features]
        n_docs = len(texts)
        features = [_feature_name(key) for key, _ in kept]
        idf = [math.log((1 + n_docs) / (1 + df)) + 1.0 for _, df in kept]
        self._set_vocabulary(features, idf, n_docs)
        return self

    def _distinct_keys(self, words: list[str]) -> set:
        """The features one text of ``words`` holds, each once: words as ``str``, adjacent pairs
        and triples (up to ``ngram_max``) as tuples (document frequency counts these)."""
        keys = set(words)
        if self.ngram_max >= 2 and len(words) > 1:
            keys.update(zip(words, words[1:]))
            if self.ngram_max >= 3 and len(words) > 2:
                keys.update(zip(words, words[1:], words[2:]))
        return keys

    def _set_vocabulary(self, features: list[str], idf: list[float], n_docs: int) -> None:
        self.features_ = list(features)
        self.idf_ = np.asarray(idf, dtype=np.float32)
        self.n_fit_texts_ = int(n_docs)
        self._unigram_ids: dict[str, int] = {}
        self._bigram_ids: dict[tuple[str, str], int] = {}
        self._trigram_ids: dict[tuple[str, str, str], int] = {}
        for index, name in enumerate(self.features_):
            self._register(name, index)
        self._word_ids_ = None
        if not hasattr(self, "_findall"):
            self._setup_fast_path()

    def _parts(self, name: str) -> list[str]:
        parts = name.split(" ")
        if len(parts) > self.ngram_max or not all(parts):
            raise ValueError(f"Feature {name!r} is not a word or up to {self.ngram_max} words joined by single "
                             f"spaces (ngram_max={self.ngram_max}).")
        return parts

    def _table(self, parts: list[str]) -> tuple[dict, object]:
        """The lookup table of a feature of ``parts`` and its key there."""
        if len(parts) == 1:
            return self._unigram_ids, parts[0]
        return (self._bigram_ids if len(parts) == 2 else self._trigram_ids), tuple(parts)

    def _register(self, name: str, index: int) -> None:
        table, key = self._table(self._parts(name))
        table[key] = index

    def _is_known(self, name: str) -> bool:
        table, key = self._table(self._parts(name))
        return key in table

    def unknown_features(self, texts: Sequence[str]) -> list[str]:
        """The words (and word pairs, triples) of ``texts`` that are not in the vocabulary,
        sorted, each once, named as :attr:`features_` names them."""
        self._check_fitted()
        unknown: set[str] = set()
        use_bigrams, use_trigrams = self.ngram_max >= 2, self.ngram_max >= 3
        for text in _check_texts(texts):
            words = self._words_fast(text)
            unknown.update(w for w in words if w not in self._unigram_ids)
            if use_bigrams:
                unknown.update(f"{a} {b}" for a, b in zip(words, words[1:]) if (a, b) not in self._bigram_ids)
            if use_trigrams:
                unknown.update(f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:])
                               if (a, b, c) not in self._trigram_ids)
        return sorted(unknown)

    def add_features(self, names: Sequence[str]) -> None:
        """Append features (named as :attr:`features_` names them) to the vocabulary, after the
        existing ids; a name already there is refused. Their idf is that of a feature no
        fitted text contained."""
        self._check_fitted()
        names = list(names)
        clash = [n for n in names if self._is_known(n)]
        if clash or len(set(names)) != len(names):
            raise ValueError(f"add_features got names already in the vocabulary or repeated: {clash[:5]}.")
        unseen_idf = math.log(1 + self.n_fit_texts_) + 1.0
        start = len(self.features_)
        self.features_.extend(names)
        self.idf_ = np.concatenate([self.idf_, np.full(len(names), unseen_idf, dtype=np.float32)])
        for index, name in enumerate(names, start):
            self._register(name, index)
        lookup = getattr(self, "_word_ids_", None)
        if lookup is not None and not lookup.extend(names, start):
            self._word_ids_ = None  # no room left in its keys: rebuilt over the grown vocabulary on next use

    @property
    def n_features(self) -> int:
        self._check_fitted()
        return len(self.features_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise ValueError("This Featurizer is not fitted yet; call fit(texts) first.")

    # -- transform --------------------------------------------------------------------

    def _values_from_counts(self, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        # One function (float32 throughout) for transform and occurrences, so the two agree
        # to the bit.
        counts = counts.astype(np.float32)
        if self.weighting == "count":
            return counts
        if self.weighting == "log":
            return np.log1p(counts)
        return counts * self.idf_[ids]

    def transform(self, texts: Sequence[str]) -> FeatureBatch:
        """Featurize ``texts`` into one :class:`FeatureBatch` (one bag per text, each distinct
        feature once, sorted by feature id)."""
        self._check_fitted()
        texts = _check_texts(texts)
        use_bigrams = self.ngram_max >= 2 and bool(self._bigram_ids)
        use_trigrams = self.ngram_max >= 3 and bool(self._trigram_ids)
        ids, rows = self._word_ids().feature_ids(texts, use_bigrams, use_trigrams)
        return self._aggregate(ids, rows, len(texts))

    def _word_ids(self) -> WordIds:
        # Built on first use: the token tables of the vocabulary and a cache of chunk ids.
        if getattr(self, "_word_ids_", None) is None:
            self._word_ids_ = WordIds(self.features_, self.lowercase, self._findall, self._findall_ascii)
        return self._word_ids_

    def _aggregate(self, ids: np.ndarray, rows: np.ndarray, n_texts: int) -> FeatureBatch:
        # numpy, not torch: these ops are single-threaded in numpy, while torch's intra-op
        # threads make them many times slower when the cores are busy with other work.
        n_features = len(self.features_)
        # One key per (text, feature); sorting the keys both orders them by text then id and
        # puts repeats side by side to be counted (np.unique's result; the stable sort is the
        # faster one here, as the keys arrive ordered by text).
        keys = np.sort(rows * n_features + ids, kind="stable")
        first = np.ones(keys.size, dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=keys.size)
        keys = keys[starts]
        rows = keys // n_features
        ids = keys - rows * n_features
        offsets = np.zeros(n_texts, dtype=np.int64)
        if n_texts > 1:
            offsets[1:] = np.cumsum(np.bincount(rows, minlength=n_texts))[:-1]
        values = self._values_from_counts(ids, counts)
        return FeatureBatch(torch.from_numpy(ids), torch.from_numpy(offsets), torch.from_numpy(values))

    def fit_transform(self, texts: Sequence[str]) -> FeatureBatch:
        return self.fit(texts).transform(texts)

    def occurrences(self, text: str) -> tuple[list[Word], torch.Tensor, torch.Tensor, list[tuple[int, ...]]]:
        """The known features of one text and the words each one covers.

        Returns ``(words, feature_ids [m], values [m], word_index)``, one entry per distinct
        feature (in order of first occurrence), ``values`` exactly as :meth:`transform` gives
        them, and ``word_index[k]`` the positions in ``words`` that feature ``k`` covers, one
        entry per covered word per occurrence: a unigram at positions 2 and 5 -> ``(2, 5)``;
        a bigram at 3 -> ``(3, 4)``; the bigram "very very" in "very very very" -> ``(0, 1, 1, 2)``;
        a trigram at 3 -> ``(3, 4, 5)``.

        Attribution splits a feature's score equally over the entries of its ``word_index``
        (a position listed twice gets two shares). So a unigram that occurs twice gives each
        of its two words half of its score, each occurrence of a bigram gives half of its
        share to each of its two words, and each occurrence of a trigram a third of its share
        to each of its three words.
        """
        self._check_fitted()
        words = split_words(text, self.lowercase)
        tokens = [w.text for w in words]
        positions: dict[int, list[int]] = {}
        use_bigrams, use_trigrams = self.ngram_max >= 2, self.ngram_max >= 3
        for i, token in enumerate(tokens):
            fid = self._unigram_ids.get(token)
            if fid is not None:
                positions.setdefault(fid, []).append(i)
            if use_bigrams and i + 1 < len(tokens):
                fid = self._bigram_ids.get((token, tokens[i + 1]))
                if fid is not None:
                    positions.setdefault(fid, []).extend((i, i + 1))
            if use_trigrams and i + 2 < len(tokens):
                fid = self._trigram_ids.get((token, tokens[i + 1], tokens[i + 2]))
                if fid is not None:
                    positions.setdefault(fid, []).extend((i, i + 1, i + 2))
        feature_ids = np.fromiter(positions, dtype=np.int64, count=len(positions))
        # Occurrences = covered positions / the feature's number of words.
        counts = np.array([len(p) // (self.features_[f].count(" ") + 1) for f, p in positions.items()], dtype=np.int64)
        values = self._values_from_counts(feature_ids, counts)
        return words, torch.from_numpy(feature_ids), torch.from_numpy(values), [tuple(p) for p in positions.values()]

    # -- persistence ------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready state (parameters, feature names in id order, idf)."""
        self._check_fitted()
        return {
            "ngram_max": self.ngram_max, "min_count": self.min_count, "max_features": self.max_features,
            "weighting": self.weighting, "lowercase": self.lowercase,
            "n_fit_texts": self.n_fit_texts_, "features": self.features_,
            # idf only matters for tf-idf values; 9 significant digits round-trip a float32 exactly.
            "idf": [float(f"{v:.9g}") for v in self.idf_.tolist()] if self.weighting == "tfidf" else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Featurizer":
        try:
            featurizer = cls(ngram_max=data["ngram_max"], min_count=data["min_count"],
                             max_features=data["max_features"], weighting=data["weighting"],
                             lowercase=data["lowercase"])
            features, idf = data["features"], data["idf"]
        except KeyError as err:
            raise ValueError(f"Featurizer state is missing {err}; it was not written by Featurizer.to_dict().") from None
        if idf is None:
            idf = [1.0] * len(features)
        if len(features) != len(idf):
            raise ValueError(f"Featurizer state has {len(features)} features but {len(idf)} idf values.")
        featurizer._check_params()
        featurizer._setup_fast_path()
        featurizer._set_vocabulary(features, idf, data.get("n_fit_texts", 0))
        return featurizer

    def __getstate__(self):
        # The regex and caches are rebuilt on load; keeps pickling (e.g. for caches) small.
        state = self.__dict__.copy()
        for key in ("_findall", "_findall_ascii", "_norm_cache", "_word_ids_"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_unigram_ids" in state:  # a fitted featurizer pickled before triples existed has no table for them
            self.__dict__.setdefault("_trigram_ids", {})
        self._setup_fast_path()


@functools.lru_cache(maxsize=1)
def _ascii_word_pattern() -> re.Pattern[str]:
    """``word_pattern()`` restricted to ASCII text: same words, much smaller classes.

    The single-character (punctuation) words are read off ``word_pattern()`` itself, so the
    two cannot drift apart; tests compare both on ASCII text.
    """
    full = word_pattern()
    singles = "".join(chr(c) for c in range(128)
                      if (m := full.match(chr(c) * 2)) is not None and m.end() == 1)
    spaces = "".join(chr(c) for c in range(128) if full.match(chr(c)) is None)
    single_class = re.escape(singles)
    space_class = re.escape(spaces)
    return re.compile(rf"[{single_class}]|[^{space_class}{single_class}]+")


def _feature_name(key) -> str:
    """A document-frequency key (a word, or a tuple of adjacent words) as a feature name."""
    return key if isinstance(key, str) else " ".join(key)


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("Pass a list of texts, not a single string (wrap it: [text]).")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"Text {i} is {type(text).__name__}, not str; drop or convert missing texts first.")
    return texts
