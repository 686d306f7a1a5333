"""The token teacher's knowledge of each word as readable, dense student features.

For every word of a sentence the token students may read, beside their window features
(:mod:`.window`), what the teacher says about that word *out of context*:

- ``teacher(word)[B-person]``: the teacher's log-probability of the tag on the word taken alone
  (the sentence ``[word]``);
- ``teacher(window)[B-person]``: the same on the word's three-word window taken alone (the word
  between its two neighbours; one neighbour at a sentence end), read at the middle word;
- ``teacher(w[-1])[...]`` / ``teacher(w[+1])[...]``: the word-alone log-probabilities of the
  neighbours (zeros past the ends), where the student's ``teacher_terms`` ask for them.

The teacher's embedding of a word projected per tag through its own classification head is
exactly the word-alone logits, so the word term is that projection. Each distinct word and window
goes through the teacher once, in length-sorted batches (the teacher's own per-word reading,
:meth:`TokenTeacher.predict_word_logits`), and is cached by :class:`TokenTeacherCache`: the
sequence n-gram cache (:class:`~kdcore.ngram_cache.NgramCache`) with a key that adds the
tokenizer's identity to the teacher's weight fingerprint, so another teacher or another tokenizer
never reads these numbers. A word never seen before is scored on the fly.
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable, Sequence

import numpy as np

from ..config import TOKEN_TEACHER_TERMS
from ..ngram_cache import NgramCache

__all__ = ["TokenTeacherCache", "TeacherWordFeatures", "TEACHER_TERMS", "tokenizer_identity", "token_cache_key",
           "word_key", "window_key"]

# The dense teacher terms a student may read, in their column order (StudentConfig.teacher_terms checks them).
TEACHER_TERMS = TOKEN_TEACHER_TERMS
_READING = "token-word-logits;log-softmax;window=3"


def tokenizer_identity(tokenizer) -> str:
    """A hash of what maps words to wordpiece ids: the fast tokenizer's whole serialised pipeline
    (normaliser, pre-tokeniser, model, vocabulary), or for a slow one its class, vocabulary and
    lower-casing."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        vocabulary = sorted(tokenizer.get_vocab().items())
        text = json.dumps([type(tokenizer).__name__, getattr(tokenizer, "do_lower_case", None), vocabulary])
    return hashlib.sha256(text.encode()).hexdigest()


def token_cache_key(teacher) -> str:
    """The cache key of a token teacher: its weight fingerprint, its tokenizer, its word window
    settings and how the features are read."""
    settings = (f"{teacher.fingerprint()}|{tokenizer_identity(teacher.tokenizer)}|max_length={teacher.max_length}"
                f"|{_READING}")
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


def word_key(word: str) -> str:
    return json.dumps([str(word)], ensure_ascii=False)


def window_key(words: Sequence[str], i: int) -> str:
    """The three-word window of word ``i``; the middle word is the one read."""
    return json.dumps([str(w) for w in words[max(i - 1, 0):i + 2]] + [min(i, 1)], ensure_ascii=False)


def _parse(key: str) -> tuple[list[str], int]:
    """(words, position read) of a word or window key."""
    parts = json.loads(key)
    if len(parts) == 1:
        return parts, 0
    return parts[:-1], int(parts[-1])


class TokenTeacherCache(NgramCache):
    """Per-word teacher log-probabilities ``[n, C]`` of word and window keys (:func:`word_key`,
    :func:`window_key`), one teacher pass each, kept in memory and (with a ``directory``) on disk
    as the n-gram cache keeps its shards; the key is :func:`token_cache_key`."""

    @classmethod
    def of(cls, teacher, directory=None) -> "TokenTeacherCache":
        """The cache of ``teacher``, on disk in ``directory`` (default: ``<teacher.cache_dir>/token_words``,
        beside the n-gram cache; in memory only for a teacher without a cache folder)."""
        if directory is None and getattr(teacher, "cache_dir", None) is not None:
            directory = teacher.cache_dir / "token_words"
        return cls(teacher, directory)

    @property
    def key(self) -> str:
        return token_cache_key(self.teacher)

    def log_probs(self, keys: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        if not len(keys):
            return np.zeros((0, len(self.teacher.label_names)), np.float32)
        return self.features(keys, progress)[1]

    def _compute(self, keys: list[str], progress) -> tuple[np.ndarray, np.ndarray]:
        teacher = self.teacher
        parsed = [_parse(k) for k in keys]
        out = np.zeros((len(keys), len(teacher.label_names)), dtype=np.float32)
        for start in range(0, len(keys), self.batch_size * 8):
            chunk = range(start, min(start + self.batch_size * 8, len(keys)))
            logits = teacher.predict_word_logits([parsed[k][0] for k in chunk], batch_size=self.batch_size,
                                                 use_cache=False)
            for k, rows in zip(chunk, logits):
                out[k] = rows[parsed[k][1]]
            if progress is not None:
                progress(chunk.stop, len(keys))
        out -= out.max(axis=1, keepdims=True)
        out -= np.log(np.exp(out).sum(axis=1, keepdims=True))
        self.computed += len(keys)
        return np.zeros((len(keys), 0), np.float16), out


class TeacherWordFeatures:
    """The dense teacher columns of every word of a sentence (see the module docstring).

    ``terms``: which of :data:`TEACHER_TERMS` to read. ``source``: a :class:`TokenTeacherCache`,
    a token teacher, or None (then only the words in ``table`` can be read; :meth:`use_teacher`
    attaches one later). ``table`` holds every key read so far, so a student saves the numbers it
    was trained and tested with and a loaded student reproduces them without the teacher.
    """

    def __init__(self, terms: Sequence[str], label_names: Sequence[str], source=None, table: dict | None = None):
        unknown = set(terms) - set(TEACHER_TERMS)
        if unknown:
            raise ValueError(f"Unknown teacher terms {sorted(unknown)}; choose from {', '.join(TEACHER_TERMS)}.")
        self.terms = [t for t in TEACHER_TERMS if t in terms]
        self.label_names = list(label_names)
        self.table: dict[str, np.ndarray] = dict(table or {})
        self.cache: TokenTeacherCache | None = None
        if source is not None:
            self.use_teacher(source)

    def use_teacher(self, source, cache_dir=None) -> "TeacherWordFeatures":
        """Score words missing from the table with ``source``: a cache, a token teacher, or a zero-argument
        callable returning one (a run's teacher, loaded only when a word was never scored before)."""
        lazy = callable(source) and not hasattr(source, "predict_word_logits")
        if not isinstance(source, TokenTeacherCache):
            source = TokenTeacherCache.of(source, cache_dir)
        self.cache, self._tags_checked = source, False
        if not lazy:  # a teacher at hand is checked now; one behind a callable when it is first needed
            self._check_tags()
        return self

    def _check_tags(self) -> None:
        if not self._tags_checked:
            theirs = list(self.cache.teacher.label_names)
            if theirs != self.label_names:
                raise ValueError(f"The teacher's tags {theirs} differ from the student's {self.label_names}; attach "
                                 "the teacher the student was trained with.")
            self._tags_checked = True

    @property
    def names(self) -> list[str]:
        """Column names, e.g. ``teacher(word)[B-person]``."""
        reads = {"word": "word", "window": "window", "prev": "w[-1]", "next": "w[+1]"}
        return [f"teacher({reads[t]})[{tag}]" for t in self.terms for tag in self.label_names]

    @property
    def n_columns(self) -> int:
        return len(self.terms) * len(self.label_names)

    def _lookup(self, keys: list[str], progress=None) -> None:
        missing = sorted({k for k in keys if k not in self.table})
        if not missing:
            return
        if self.cache is None:
            raise ValueError(f"{len(missing)} words (e.g. {missing[0]!r}) were never scored by the teacher and no "
                             "teacher is attached; call student.use_teacher(teacher) first.")
        self._check_tags()
        for key, row in zip(missing, self.cache.log_probs(missing, progress)):
            self.table[key] = row

    def transform(self, sentences: Sequence[Sequence[str]], progress=None) -> list[np.ndarray]:
        """``[n_words, n_columns]`` float32 per sentence."""
        sentences = [[str(w) for w in words] for words in sentences]
        keys = {t: [] for t in ("word", "window")}
        for words in sentences:
            if {"word", "prev", "next"} & set(self.terms):
                keys["word"].extend(word_key(w) for w in words)
            if "window" in self.terms:
                keys["window"].extend(window_key(words, i) for i in range(len(words)))
        self._lookup(keys["word"] + keys["window"], progress)
        out, at = [], 0
        C = len(self.label_names)
        for words in sentences:
            n = len(words)
            word = np.stack([self.table[k] for k in keys["word"][at:at + n]]) if keys["word"] else None
            columns = []
            for term in self.terms:
                if term == "word":
                    columns.append(word)
                elif term == "window":
                    columns.append(np.stack([self.table[k] for k in keys["window"][at:at + n]]))
                else:
                    shifted = np.zeros((n, C), np.float32)
                    if term == "prev":
                        shifted[1:] = word[:-1]
                    else:
                        shifted[:-1] = word[1:]
                    columns.append(shifted)
            out.append(np.concatenate(columns, axis=1).astype(np.float32) if columns else np.zeros((n, 0), np.float32))
            at += n
        return out

    def to_arrays(self) -> tuple[list[str], np.ndarray]:
        keys = sorted(self.table)
        rows = np.stack([self.table[k] for k in keys]) if keys else np.zeros((0, len(self.label_names)), np.float32)
        return keys, rows.astype(np.float32)
