"""The token students: the linear and MLP students over the window features of one word
(:mod:`.window`), one prediction per word, read as BIO tags with the constrained Viterbi decoding.

They are the sequence students with another input: training (L-BFGS / Adam over the loss table),
saving and loading are the shared ones of :class:`~kdcore.students.base.Student`; only the
featurizer, the input check and the per-sentence calls below differ.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .gradients import feature_gradient_x_input
from .linear import LinearStudent
from .mlp import MLPStudent
from .threads import single_threaded
from .window import WindowFeaturizer, check_slots, word_slots

__all__ = ["TokenLinearStudent", "TokenMLPStudent", "TOKEN_KINDS"]

TOKEN_KINDS = ("token_linear", "token_mlp")


class _TokenStudent:
    """Per-sentence calls of a token student (mixed in before LinearStudent / MLPStudent)."""

    _featurizer_class = WindowFeaturizer

    @staticmethod
    def _check_inputs(inputs) -> list:
        return check_slots(inputs)

    def _new_featurizer(self) -> WindowFeaturizer:
        return WindowFeaturizer(min_count=self.config.min_count, max_features=self.config.max_features)

    def fit_sentences(self, sentences: Sequence[Sequence[str]], teacher_logits: Sequence[np.ndarray] | None = None,
                      tags: Sequence[np.ndarray] | None = None, **options):
        """``fit`` over every word of ``sentences``: ``teacher_logits`` one ``[n_words, tags]`` array per
        sentence (distillation), ``tags`` one id array per sentence (gold; both: mixed with ``alpha``)."""
        slots = word_slots(sentences)
        flat_logits = np.concatenate([np.asarray(t, np.float32) for t in teacher_logits]) if teacher_logits is not None else None
        flat_tags = np.concatenate([np.asarray(t, np.int64) for t in tags]) if tags is not None else None
        return self.fit(slots, teacher_logits=flat_logits, labels=flat_tags, **options)

    def predict_word_logits(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Logits ``[n_words, tags]`` of each sentence."""
        lengths = [len(s) for s in sentences]
        flat = self.predict_logits(word_slots(sentences))
        return np.split(flat, np.cumsum(lengths)[:-1]) if lengths else []

    def tag(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """BIO tags of each sentence (Viterbi under BIO constraints: never an I-x after O or another type)."""
        from ..tasks.token.metrics import decode

        return decode(self.predict_word_logits(sentences), self.label_names)

    def word_contributions(self, words: Sequence[str], position: int, target: int) -> np.ndarray:
        """How much each word of the sentence moves the logit of tag ``target`` at ``position``.

        The gradient x value of each window feature of the word at ``position`` (for the linear student
        exactly its weight, as every value is 1), credited to the word the feature comes from (``w[-1]=``
        to the word before, and so on); words outside the window get 0. The bias is not a word's.
        """
        self._check_fitted()
        words = tuple(map(str, words))
        ids = torch.tensor(self.featurizer_.slot_ids(words, position), dtype=torch.int64)
        out = np.zeros(len(words), dtype=np.float64)
        if ids.numel() == 0:
            return out
        from .featurize import FeatureBatch

        batch = FeatureBatch(ids, torch.zeros(1, dtype=torch.int64), torch.ones(ids.numel())).to(self.device)
        with single_threaded():
            scores = feature_gradient_x_input(self.module_, batch, int(target)).cpu().numpy()
        np.add.at(out, self.featurizer_.sources(ids.numpy(), words, position), scores)
        return out

    def feature_contributions(self, words: Sequence[str], position: int, target: int):
        """The same as :meth:`word_contributions`, one row per feature: a DataFrame with ``feature``,
        ``word`` (the position it comes from) and ``score``, largest |score| first."""
        import pandas as pd

        words = tuple(map(str, words))
        ids = self.featurizer_.slot_ids(words, position)
        if not ids:
            return pd.DataFrame(columns=["feature", "word", "score"])
        from .featurize import FeatureBatch

        batch = FeatureBatch(torch.tensor(ids), torch.zeros(1, dtype=torch.int64), torch.ones(len(ids))).to(self.device)
        with single_threaded():
            scores = feature_gradient_x_input(self.module_, batch, int(target)).cpu().numpy()
        frame = pd.DataFrame({"feature": [self.featurizer_.features_[k] for k in ids],
                              "word": self.featurizer_.sources(ids, words, position), "score": scores})
        return frame.reindex(frame["score"].abs().sort_values(ascending=False).index).reset_index(drop=True)


class TokenLinearStudent(_TokenStudent, LinearStudent):
    """Linear token student: ``logits(word) = W . phi(window of the word) + b``; a feature's share of a tag's
    logit is exactly its weight (every value is 1)."""

    _kind = "token_linear"


class TokenMLPStudent(_TokenStudent, MLPStudent):
    """MLP token student over the same window features (read with gradient x input)."""

    _kind = "token_mlp"
