"""The featurizer's fast transform: texts to (text, feature id) pairs with little Python per word.

A word never spans whitespace (``split_words`` matches runs of non-space characters, or
one punctuation or CJK character), and ``str.split()`` splits on exactly the characters
that the pattern's ``\\s`` matches. So the words of a text are the words of its
whitespace-separated *chunks*, in order. Each distinct chunk is split, normalised and
looked up once, and cached as a tuple of *token* ids (a token is any word that occurs in a
feature; ``-1`` for any other word; words that normalise to nothing are left out, as
``split_words`` leaves them out). A batch is then one ``str.split()``, one dict lookup per
chunk, and numpy: unigram features by table lookup, bigram features by looking up the
pair key ``left * base + right`` among the hashed keys of the vocabulary's bigrams, and
trigram features (only when the vocabulary has some) by the key
``(left * base + middle) * base + right`` among those of its trigrams (``base``: a fixed
multiplier above the number of distinct words, with room to grow, so a vocabulary that grows
adds its new keys to the tables without rebuilding them: :meth:`WordIds.extend`).

The result equals the per-word Python loop it replaces, feature for feature (a test
compares both on unicode, punctuation, control characters, empty and long texts).
"""

from __future__ import annotations

import itertools
import threading
from typing import Sequence

import numpy as np

from ..words import normalize_word

__all__ = ["WordIds"]

_SEPARATOR = "\x00"  # joins a batch's texts; never a word of its own (normalises to nothing)
_CACHE_LIMIT = 500_000  # distinct chunks kept; past it the table starts afresh
# The most distinct words a vocabulary with trigrams may hold: a trigram key reaches
# n_tokens**3 - 1, which must fit in int64 (2**21 cubed is 2**63).
MAX_TRIGRAM_TOKENS = 2**21


def _index(keys: np.ndarray):
    """A hash index over int64 keys: one vectorised lookup per batch (``get_indexer``)."""
    import pandas as pd

    return pd.Index(np.asarray(keys, dtype=np.int64))


class _ChunkIndex(dict):
    """chunk -> row of the chunk table; a new chunk is split, normalised and added on first sight."""

    def __init__(self, owner: "WordIds"):
        super().__init__()
        self._owner = owner

    def __missing__(self, chunk: str) -> int:
        return self._owner._add_chunk(chunk)


class WordIds:
    """Token ids of a fitted vocabulary and the tables from token ids to feature ids."""

    def __init__(self, features: Sequence[str], lowercase: bool, findall, findall_ascii):
        self._tokens: dict[str, int] = {}
        self.n_tokens = 0
        self._lowercase = lowercase
        self._findall, self._findall_ascii = findall, findall_ascii
        self._lock = threading.Lock()
        empty = np.zeros(0, dtype=np.int64)
        self._tables = (np.full(1, -1, dtype=np.int64), _index(empty), empty, _index(empty), empty)
        self._base = 0
        self._reset_chunks()
        if not self.extend(features, 0):
            raise AssertionError("a fresh lookup always takes its vocabulary")  # pragma: no cover

    def extend(self, features: Sequence[str], first_id: int) -> bool:
        """Add ``features`` (ids ``first_id``, ``first_id + 1``, ...) to the tables in place.

        The n-gram keys use a fixed multiplier, chosen with room for the vocabulary to grow, so
        old keys stay valid and only the new features' keys are hashed (a vocabulary grown
        text by text, as a student that scores unseen n-grams grows its own, costs what it
        adds, not a rebuild). Returns False, changing nothing, when the new words do not fit
        that room: the caller then builds a new lookup.
        """
        tokens = dict(self._tokens)
        unigram_pairs, bigram_keys, trigram_keys = [], [], []
        for fid, name in enumerate(features, first_id):
            ids = [tokens.setdefault(part, len(tokens)) for part in name.split(" ")]
            (unigram_pairs if len(ids) == 1 else bigram_keys if len(ids) == 2 else trigram_keys).append((*ids, fid))
        n_tokens = len(tokens)
        has_trigrams = bool(trigram_keys) or self._tables[4].size > 0
        if has_trigrams and n_tokens > MAX_TRIGRAM_TOKENS:
            if self.n_tokens:
                return False
            raise ValueError(f"The vocabulary holds {n_tokens:,} distinct words, too many for word-triple "
                             f"lookup keys in int64 (at most {MAX_TRIGRAM_TOKENS:,}); lower max_features "
                             "or use ngram_max=2.")
        base = self._base or max(2 * n_tokens, 1024)
        if has_trigrams:
            base = min(base, MAX_TRIGRAM_TOKENS)
        if n_tokens > base or (self._base and base != self._base):
            return False
        unigram, bigram_index, bigram_fids, trigram_index, trigram_fids = self._tables
        table = np.full(n_tokens + 1, -1, dtype=np.int64)  # the last slot answers unknown words (-1)
        table[:self.n_tokens] = unigram[:self.n_tokens]
        for token, fid in unigram_pairs:
            table[token] = fid
        bigrams = np.array([(a * base + b, f) for a, b, f in bigram_keys], dtype=np.int64).reshape(-1, 2)
        trigrams = np.array([((a * base + b) * base + c, f) for a, b, c, f in trigram_keys],
                            dtype=np.int64).reshape(-1, 2)
        # One swap of every table: a reader takes them together (see feature_ids).
        self._tables = (table, bigram_index.append(_index(bigrams[:, 0])), np.concatenate([bigram_fids, bigrams[:, 1]]),
                        trigram_index.append(_index(trigrams[:, 0])), np.concatenate([trigram_fids, trigrams[:, 1]]))
        self._base = base
        with self._lock:
            grew = n_tokens > self.n_tokens
            self._tokens, self.n_tokens = tokens, n_tokens
            if grew:  # cached chunks may hold a new word as unknown (-1)
                self._reset_chunks()
        return True

    # -- the chunk table: chunk row -> its token ids, as (start, length) into one flat array

    def _reset_chunks(self) -> None:
        self._index = _ChunkIndex(self)
        self._starts = np.zeros(0, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.int64)
        self._flat = np.zeros(0, dtype=np.int64)
        self._new_ids: list[tuple[int, ...]] = []
        self._add_chunk(_SEPARATOR)  # row 0: the batch separator (no tokens)
        self._add_chunk("")  # row 1: no tokens, for a separator character inside a text

    def _add_chunk(self, chunk: str) -> int:
        findall = self._findall_ascii if chunk.isascii() else self._findall
        get, lowercase = self._tokens.get, self._lowercase
        ids = tuple(get(norm, -1) for norm in (normalize_word(raw, lowercase) for raw in findall(chunk)) if norm)
        row = self._starts.size + len(self._new_ids)
        self._new_ids.append(ids)
        self._index[chunk] = row
        return row

    def _commit_chunks(self) -> None:
        if not self._new_ids:
            return
        lengths = np.fromiter(map(len, self._new_ids), dtype=np.int64, count=len(self._new_ids))
        flat = np.fromiter(itertools.chain.from_iterable(self._new_ids), dtype=np.int64, count=int(lengths.sum()))
        starts = self._flat.size + np.cumsum(lengths) - lengths
        self._starts = np.concatenate([self._starts, starts])
        self._lengths = np.concatenate([self._lengths, lengths])
        self._flat = np.concatenate([self._flat, flat])
        self._new_ids = []

    def _chunk_rows(self, texts: list[str]) -> np.ndarray:
        """Chunk-table rows of the texts' chunks, row 0 between two texts."""
        index = self._index
        joined = f" {_SEPARATOR} ".join(texts)
        if joined.count(_SEPARATOR) == len(texts) - 1:
            return np.fromiter(map(index.__getitem__, joined.split()), dtype=np.int64)
        # A text holds the separator character itself: one text at a time (the character
        # normalises to nothing, so as a chunk of a text it is the empty chunk).
        empty = self._index[""]
        rows = []
        for k, text in enumerate(texts):
            if k:
                rows.append(0)
            rows.extend(empty if chunk == _SEPARATOR else index[chunk] for chunk in text.split())
        return np.asarray(rows, dtype=np.int64)

    def token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, text index) of every word of ``texts``, in order."""
        with self._lock:
            if len(self._index) > _CACHE_LIMIT:
                self._reset_chunks()
            chunks = self._chunk_rows(texts)
            self._commit_chunks()
            starts, lengths, flat = self._starts, self._lengths, self._flat
        text_of_chunk = np.cumsum(chunks == 0)
        lengths = lengths[chunks]
        total = int(lengths.sum())
        first = np.cumsum(lengths) - lengths
        where = np.repeat(starts[chunks] - first, lengths) + np.arange(total, dtype=np.int64)
        return flat[where], np.repeat(text_of_chunk, lengths)

    def feature_ids(self, texts: list[str], use_bigrams: bool,
                    use_trigrams: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(feature id, text index) of every known unigram, bigram and (``use_trigrams``) trigram
        occurrence in ``texts``, grouped by kind (the caller sorts them by text)."""
        tokens, rows = self.token_ids(texts)
        # The tables after the token ids: a token id is never newer than the tables read here.
        unigram, bigram_index, bigram_fids, trigram_index, trigram_fids = self._tables
        base = self._base
        unigrams = unigram[tokens]  # -1 (unknown) picks the trailing -1 slot
        known = unigrams >= 0
        fids, fid_rows = unigrams[known], rows[known]
        if use_bigrams and tokens.size > 1 and bigram_fids.size:
            left, right, left_rows = tokens[:-1], tokens[1:], rows[:-1]
            pair = (left_rows == rows[1:]) & (left >= 0) & (right >= 0)
            where = bigram_index.get_indexer(left[pair] * base + right[pair])
            found = where >= 0
            fids = np.concatenate([fids, bigram_fids[where[found]]])
            fid_rows = np.concatenate([fid_rows, left_rows[pair][found]])
        if use_trigrams and tokens.size > 2 and trigram_fids.size:
            left, middle, right, left_rows = tokens[:-2], tokens[1:-1], tokens[2:], rows[:-2]
            # Rows only grow along the batch, so equal first and last rows mean one text.
            triple = (left_rows == rows[2:]) & (left >= 0) & (middle >= 0) & (right >= 0)
            where = trigram_index.get_indexer((left[triple] * base + middle[triple]) * base + right[triple])
            found = where >= 0
            fids = np.concatenate([fids, trigram_fids[where[found]]])
            fid_rows = np.concatenate([fid_rows, left_rows[triple][found]])
        return fids, fid_rows
