"""Readable students: a linear model and a small MLP over words and word pairs.

Both students share one featurizer: the words of :func:`kdcore.words.split_words` (the
teacher's own pre-tokenizer words, lower-cased, accents stripped) and adjacent word pairs,
with a vocabulary built from the transfer set. A text becomes a *bag* of (feature id,
value) pairs fed to ``nn.EmbeddingBag(mode="sum", per_sample_weights=values)``, so the
linear student is an exact sparse linear model ``logits = W . phi(x) + b`` on any device.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import threading
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from .config import DistillConfig, StudentConfig
from .losses import LOSSES, compute_loss
from .utils import ProgressFn, atomic_write_bytes, emit
from .words import Word, normalize_word, split_words, word_pattern

__all__ = [
    "FeatureBatch",
    "Featurizer",
    "LinearStudent",
    "MLPStudent",
    "load_student",
]

_FORMAT_VERSION = 1
_MINUS_ONES = itertools.repeat(-1)  # default for dict.get in map(): unknown feature


_THREADS_LOCK = threading.Lock()
_threads_state = {"depth": 0, "saved": 1}


@contextmanager
def _single_threaded():
    """Run torch single-threaded for the duration, then restore the caller's setting.

    A student's torch work is a stream of tiny ops (batches of 64 texts in training, one
    EmbeddingBag per 4096 texts in prediction, next to Python featurizing). Intra-op
    threads cannot speed these up, and each parallel region waits for every thread, so on
    a machine whose cores are busy they make training 4-9x and prediction 2-3x slower
    (measured on 2 shared cores). The setting is process-wide: other threads' torch work
    also runs single-threaded while a student call is in progress. Nested and concurrent
    student calls share one save/restore.
    """
    with _THREADS_LOCK:
        if _threads_state["depth"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_state["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_state["depth"] -= 1
            if _threads_state["depth"] == 0:
                torch.set_num_threads(_threads_state["saved"])


_LBFGS_ROUND = 25  # L-BFGS iterations per history entry / progress event


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
            # the fast path must then filter them too, or bigrams would differ.
            self.saw_empty = True
        if len(self) < 1_000_000:
            self[raw] = norm
        return norm


class Featurizer:
    """Words and word bigrams of :func:`kdcore.words.split_words`, as EmbeddingBag inputs.

    Parameters
    ----------
    ngram_max: 1 for words only, 2 for words and adjacent word pairs (feature name ``"w1 w2"``).
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
        if self.ngram_max not in (1, 2):
            raise ValueError(f"ngram_max must be 1 or 2, got {self.ngram_max}.")
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
            words = self._words_fast(text)
            if self.ngram_max >= 2 and len(words) > 1:
                doc_freq.update(set(words).union(zip(words, words[1:])))
            else:
                doc_freq.update(set(words))
        kept = [(key, df) for key, df in doc_freq.items() if df >= self.min_count]
        kept.sort(key=lambda item: (-item[1], _feature_name(item[0])))
        kept = kept[: self.max_features]
        n_docs = len(texts)
        features = [_feature_name(key) for key, _ in kept]
        idf = [math.log((1 + n_docs) / (1 + df)) + 1.0 for _, df in kept]
        self._set_vocabulary(features, idf, n_docs)
        return self

    def _set_vocabulary(self, features: list[str], idf: list[float], n_docs: int) -> None:
        self.features_ = list(features)
        self.idf_ = np.asarray(idf, dtype=np.float32)
        self.n_fit_texts_ = int(n_docs)
        self._unigram_ids: dict[str, int] = {}
        self._bigram_ids: dict[tuple[str, str], int] = {}
        for index, name in enumerate(self.features_):
            parts = name.split(" ")
            if len(parts) == 1:
                self._unigram_ids[name] = index
            else:
                self._bigram_ids[(parts[0], parts[1])] = index
        if not hasattr(self, "_findall"):
            self._setup_fast_path()

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
        # The hot loop: no per-word objects, only C-level list/dict operations.
        findall, findall_ascii = self._findall, self._findall_ascii
        norm = self._norm_cache
        normalized = norm.__getitem__
        unigram_get = self._unigram_ids.get
        bigram_get = self._bigram_ids.get
        use_bigrams = self.ngram_max >= 2 and bool(self._bigram_ids)
        flat: list[int] = []
        lengths: list[int] = []
        extend, append = flat.extend, lengths.append
        before = 0
        for text in texts:
            # Most texts are ASCII: a pattern with a 90-character class instead of all of
            # Unicode's punctuation finds the same words about five times faster.
            words = list(map(normalized, (findall_ascii if text.isascii() else findall)(text)))
            if norm.saw_empty:
                words = [w for w in words if w]
            extend(map(unigram_get, words, _MINUS_ONES))
            if use_bigrams:
                extend(map(bigram_get, zip(words, words[1:]), _MINUS_ONES))
            append(len(flat) - before)
            before = len(flat)
        return self._aggregate(flat, lengths)

    def _aggregate(self, flat: list, lengths: list[int]) -> FeatureBatch:
        # numpy, not torch: these ops are single-threaded in numpy, while torch's intra-op
        # threads make them many times slower when the cores are busy with other work.
        n_texts = len(lengths)
        n_features = len(self.features_)
        ids = np.fromiter(flat, dtype=np.int64, count=len(flat))
        rows = np.repeat(np.arange(n_texts, dtype=np.int64), np.fromiter(lengths, dtype=np.int64, count=n_texts))
        known = ids >= 0  # unknown features are -1 (the dict.get default)
        # One key per (text, feature): unique() both counts repeats and sorts by text then id.
        keys, counts = np.unique(rows[known] * n_features + ids[known], return_counts=True)
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
        a bigram at 3 -> ``(3, 4)``; the bigram "very very" in "very very very" -> ``(0, 1, 1, 2)``.

        Attribution splits a feature's score equally over the entries of its ``word_index``
        (a position listed twice gets two shares). So a unigram that occurs twice gives each
        of its two words half of its score, and each occurrence of a bigram gives half of its
        share to each of its two words.
        """
        self._check_fitted()
        words = split_words(text, self.lowercase)
        tokens = [w.text for w in words]
        positions: dict[int, list[int]] = {}
        use_bigrams = self.ngram_max >= 2
        for i, token in enumerate(tokens):
            fid = self._unigram_ids.get(token)
            if fid is not None:
                positions.setdefault(fid, []).append(i)
            if use_bigrams and i + 1 < len(tokens):
                fid = self._bigram_ids.get((token, tokens[i + 1]))
                if fid is not None:
                    positions.setdefault(fid, []).extend((i, i + 1))
        feature_ids = np.fromiter(positions, dtype=np.int64, count=len(positions))
        counts = np.array([len(p) // (1 + (" " in self.features_[f])) for f, p in positions.items()], dtype=np.int64)
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
        for key in ("_findall", "_findall_ascii", "_norm_cache"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
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
    return key if isinstance(key, str) else f"{key[0]} {key[1]}"


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("Pass a list of texts, not a single string (wrap it: [text]).")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"Text {i} is {type(text).__name__}, not str; drop or convert missing texts first.")
    return texts


# -- modules ---------------------------------------------------------------------------


class _LinearModule(nn.Module):
    """logits = W . phi(x) + b with W an EmbeddingBag ([n_features, n_classes])."""

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, n_classes, mode="sum")
        # Zero start: the problem is convex, and zero is the "no evidence" model.
        nn.init.zeros_(self.bag.weight)
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def bag_sum(self, indices, offsets, values):
        return self.bag(indices, offsets, per_sample_weights=values)

    def head(self, summed: torch.Tensor) -> torch.Tensor:
        return summed + self.bias

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag_sum(indices, offsets, values))


class _MLPModule(nn.Module):
    """EmbeddingBag([n_features, hidden]) + bias -> ReLU -> dropout -> Linear(hidden, classes)."""

    def __init__(self, n_features: int, n_classes: int, hidden_size: int, dropout: float):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, hidden_size, mode="sum")
        # Small rows: a short text sums ~30-40 features, so N(0, 0.1) keeps the
        # pre-activations O(1) at the start.
        nn.init.normal_(self.bag.weight, std=0.1)
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, n_classes)

    def bag_sum(self, indices, offsets, values):
        return self.bag(indices, offsets, per_sample_weights=values)

    def activate(self, summed: torch.Tensor) -> torch.Tensor:
        return torch.relu(summed + self.bias)

    def head(self, summed: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.activate(summed)))

    def hidden(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The hidden layer (after ReLU, before dropout): the FitNets hint point."""
        return self.activate(self.bag_sum(indices, offsets, values))

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag_sum(indices, offsets, values))


# -- students --------------------------------------------------------------------------


class _Student:
    """Shared fit / predict / save logic of the two students (see LinearStudent, MLPStudent)."""

    _kind = ""

    def __init__(self, config: StudentConfig | None = None, **overrides):
        if config is None:
            config = StudentConfig(**{"kind": self._kind, **overrides})
        else:
            if not isinstance(config, StudentConfig):
                raise ValueError(f"config must be a StudentConfig, got {type(config).__name__}.")
            if overrides:
                data = config.to_dict()
                if data["name"] == data["kind"]:
                    data["name"] = ""  # an automatic name follows the kind
                config = StudentConfig.from_dict({**data, **overrides})
        if config.kind != self._kind:
            other = "MLPStudent" if config.kind == "mlp" else "LinearStudent"
            raise ValueError(f"{type(self).__name__} got a config of kind {config.kind!r}; use {other} for it.")
        self.config = config
        self.label_names: list[str] = []

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- building blocks ----------------------------------------------------------------

    def _build_module(self, n_features: int, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _new_featurizer(self) -> Featurizer:
        c = self.config
        return Featurizer(ngram_max=c.ngram_max, min_count=c.min_count, max_features=c.max_features,
                          weighting=c.weighting)

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ValueError(f"{type(self).__name__} {self.name!r} is not fitted yet; call fit(...) or load(directory).")

    @property
    def device(self) -> torch.device:
        self._check_fitted()
        return next(self.module_.parameters()).device

    # -- fit ----------------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        teacher_logits=None,
        labels=None,
        *,
        label_names: Sequence[str] | None = None,
        distill: DistillConfig | None = None,
        teacher_hidden=None,
        teacher_attributions: Sequence[np.ndarray] | None = None,
        dev_texts: Sequence[str] | None = None,
        dev_labels=None,
        progress: ProgressFn | None = None,
        device: str | torch.device | None = None,
    ):
        """Train the student; returns ``self``.

        - ``teacher_logits`` ``[n, C]`` given: *distillation* with ``distill.loss`` (``kd_kl``
          at ``distill.temperature``, ``kd_mse``, or ``hard_ce`` on the teacher's argmax); where
          ``labels`` are also given (``-1`` = unlabelled) the loss is
          ``(1 - alpha) * distill_loss + alpha * hard_ce(gold)``.
        - only ``labels`` given: plain supervised training (``hard_ce``; ``-1`` rows ignored).
        - ``teacher_hidden`` ``[n, H_t]`` with ``distill.feature_align > 0`` (MLP only): FitNets hint
          through a training-only ``Linear(hidden, H_t)`` projection.
        - ``teacher_attributions`` (one 1-D array per text, aligned with ``split_words(text)``;
          ``None`` for a text without one, which is then left out of ``attr_match``)
          with ``distill.attr_match > 0``: match the student's gradient x input word
          attributions for the teacher's predicted class (see ``losses.attr_match``).
        - ``dev_texts``/``dev_labels``: accuracy and macro-F1 after each epoch in ``history_``.
        - ``progress``: a kd-lens progress callback; after every epoch it gets
          ``{stage: "student_fit", student, epoch, step, total, loss, dev_accuracy}``.
        - ``device``: default CUDA when available, else CPU.

        Learned: ``featurizer_``, ``module_``, ``label_names``, ``history_`` (one dict per
        epoch: epoch, loss, parts, dev metrics), ``n_nonzero_``.
        """
        with _single_threaded():
            return self._fit(texts, teacher_logits, labels, label_names, distill, teacher_hidden,
                             teacher_attributions, dev_texts, dev_labels, progress, device)

    def _fit(self, texts, teacher_logits, labels, label_names, distill, teacher_hidden, teacher_attributions,
             dev_texts, dev_labels, progress, device):
        config = self.config
        distill = distill if distill is not None else DistillConfig()
        texts = _check_texts(texts)
        n_texts = len(texts)
        if n_texts == 0:
            raise ValueError("fit needs at least one text.")
        if teacher_logits is None and labels is None:
            raise ValueError("fit needs teacher_logits (to distill) or labels (to train on gold labels), or both.")
        teacher = None
        if teacher_logits is not None:
            teacher = torch.tensor(np.asarray(teacher_logits, dtype=np.float32))
            if teacher.ndim != 2 or teacher.shape[0] != n_texts:
                raise ValueError(f"teacher_logits must have shape [n_texts={n_texts}, n_classes]; got {tuple(teacher.shape)}.")
            if not torch.isfinite(teacher).all():
                raise ValueError("teacher_logits contain NaN or infinite values; recompute them.")
        gold = None
        if labels is not None:
            gold = torch.tensor(np.asarray(labels, dtype=np.int64))
            if gold.shape != (n_texts,):
                raise ValueError(f"labels must have one entry per text ({n_texts}); got shape {tuple(gold.shape)}.")
            if teacher is None and not bool((gold >= 0).any()):
                raise ValueError("All labels are -1 (unlabelled); pass teacher_logits or some gold labels.")
        if teacher is not None:
            n_classes = teacher.shape[1]
        elif label_names is not None:
            n_classes = len(label_names)
        else:
            n_classes = int(gold.max()) + 1
        if n_classes < 2:
            raise ValueError(f"A classifier needs at least 2 classes; got {n_classes}.")
        if label_names is None:
            label_names = [str(i) for i in range(n_classes)]
        label_names = [str(name) for name in label_names]
        if len(label_names) != n_classes:
            raise ValueError(f"Got {len(label_names)} label_names for {n_classes} classes; pass one name per class.")
        if gold is not None and (bool((gold < -1).any()) or bool((gold >= n_classes).any())):
            raise ValueError(f"labels must be class ids in [0, {n_classes}) or -1 for unlabelled.")

        use_align = distill.feature_align > 0 and teacher_hidden is not None
        if distill.feature_align > 0:
            if self._kind == "linear":
                warnings.warn("feature_align needs a hidden layer; the linear student ignores it.", stacklevel=3)
                use_align = False
            elif teacher_hidden is None:
                raise ValueError("distill.feature_align > 0 needs teacher_hidden [n_texts, H] (the teacher's pooled vectors).")
        hidden_target = None
        if use_align:
            hidden_target = torch.tensor(np.asarray(teacher_hidden, dtype=np.float32))
            if hidden_target.ndim != 2 or hidden_target.shape[0] != n_texts:
                raise ValueError(f"teacher_hidden must have shape [n_texts={n_texts}, H]; got {tuple(hidden_target.shape)}.")
        use_attr = distill.attr_match > 0
        if use_attr:
            if teacher_attributions is None:
                raise ValueError("distill.attr_match > 0 needs teacher_attributions (one array of word scores per text).")
            if teacher is None:
                raise ValueError("attr_match matches attributions for the teacher's predicted class; pass teacher_logits.")
            if len(teacher_attributions) != n_texts:
                raise ValueError(f"teacher_attributions must have one entry per text ({n_texts}); got {len(teacher_attributions)}.")

        device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        featurizer = self._new_featurizer().fit(texts)
        if featurizer.n_features == 0:
            raise ValueError(f"No feature occurs in min_count={config.min_count} texts; lower min_count or give more texts.")
        # Featurize the whole transfer set once; batches are then index gathers.
        features = featurizer.transform(texts)
        teacher_dev = teacher.to(device) if teacher is not None else None
        gold_dev = gold.to(device) if gold is not None else None
        weights = self._loss_weights(distill, teacher is not None, gold is not None)

        self.featurizer_ = featurizer
        self.label_names = label_names
        if self._solver(use_attr) == "lbfgs":
            self._fit_lbfgs(features, n_classes, teacher_dev, gold_dev, distill, weights, dev_texts, dev_labels,
                            progress, device)
            return self
        bags = _BagTable(features, device)
        attr_table = _AttrTable(featurizer, texts, teacher_attributions) if use_attr else None
        teacher_class = teacher.argmax(dim=1) if teacher is not None else None
        hidden_dev = hidden_target.to(device) if hidden_target is not None else None
        history: list[dict] = []
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(config.seed)
            module = self._build_module(featurizer.n_features, n_classes).to(device)
            projection = None
            if use_align:
                projection = nn.Linear(config.hidden_size, hidden_dev.shape[1]).to(device)
            # The feature table is large (up to max_features x hidden) and a batch touches a
            # few thousand rows of it: sparse gradients + lazy Adam (SparseAdam) update only
            # those rows, which makes an MLP epoch ~20x faster on CPU than dense Adam.
            # Weight decay and L1 on the table are applied lazily too (rows in the batch).
            module.bag.sparse = True
            dense_params = [p for n, p in module.named_parameters() if n != "bag.weight"]
            if projection is not None:
                dense_params += list(projection.parameters())
            sparse_optimizer = torch.optim.SparseAdam([module.bag.weight], lr=config.learning_rate)
            dense_optimizer = torch.optim.AdamW(dense_params, lr=config.learning_rate, weight_decay=config.weight_decay)
            regularizer = None
            if config.l1 > 0 or config.weight_decay > 0:
                regularizer = _LazyRegularizer(module.bag.weight, sparse_optimizer, config.learning_rate,
                                               config.l1, config.weight_decay)
            generator = torch.Generator().manual_seed(config.seed)
            self.module_ = module
            for epoch in range(config.epochs):
                module.train()
                order = torch.randperm(n_texts, generator=generator)
                totals: dict[str, float] = {}
                loss_sum = 0.0
                for start in range(0, n_texts, config.batch_size):
                    rows = order[start:start + config.batch_size]
                    rows_dev = rows.to(device)
                    batch = bags.gather(rows_dev)
                    parts: dict[str, torch.Tensor] = {}
                    if projection is not None:
                        hidden = module.hidden(*batch)
                        logits = module.out(module.dropout(hidden))
                        parts["feature_align"] = LOSSES["feature_align"](hidden, hidden_dev[rows_dev], projection)
                    else:
                        logits = module(*batch)
                    parts.update(self._output_parts(
                        logits, teacher_dev[rows_dev] if teacher_dev is not None else None,
                        gold_dev[rows_dev] if gold_dev is not None else None, distill, weights))
                    if attr_table is not None:
                        parts["attr_match"] = self._attr_loss(module, attr_table, rows, teacher_class[rows], device)
                    total, logged = compute_loss(parts, {k: weights[k] for k in parts})
                    sparse_optimizer.zero_grad(set_to_none=True)
                    dense_optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    touched = torch.unique(batch.indices) if regularizer is not None else None
                    if regularizer is not None:
                        regularizer.catch_up(touched)
                    if module.bag.weight.grad is not None:
                        sparse_optimizer.step()
                    dense_optimizer.step()
                    if regularizer is not None:
                        regularizer.step(touched)
                    size = len(rows)
                    loss_sum += float(total.detach()) * size
                    for key, value in logged.items():
                        totals[key] = totals.get(key, 0.0) + value * size
                record = {"epoch": epoch + 1, "loss": loss_sum / n_texts,
                          "parts": {key: value / n_texts for key, value in totals.items()}}
                if dev_texts is not None and dev_labels is not None:
                    record.update(self._dev_metrics(dev_texts, dev_labels))
                history.append(record)
                emit(progress, stage="student_fit", student=self.name, epoch=epoch + 1, step=epoch + 1,
                     total=config.epochs, loss=record["loss"], dev_accuracy=record.get("dev_accuracy"))
        if regularizer is not None:
            regularizer.flush()
        module.bag.sparse = False  # the fitted model is a plain EmbeddingBag
        module.eval()
        if config.top_k > 0:
            self._prune_top_k(module, config.top_k)
        self.history_ = history
        self.n_nonzero_ = int(torch.count_nonzero(module.bag.weight.detach()))
        return self

    def _solver(self, use_attr: bool) -> str:
        solver = self.config.solver
        if solver == "auto":
            return "lbfgs" if self._kind == "linear" and self.config.l1 == 0 and not use_attr else "adam"
        if solver == "lbfgs" and (self.config.l1 > 0 or use_attr):
            raise ValueError("solver='lbfgs' takes neither l1 nor attr_match; use solver='adam' (or 'auto') for them.")
        return solver

    @staticmethod
    def _output_parts(logits: torch.Tensor, target: torch.Tensor | None, gold: torch.Tensor | None,
                      distill: DistillConfig, weights: dict[str, float]) -> dict[str, torch.Tensor]:
        """The loss parts on the student's outputs (both solvers): the teacher term chosen by
        ``distill.loss`` where teacher logits ``target`` are given, and ``hard_ce`` on ``gold``
        where it has weight."""
        parts: dict[str, torch.Tensor] = {}
        if target is not None:
            if distill.loss == "kd_kl":
                parts["kd_kl"] = LOSSES["kd_kl"](logits, target, distill.temperature)
            elif distill.loss == "kd_mse":
                parts["kd_mse"] = LOSSES["kd_mse"](logits, target)
            else:
                parts["teacher_ce"] = LOSSES["hard_ce"](logits, target.argmax(dim=1))
        if gold is not None and weights.get("hard_ce", 0.0) > 0:
            parts["hard_ce"] = LOSSES["hard_ce"](logits, gold)
        return parts

    def _fit_lbfgs(self, features: FeatureBatch, n_classes: int, teacher_dev, gold_dev, distill: DistillConfig,
                   weights: dict[str, float], dev_texts, dev_labels, progress, device) -> None:
        """Full-batch L-BFGS for the linear student: the distillation (or label) loss, a mean
        over the texts, plus ``l2 * ||W||^2 / n``; a convex problem solved to convergence, so the
        result depends on neither a learning rate, an epoch count nor the text order.

        Run in rounds of ``_LBFGS_ROUND`` iterations (one ``history_`` entry and one progress
        event each) until ``max_iter`` or convergence.
        """
        config = self.config
        n_texts = features.n_texts
        n_features = self.featurizer_.n_features
        crow = torch.cat([features.offsets, torch.tensor([features.indices.numel()])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            matrix = torch.sparse_csr_tensor(crow, features.indices, features.values, (n_texts, n_features),
                                             device=device)
        module = self._build_module(n_features, n_classes).to(device)
        weight, bias = module.bag.weight, module.bias
        penalty = config.l2 / n_texts
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=_LBFGS_ROUND, history_size=20,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-7, tolerance_change=1e-10)
        last_parts: dict[str, float] = {}

        def closure():
            optimizer.zero_grad(set_to_none=True)
            parts = self._output_parts(matrix @ weight + bias, teacher_dev, gold_dev, distill, weights)
            total, logged = compute_loss(parts, {k: weights[k] for k in parts})
            if penalty > 0:
                total = total + penalty * weight.pow(2).sum()
            total.backward()
            last_parts.clear()
            last_parts.update(logged)
            last_parts["_total"] = float(total.detach())
            return total

        self.module_ = module
        history: list[dict] = []
        rounds = max(1, -(-config.max_iter // _LBFGS_ROUND))
        for round_index in range(rounds):
            module.train()
            before = optimizer.state[weight].get("n_iter", 0) if weight in optimizer.state else 0
            optimizer.step(closure)
            after = optimizer.state[weight].get("n_iter", 0)
            module.eval()
            parts = dict(last_parts)
            loss = parts.pop("_total")  # the objective at the round's last evaluation, with its parts
            record = {"epoch": round_index + 1, "loss": loss, "parts": parts, "iterations": after}
            if dev_texts is not None and dev_labels is not None:
                record.update(self._dev_metrics(dev_texts, dev_labels))
            history.append(record)
            converged = after - before < _LBFGS_ROUND  # stopped inside the round
            step = rounds if converged else round_index + 1  # a converged fit fills its progress bar
            emit(progress, stage="student_fit", student=self.name, epoch=round_index + 1, step=step,
                 total=rounds, loss=loss, dev_accuracy=record.get("dev_accuracy"))
            if converged:
                break
        module.eval()
        if config.top_k > 0:
            self._prune_top_k(module, config.top_k)
        self.history_ = history
        self.n_nonzero_ = int(torch.count_nonzero(weight.detach()))

    @staticmethod
    def _loss_weights(distill: DistillConfig, has_teacher: bool, has_gold: bool) -> dict[str, float]:
        if has_teacher:
            alpha = distill.alpha if has_gold else 0.0
            weights = {"kd_kl": 1.0 - alpha, "kd_mse": 1.0 - alpha, "teacher_ce": 1.0 - alpha, "hard_ce": alpha}
        else:
            weights = {"hard_ce": 1.0}
        weights["feature_align"] = distill.feature_align
        weights["attr_match"] = distill.attr_match
        return weights

    def _prune_top_k(self, module: nn.Module, k: int) -> None:
        raise NotImplementedError

    def _attr_loss(self, module, table: "_AttrTable", rows: torch.Tensor, target: torch.Tensor, device) -> torch.Tensor:
        """attr_match loss for the texts ``rows``: the student's word scores for ``target``
        (the teacher's class) against the teacher's word scores."""
        batch = table.batch(rows.tolist(), device)
        word_scores = self._word_scores(module, batch, target.to(device))
        return LOSSES["attr_match"](word_scores, batch["teacher"], batch["mask"])

    @staticmethod
    def _word_scores(module, batch: dict, target: torch.Tensor) -> torch.Tensor:
        """Differentiable gradient x input word scores ``[texts, words]`` for class ``target``.

        Each feature's gradient x value is split over its word positions as in
        ``Featurizer.occurrences``; for the linear student this is exactly weight x value.
        """
        values = batch["values"].clone().requires_grad_(True)
        n_rows = batch["teacher"].shape[0]
        # EmbeddingBag has no double backward for per-sample weights, so the bag sum is
        # written out with embedding + index_add (same numbers, differentiable twice).
        rows_embedded = torch.nn.functional.embedding(batch["ids"], module.bag.weight, sparse=True)
        summed = torch.zeros(n_rows, module.bag.weight.shape[1], device=values.device, dtype=values.dtype)
        summed = summed.index_add(0, batch["rows"], rows_embedded * values[:, None])
        was_training = module.training
        module.train(False)  # no dropout noise inside the attribution
        logits = module.head(summed)
        module.train(was_training)
        chosen = logits.gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(chosen, values, create_graph=True)
        feature_scores = grad * values
        width = batch["width"]
        word_scores = torch.zeros(n_rows * width, device=values.device, dtype=values.dtype)
        word_scores = word_scores.index_add(0, batch["pair_word"], feature_scores[batch["pair_occ"]] * batch["pair_share"])
        return word_scores.view(n_rows, width)

    def _dev_metrics(self, dev_texts, dev_labels) -> dict[str, float]:
        dev_labels = np.asarray(dev_labels, dtype=np.int64)
        predicted = self.predict_logits(list(dev_texts)).argmax(axis=1)
        keep = dev_labels >= 0
        if not keep.any():
            return {}
        from .metrics import accuracy, macro_f1

        gold, predicted = dev_labels[keep], predicted[keep]
        return {"dev_accuracy": accuracy(gold, predicted),
                "dev_macro_f1": macro_f1(gold, predicted, len(self.label_names))}

    # -- predict ------------------------------------------------------------------------

    def transform(self, texts: Sequence[str]) -> FeatureBatch:
        """The EmbeddingBag inputs of ``texts`` (on the CPU)."""
        self._check_fitted()
        return self.featurizer_.transform(texts)

    def _predict(self, texts, batch_size: int, proba: bool) -> np.ndarray:
        self._check_fitted()
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        module, device = self.module_, self.device
        was_training = module.training
        module.eval()
        out = []
        with torch.inference_mode(), _single_threaded():
            for start in range(0, len(texts), batch_size):
                batch = self.featurizer_.transform(texts[start:start + batch_size])
                if device.type != "cpu":
                    batch = batch.to(device)
                logits = module(*batch)
                if proba:
                    logits = torch.softmax(logits, dim=-1)
                out.append(logits.float().cpu())
        module.train(was_training)
        if not out:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return torch.cat(out).numpy()

    def predict_logits(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Logits ``[n, C]`` (float32)."""
        return self._predict(texts, batch_size, proba=False)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Class probabilities ``[n, C]`` (float32, rows sum to 1)."""
        return self._predict(texts, batch_size, proba=True)

    def predict(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Predicted class ids ``[n]``."""
        return self.predict_logits(texts, batch_size).argmax(axis=1)

    def n_parameters(self) -> int:
        """Number of parameters of the saved model (the training-only projection excluded)."""
        self._check_fitted()
        return int(sum(p.numel() for p in self.module_.parameters()))

    def global_importance(self, texts: Sequence[str], max_texts: int = 2000, seed: int = 0,
                          batch_size: int = 1024) -> "pd.DataFrame":
        """How much each feature moves each class's logit on typical texts.

        For every text of a sample of ``texts`` (at most ``max_texts``, drawn with ``seed``)
        and every class, each feature's gradient x value (its first-order share of the
        logit; for the linear student exactly weight x value) is computed, and averaged over
        the texts that contain the feature. Columns: ``feature``, ``class``, ``importance``
        (signed; positive = pushes towards the class), ``n_texts`` (texts containing it).
        Sorted by class, then importance from most positive to most negative.
        """
        with _single_threaded():
            return self._global_importance(texts, max_texts, seed, batch_size)

    def _global_importance(self, texts, max_texts, seed, batch_size):
        import pandas as pd

        self._check_fitted()
        texts = _check_texts(texts)
        if len(texts) > max_texts:
            chosen = np.random.default_rng(seed).choice(len(texts), size=max_texts, replace=False)
            texts = [texts[i] for i in sorted(chosen)]
        module, device = self.module_, self.device
        n_features, n_classes = self.featurizer_.n_features, len(self.label_names)
        sums = torch.zeros(n_features, n_classes, dtype=torch.float64)
        counts = torch.zeros(n_features, dtype=torch.float64)
        was_training = module.training
        module.eval()
        for start in range(0, len(texts), batch_size):
            batch = self.featurizer_.transform(texts[start:start + batch_size])
            if batch.indices.numel() == 0:
                continue
            values = batch.values.to(device).clone().requires_grad_(True)
            logits = module(batch.indices.to(device), batch.offsets.to(device), values)
            for c in range(n_classes):
                (grad,) = torch.autograd.grad(logits[:, c].sum(), values, retain_graph=c < n_classes - 1)
                sums[:, c].index_add_(0, batch.indices, (grad * values).detach().cpu().double())
            counts.index_add_(0, batch.indices, torch.ones(batch.indices.numel(), dtype=torch.float64))
        module.train(was_training)
        present = torch.nonzero(counts > 0).flatten()
        means = (sums[present] / counts[present, None]).numpy()
        names = np.asarray(self.featurizer_.features_, dtype=object)[present.numpy()]
        frames = []
        for c, label in enumerate(self.label_names):
            frame = pd.DataFrame({"feature": names, "class": label, "importance": means[:, c],
                                  "n_texts": counts[present].numpy().astype(np.int64)})
            frames.append(frame.sort_values(["importance", "feature"], ascending=[False, True], kind="stable"))
        if not frames:
            return pd.DataFrame(columns=["feature", "class", "importance", "n_texts"])
        return pd.concat(frames, ignore_index=True)

    # -- save / load --------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``vocab.json`` into ``directory``
        (each written to a temporary file and renamed into place; config.json last)."""
        from safetensors.torch import save as safetensors_bytes

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().to("cpu").contiguous() for key, value in self.module_.state_dict().items()}
        atomic_write_bytes(directory / "model.safetensors",
                           safetensors_bytes(state, metadata={"format": "pt", "kind": self._kind}))
        _atomic_write_text(directory / "vocab.json", json.dumps(self.featurizer_.to_dict(), ensure_ascii=False))
        meta = {
            "format_version": _FORMAT_VERSION, "kind": self._kind, "config": self.config.to_dict(),
            "label_names": self.label_names, "n_features": self.featurizer_.n_features,
            "n_nonzero": getattr(self, "n_nonzero_", None), "history": getattr(self, "history_", []),
        }
        _atomic_write_text(directory / "config.json", json.dumps(meta, indent=2, ensure_ascii=False))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike):
        """Load a student written by :meth:`save` (safetensors only; pickles are refused)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(f"{directory} is not a directory; pass the folder a student was saved to.")
        weights_path = directory / "model.safetensors"
        if not weights_path.is_file():
            pickles = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
            hint = f" Found {pickles}: kd-lens refuses pickle files, which can run code on load." if pickles else ""
            raise ValueError(f"{directory} has no model.safetensors.{hint}")
        try:
            meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ValueError(f"{directory} is not a saved student: {Path(err.filename).name} is missing.") from None
        kind = meta.get("kind")
        if cls is _Student:
            cls = _STUDENT_CLASSES.get(kind)
            if cls is None:
                raise ValueError(f"{directory} holds a student of unknown kind {kind!r}; known: {sorted(_STUDENT_CLASSES)}.")
        elif kind != cls._kind:
            raise ValueError(f"{directory} holds a {kind!r} student; load it with load_student() or the matching class.")
        student = cls(StudentConfig.from_dict(meta["config"]))
        featurizer = Featurizer.from_dict(vocab)
        label_names = [str(x) for x in meta["label_names"]]
        module = student._build_module(featurizer.n_features, len(label_names))
        state = load_file(str(weights_path))
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{weights_path} does not match its config.json/vocab.json: {err}") from None
        module.eval()
        student.featurizer_ = featurizer
        student.module_ = module
        student.label_names = label_names
        student.history_ = meta.get("history", [])
        student.n_nonzero_ = int(torch.count_nonzero(module.bag.weight.detach()))
        return student


class LinearStudent(_Student):
    """Sparse linear student: ``logits = W . phi(x) + b`` over words and word pairs.

    A word's attribution is exactly its features' weight x value (split as described in
    :meth:`Featurizer.occurrences`), which is also integrated gradients from the empty bag.
    ``config.l1`` (proximal L1 during training) and ``config.top_k`` (keep the k largest
    |w| per class after training) make ``W`` sparse; ``n_nonzero_`` counts its non-zeros.
    """

    _kind = "linear"

    def _build_module(self, n_features: int, n_classes: int) -> nn.Module:
        return _LinearModule(n_features, n_classes)

    def _prune_top_k(self, module: nn.Module, k: int) -> None:
        with torch.no_grad():
            weight = module.bag.weight
            if k >= weight.shape[0]:
                return
            keep = torch.zeros_like(weight, dtype=torch.bool)
            top = torch.topk(weight.abs(), k, dim=0).indices
            keep.scatter_(0, top, True)
            weight.mul_(keep)

    @property
    def bias_(self) -> np.ndarray:
        """The class biases ``b`` (the logits of a text with no known feature)."""
        self._check_fitted()
        return self.module_.bias.detach().cpu().numpy().copy()

    @property
    def coef_(self) -> np.ndarray:
        """The weight matrix ``W`` as ``[n_features, n_classes]``."""
        self._check_fitted()
        return self.module_.bag.weight.detach().cpu().numpy().copy()

    def weights(self) -> "pd.DataFrame":
        """Non-zero weights as a table: columns ``feature``, ``class``, ``weight``; sorted by
        class (label order), then weight from most positive to most negative."""
        import pandas as pd

        coef = self.coef_
        names = np.asarray(self.featurizer_.features_, dtype=object)
        frames = []
        for c, label in enumerate(self.label_names):
            nonzero = np.flatnonzero(coef[:, c])
            frame = pd.DataFrame({"feature": names[nonzero], "class": label, "weight": coef[nonzero, c]})
            frames.append(frame.sort_values(["weight", "feature"], ascending=[False, True], kind="stable"))
        return pd.concat(frames, ignore_index=True)


class MLPStudent(_Student):
    """Small MLP student: EmbeddingBag(features -> hidden) + bias -> ReLU -> dropout -> Linear.

    ``module_.hidden(indices, offsets, values)`` is the hidden layer (the FitNets hint point).
    ``config.l1`` acts on the first layer; ``config.top_k`` keeps the k features whose
    first-layer rows have the largest L2 norm. ``n_nonzero_`` counts non-zero first-layer
    weights. Read it with :meth:`global_importance`.
    """

    _kind = "mlp"

    def _build_module(self, n_features: int, n_classes: int) -> nn.Module:
        return _MLPModule(n_features, n_classes, self.config.hidden_size, self.config.dropout)

    def _prune_top_k(self, module: nn.Module, k: int) -> None:
        with torch.no_grad():
            weight = module.bag.weight
            if k >= weight.shape[0]:
                return
            keep = torch.zeros(weight.shape[0], dtype=torch.bool, device=weight.device)
            keep[torch.topk(weight.norm(dim=1), k).indices] = True
            weight.mul_(keep[:, None])


_STUDENT_CLASSES = {"linear": LinearStudent, "mlp": MLPStudent}


def load_student(directory: str | os.PathLike) -> LinearStudent | MLPStudent:
    """Load any saved student, dispatching on the ``kind`` in its config.json."""
    return _Student.load(directory)


# -- helpers ---------------------------------------------------------------------------


class _BagTable:
    """The featurized transfer set kept as one CSR table; ``gather(rows)`` builds a batch."""

    def __init__(self, features: FeatureBatch, device: torch.device):
        n_values = features.indices.numel()
        self.indices = features.indices.to(device)
        self.values = features.values.to(device)
        self.starts = features.offsets.to(device)
        ends = torch.cat([features.offsets[1:], torch.tensor([n_values])])
        self.lengths = (ends - features.offsets).to(device)

    def gather(self, rows: torch.Tensor) -> FeatureBatch:
        lengths = self.lengths[rows]
        starts = self.starts[rows]
        offsets = torch.zeros_like(lengths)
        offsets[1:] = torch.cumsum(lengths, 0)[:-1]
        total = int(lengths.sum())
        position = torch.repeat_interleave(starts - offsets, lengths, output_size=total)
        position += torch.arange(total, device=position.device)
        return FeatureBatch(self.indices[position], offsets, self.values[position])


class _LazyRegularizer:
    """Weight decay and L1 on the feature table, applied lazily to the rows a batch touches.

    L1 makes ``objective = training loss + l1 * sum |W|`` (``W`` the feature table) and is
    applied as a proximal soft-threshold after each Adam step, in Adam's own metric
    (threshold ``lr * l1 / (sqrt(v_hat) + eps)`` per weight). Unlike a subgradient added to
    the loss this gives exact zeros, and the preconditioning keeps the L1 meaning: at a fixed
    point a weight is zero exactly when its loss gradient is smaller than ``l1``. Weight
    decay is AdamW's decoupled ``w *= 1 - lr * weight_decay`` per step.

    Both are meant to act on every row at every step, but a row untouched by a batch has no
    Adam update, and consecutive shrinks compose (``soft(soft(w, a), b) = soft(w, a + b)``),
    so each row keeps the step it was last regularised at and pays what it owes when its
    feature next appears (and once more at the end). That keeps the cost per batch small.
    """

    def __init__(self, weight: torch.Tensor, optimizer: torch.optim.Optimizer, lr: float, l1: float, weight_decay: float):
        self.weight, self.optimizer = weight, optimizer
        self.lr, self.l1, self.weight_decay = lr, l1, weight_decay
        self.beta2 = optimizer.param_groups[0]["betas"][1]
        self.eps = optimizer.param_groups[0]["eps"]
        self.steps = 0
        self.last = torch.zeros(weight.shape[0], dtype=torch.long, device=weight.device)

    def _shrink(self, rows: torch.Tensor, n_steps: torch.Tensor) -> None:
        with torch.no_grad():
            values = self.weight[rows]
            n_steps = n_steps.to(values.dtype)[:, None]
            if self.weight_decay > 0:
                values = values * (1.0 - self.lr * self.weight_decay) ** n_steps
            if self.l1 > 0:
                state = self.optimizer.state.get(self.weight, {})
                if "exp_avg_sq" in state:
                    bias_correction = 1.0 - self.beta2 ** max(int(state["step"]), 1)
                    scale = (state["exp_avg_sq"][rows] / bias_correction).sqrt() + self.eps
                else:
                    scale = torch.full_like(values, self.eps)
                threshold = self.lr * self.l1 * n_steps / scale
                values = torch.sign(values) * torch.clamp(values.abs() - threshold, min=0.0)
            self.weight[rows] = values

    def catch_up(self, rows: torch.Tensor) -> None:
        """Before an Adam step: the shrinks these rows missed while their features were absent."""
        owed = self.steps - self.last[rows]
        due = owed > 0
        if bool(due.any()):
            self._shrink(rows[due], owed[due])

    def step(self, rows: torch.Tensor) -> None:
        """After an Adam step: this step's shrink for the touched rows."""
        self.steps += 1
        self._shrink(rows, torch.ones_like(rows))
        self.last[rows] = self.steps

    def flush(self) -> None:
        """At the end of training: every row pays what it still owes."""
        rows = torch.arange(self.weight.shape[0], device=self.weight.device)
        self.catch_up(rows)
        self.last[:] = self.steps


class _AttrTable:
    """Per-text feature occurrences and how each one's score is shared over words."""

    def __init__(self, featurizer: Featurizer, texts: list[str], teacher_attributions):
        self.items = []
        for i, text in enumerate(texts):
            if teacher_attributions[i] is None:
                # No cached teacher attribution for this text: it is left out of attr_match
                # (all-zero mask) and still trained on the teacher's outputs.
                self.items.append(([], [], [], [], [], np.zeros(0, dtype=np.float32)))
                continue
            words, ids, values, word_index = featurizer.occurrences(text)
            scores = np.asarray(teacher_attributions[i], dtype=np.float32).reshape(-1)
            if scores.shape[0] != len(words):
                raise ValueError(
                    f"teacher_attributions[{i}] has {scores.shape[0]} scores but text {i} has {len(words)} words "
                    "(split_words); compute teacher attributions on the same words."
                )
            pair_occ, pair_pos, pair_share = [], [], []
            for k, positions in enumerate(word_index):
                share = 1.0 / len(positions)
                pair_occ.extend([k] * len(positions))
                pair_pos.extend(positions)
                pair_share.extend([share] * len(positions))
            self.items.append((ids.tolist(), values.tolist(), pair_occ, pair_pos, pair_share, scores))

    def batch(self, rows: list[int], device) -> dict:
        width = max(1, max(len(self.items[r][5]) for r in rows))
        ids, values, row_of, pair_occ, pair_word, pair_share = [], [], [], [], [], []
        teacher = np.zeros((len(rows), width), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.float32)
        for b, r in enumerate(rows):
            f_ids, f_values, occ, pos, share, scores = self.items[r]
            base = len(ids)
            ids.extend(f_ids)
            values.extend(f_values)
            row_of.extend([b] * len(f_ids))
            pair_occ.extend(base + k for k in occ)
            pair_word.extend(b * width + p for p in pos)
            pair_share.extend(share)
            teacher[b, : len(scores)] = scores
            mask[b, : len(scores)] = 1.0
        return {
            "ids": torch.tensor(ids, dtype=torch.long, device=device),
            "values": torch.tensor(values, dtype=torch.float32, device=device),
            "rows": torch.tensor(row_of, dtype=torch.long, device=device),
            "pair_occ": torch.tensor(pair_occ, dtype=torch.long, device=device),
            "pair_word": torch.tensor(pair_word, dtype=torch.long, device=device),
            "pair_share": torch.tensor(pair_share, dtype=torch.float32, device=device),
            "teacher": torch.from_numpy(teacher).to(device),
            "mask": torch.from_numpy(mask).to(device),
            "width": width,
        }


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
