"""Reading a fitted CRF token student (:class:`~kdcore.students.token_crf.TokenCRFStudent`): its
tag-transition table, the named terms of each emission, each word's share of an emission, and the
global importance of each term per tag, in the call shapes of the other token students.

An emission is a sum of named terms (see :mod:`.token_crf`): window features (value 1, so a feature's
share is exactly its weight), the teacher's readings (value x weight) and a bias. A window feature is
credited to the word it comes from (``w[-1]=in`` to the word before); the teacher's reading of the word
alone and of its window are the teacher's view *of that word* and are credited to it, its readings of
the neighbours alone (``teacher(w[-1])``, ``teacher(w[+1])``) to the neighbours. The bias is no word's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["CRFReading", "CLIP"]

CLIP = -10.0  # teacher log-probabilities below this read as this (a tag the teacher rules out)
_TERM_OFFSET = {"word": 0, "window": 0, "prev": -1, "next": 1}  # the word a teacher column is credited to


class CRFReading:
    """What a reviewer can ask a fitted CRF token student (mixed into TokenCRFStudent)."""

    def n_parameters(self) -> int:
        self._check_fitted()
        return int(sum(p.numel() for p in self.module_.parameters()))

    @property
    def n_nonzero_(self) -> int:
        """Non-zero emission weights (window features and teacher readings): the terms a reviewer may read."""
        self._check_fitted()
        return int(torch.count_nonzero(self.module_.bag.weight.detach()) + torch.count_nonzero(self.module_.dense.detach()))

    def transitions(self):
        """The ``C x C`` transition scores (rows: previous tag, columns: next tag; a pandas DataFrame),
        with a ``<start>`` row and an ``<end>`` column; forbidden steps read ``-inf``."""
        import pandas as pd

        self._check_fitted()
        m = self.module_
        table = torch.where(m.allowed_transition, m.transition, torch.tensor(float("-inf"))).detach().numpy()
        start = torch.where(m.allowed_start, m.start, torch.tensor(float("-inf"))).detach().numpy()
        frame = pd.DataFrame(np.vstack([start[None], table]), index=["<start>", *self.label_names],
                             columns=self.label_names)
        frame["<end>"] = [np.nan, *m.end.detach().numpy()]
        return frame

    def _terms(self, words: tuple, position: int, c: int) -> list[tuple[str, float, float, int]]:
        """(term, value, weight, word it is credited to) of every non-bias term of tag ``c`` at ``position``."""
        ids = self.featurizer_.slot_ids(words, position)
        sources = self.featurizer_.sources(np.asarray(ids, np.int64), words, position) if ids else []
        weights = self.module_.bag.weight.detach()
        rows = [(self.featurizer_.features_[k], 1.0, float(weights[k, c]), int(w)) for k, w in zip(ids, sources)]
        if self.settings.terms:
            values = np.maximum(self.teacher_features_.transform([list(words)])[0][position], CLIP)
            dense = self.module_.dense[:, c].detach().numpy()
            C = len(self.label_names)
            for k, (name, value, weight) in enumerate(zip(self.teacher_features_.names, values, dense)):
                word = position + _TERM_OFFSET[self.teacher_features_.terms[k // C]]
                if 0 <= word < len(words):  # a neighbour past the sentence's end reads 0 and is nobody's
                    rows.append((name, float(value), float(weight), word))
        return rows

    def emission_terms(self, words: Sequence[str], position: int, tag: str):
        """Every named term of the emission of ``tag`` at ``position`` (a DataFrame: ``term``,
        ``value``, ``weight``, ``contribution``); the contributions sum to the emission score."""
        import pandas as pd

        self._check_fitted()
        c = self.label_names.index(tag)
        rows = [row[:3] for row in self._terms(tuple(map(str, words)), position, c)]
        rows.append(("bias", 1.0, float(self.module_.bias.detach()[c])))
        frame = pd.DataFrame(rows, columns=["term", "value", "weight"])
        frame["contribution"] = frame["value"] * frame["weight"]
        return frame

    def word_contributions(self, words: Sequence[str], position: int, target: int) -> np.ndarray:
        """How much each word of the sentence adds to the emission of tag ``target`` at ``position``: the
        sum of the emission terms credited to it (see the module docstring); words outside the window get 0.
        With the bias they sum to the emission score."""
        self._check_fitted()
        words = tuple(map(str, words))
        out = np.zeros(len(words), dtype=np.float64)
        for _, value, weight, word in self._terms(words, position, int(target)):
            out[word] += value * weight
        return out

    def feature_contributions(self, words: Sequence[str], position: int, target: int):
        """The same as :meth:`word_contributions`, one row per term: a DataFrame with ``feature``, ``word``
        (the position it is credited to) and ``score``, largest |score| first."""
        import pandas as pd

        self._check_fitted()
        rows = [(name, word, value * weight) for name, value, weight, word
                in self._terms(tuple(map(str, words)), position, int(target))]
        frame = pd.DataFrame(rows, columns=["feature", "word", "score"])
        return frame.reindex(frame["score"].abs().sort_values(ascending=False).index).reset_index(drop=True)

    def global_importance(self, slots, max_texts: int = 2000, seed: int = 0):
        """How much each term moves each tag's emission on typical words (``slots``: (words, position)
        pairs, at most ``max_texts`` drawn with ``seed``): a window feature's weight (its exact share, the
        value being 1) and a teacher column's mean value x weight, over the words that have it. Columns
        ``feature``, ``class``, ``importance``, ``n_texts`` (words having it), as the other students'."""
        import pandas as pd

        from .window import check_slots

        self._check_fitted()
        slots = check_slots(slots)
        if len(slots) > max_texts:
            chosen = np.random.default_rng(seed).choice(len(slots), size=max_texts, replace=False)
            slots = [slots[i] for i in sorted(chosen)]
        counts = np.zeros(self.featurizer_.n_features, np.int64)
        for words, i in slots:
            counts[self.featurizer_.slot_ids(words, i)] += 1
        present = np.flatnonzero(counts)
        names = [self.featurizer_.features_[k] for k in present]
        means = self.module_.bag.weight.detach().numpy()[present]
        n_words = counts[present]
        if self.settings.terms and slots:
            sentences = list(dict.fromkeys(words for words, _ in slots))
            dense = dict(zip(sentences, self.teacher_features_.transform([list(s) for s in sentences])))
            values = np.maximum(np.stack([dense[words][i] for words, i in slots]), CLIP)
            weights = self.module_.dense.detach().numpy()
            names += self.teacher_features_.names
            means = np.vstack([means, values.mean(axis=0)[:, None] * weights])
            n_words = np.concatenate([n_words, np.full(len(weights), len(slots))])
        frames = [pd.DataFrame({"feature": names, "class": tag, "importance": means[:, c], "n_texts": n_words})
                  .sort_values(["importance", "feature"], ascending=[False, True], kind="stable")
                  for c, tag in enumerate(self.label_names)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["feature", "class", "importance", "n_texts"])
