"""The embedding-augmented linear student (Aug-Linear, after Singh et al. 2023, "Augmenting
interpretable models with large language models during training").

Every n-gram ``g`` of the vocabulary has one number per class, as in the linear student:

    score_c(g) = a_c(g)                      free: its own weight ("free" term)
               + w_c . z(e(g))               embedding: the teacher encoder's mean-pooled
                                             embedding of the n-gram's own text
               + u_c . z(t(g))               teacher: the teacher's logits on the n-gram alone

(``z`` centres the frozen features over the vocabulary and whitens them as the texts sum
them, which keeps L-BFGS well conditioned on the correlated embedding dimensions;
``config.aug_terms`` picks the terms), and ``logits_c(x) = b_c + sum_g value_g(x) * score_c(g)``. Training fits ``a``, ``w``,
``u`` and ``b`` with full-batch L-BFGS (convex); the scores are then written into the same
``EmbeddingBag`` table the linear student uses, so prediction, explanations (complete, exactly
weight x value), the Weights view and save/load are the linear student's. ``w`` and ``u``
are kept, so an n-gram never seen in training still gets a score: with
``config.embed_unseen`` its features are computed on the fly (batched, cached) and its row
is appended to the table before the text is scored. The frozen features come from a
:class:`~kdcore.ngram_cache.NgramCache` over the teacher (:meth:`AugLinearStudent.use_teacher`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import threading
import warnings

import numpy as np
import torch
from torch import nn

from ..ngram_cache import NgramCache
from .linear import LinearStudent, _LinearModule
from .train_lbfgs import LbfgsProblem

if TYPE_CHECKING:  # the weights tables are pandas frames; pandas is imported where they are built
    import pandas as pd

__all__ = ["AugLinearStudent"]


class _AugLinearModule(_LinearModule):
    """The linear module (``bag`` holds every n-gram's score per class) plus what scores new
    n-grams: ``projection`` ``[k, C]`` over the standardised frozen features, and the teacher's
    own logits on each n-gram (``ngram_teacher_logits``, shown beside the weights)."""

    def __init__(self, n_features: int, n_classes: int, n_dims: int):
        super().__init__(n_features, n_classes)
        self.projection = nn.Parameter(torch.zeros(n_dims, n_classes))
        self.register_buffer("feature_mean", torch.zeros(n_dims))
        # float16: shown beside the weights, never computed with; halves its share of the file.
        self.register_buffer("ngram_teacher_logits", torch.zeros(n_features, n_classes, dtype=torch.float16))

    def standardize(self, raw: torch.Tensor) -> torch.Tensor:
        """Frozen features -> the centred ``z`` the projection reads (the whitening used in
        training is folded into the projection)."""
        return raw - self.feature_mean

    def append_rows(self, scores: torch.Tensor, teacher_logits: torch.Tensor) -> None:
        """Grow the table by new n-grams' score rows (ids after the existing ones)."""
        weight = torch.cat([self.bag.weight.detach(), scores.to(self.bag.weight)])
        self.bag = nn.EmbeddingBag.from_pretrained(weight, freeze=False, mode="sum")
        self.ngram_teacher_logits = torch.cat([self.ngram_teacher_logits,
                                               teacher_logits.to(self.ngram_teacher_logits)])


def _zca_whitening(centred: torch.Tensor) -> torch.Tensor:
    """ZCA whitening of the columns of ``centred`` ``[n, k]``; directions with (almost) no variance
    are scaled as if they had 1e-6 of the largest variance, not blown up."""
    covariance = (centred.double().T @ centred.double()) / (centred.shape[0] - 1)
    values, vectors = torch.linalg.eigh(covariance)
    values = values.clamp(min=float(values.max()) * 1e-6 if float(values.max()) > 0 else 1.0)
    return (vectors @ torch.diag(values.rsqrt()) @ vectors.T).float()


class AugLinearStudent(LinearStudent):
    """Additive student over n-grams whose scores also read the teacher's view of each n-gram
    (see the module docstring). Call :meth:`use_teacher` before ``fit`` (``distill`` and the
    run builder do) and after loading, for n-grams never seen in training."""

    _kind = "aug_linear"

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self._grow_lock = threading.Lock()
        self._warned_no_teacher = False
        self.ngram_cache_: NgramCache | None = None

    # -- the frozen n-gram features --------------------------------------------------------

    def use_teacher(self, teacher, cache_dir=None) -> "AugLinearStudent":
        """Read n-gram features from ``teacher`` (a Teacher, a zero-argument callable returning
        one, or an :class:`NgramCache`); ``cache_dir`` defaults to ``<teacher.cache_dir>/ngrams``."""
        if isinstance(teacher, NgramCache):
            self.ngram_cache_ = teacher
            return self
        if cache_dir is None and getattr(teacher, "cache_dir", None) is not None:
            cache_dir = teacher.cache_dir / "ngrams"
        self.ngram_cache_ = NgramCache(teacher, cache_dir)
        return self

    @property
    def _terms(self) -> set[str]:
        return set(self.config.aug_terms.split("+"))

    def _raw_features(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen features ``[n, k]`` the config's terms read, and the teacher's logits ``[n, C]``."""
        if self.ngram_cache_ is None:
            raise ValueError(f"Student {self.name!r} reads the teacher's n-gram features: call "
                             "student.use_teacher(teacher) first (distill() and the run builder do it).")
        embeddings, logits = self.ngram_cache_.features(names)
        parts = ([embeddings] if "embedding" in self._terms else []) + ([logits] if "teacher" in self._terms else [])
        raw = np.concatenate(parts, axis=1) if parts else np.zeros((len(names), 0), np.float32)
        return torch.from_numpy(raw), torch.from_numpy(logits)

    def _n_dims(self) -> int:
        teacher = self.ngram_cache_.teacher if self.ngram_cache_ is not None else None
        if teacher is None:
            raise ValueError(f"Student {self.name!r} needs student.use_teacher(teacher) before fit.")
        return ((teacher.model.config.hidden_size if "embedding" in self._terms else 0)
                + (len(teacher.label_names) if "teacher" in self._terms else 0))

    # -- building, training ----------------------------------------------------------------

    def _build_module(self, n_features: int, n_classes: int) -> nn.Module:
        return _AugLinearModule(n_features, n_classes, self._n_dims())

    def _module_for_state(self, state: dict, n_features: int, n_classes: int) -> nn.Module:
        return _AugLinearModule(n_features, n_classes, int(state["projection"].shape[0]))

    def _lbfgs_problem(self, module: nn.Module, matrix: torch.Tensor) -> LbfgsProblem:
        """Fit the free table ``a``, the projection ``P`` and the bias on ``logits = X a + (X F) P + b``
        (``F`` the frozen features of the vocabulary; ``X F`` computed once, centred and whitened
        over the texts; the whitening is kept so that a new n-gram's score is ``z(f) P``)."""
        config, device = self.config, module.bias.device
        if matrix is None:
            raise ValueError(f"Student {self.name!r} ({self.config.kind}) trains on a design held in memory (it "
                             "whitens its n-gram features over all texts); train it with fit(), not from shards.")
        raw, teacher_logits = self._raw_features(list(self.featurizer_.features_))
        frozen = (raw - raw.mean(dim=0)).to(device)
        summed = (matrix @ frozen).detach()  # [n_texts, k]: each text's sum of its n-grams' centred features
        text_mean = summed.mean(dim=0)
        with torch.no_grad():
            module.feature_mean.copy_(raw.mean(dim=0))
            module.ngram_teacher_logits.copy_(teacher_logits)
        whitening = torch.eye(summed.shape[1], device=device)
        if summed.shape[0] > 1 and summed.shape[1] > 0:
            # Whitened over the texts, as the optimiser sees them: L-BFGS is then well conditioned.
            whitening = _zca_whitening(summed - text_mean)
        dense = (summed - text_mean) @ whitening  # centred too; the bias takes the mean back (sync)
        offset = text_mean @ whitening
        free = "free" in self._terms
        table = torch.zeros_like(module.bag.weight, requires_grad=True)
        bias = torch.zeros_like(module.bias, requires_grad=True)
        projection = torch.zeros_like(module.projection, requires_grad=True)  # on the whitened features
        parameters = [table, projection, bias] if free else [projection, bias]

        def logits(block, rows):
            out = dense[rows] @ projection + bias
            return out + block @ table if free else out

        def penalty():
            total = config.aug_l2 * projection.pow(2).sum()
            return total + config.l2 * table.pow(2).sum() if free else total

        def sync():
            # module: bias + X (table + z W P) = bias + X table + (dense + offset) P, the same logits.
            with torch.no_grad():
                module.projection.copy_(whitening @ projection.detach())
                module.bag.weight.copy_(table.detach() + module.standardize(raw.to(device)) @ module.projection)
                module.bias.copy_(bias.detach() - offset @ projection.detach())

        return LbfgsProblem(parameters, logits, penalty, sync)

    # -- prediction on new n-grams ---------------------------------------------------------

    def prepare(self, texts) -> None:
        """Append the scores of the n-grams of ``texts`` the table lacks (``config.embed_unseen``)."""
        self._check_fitted()
        if not self.config.embed_unseen or not self._terms - {"free"}:
            return
        with self._grow_lock:
            unknown = self.featurizer_.unknown_features(texts)
            if not unknown:
                return
            if self.ngram_cache_ is None:
                if not self._warned_no_teacher:
                    warnings.warn(f"Student {self.name!r} scores n-grams it never saw in training with the teacher's "
                                  "view of them, but no teacher is attached: they count 0 here. Call "
                                  "student.use_teacher(teacher) (a run's students get their teacher).", stacklevel=3)
                    self._warned_no_teacher = True
                return
            raw, teacher_logits = self._raw_features(unknown)
            module = self.module_
            with torch.no_grad():
                device = module.bias.device
                scores = module.standardize(raw.to(device)) @ module.projection
            module.append_rows(scores, teacher_logits)
            self.featurizer_.add_features(unknown)
            self.n_nonzero_ = int(torch.count_nonzero(module.bag.weight.detach()))

    def weights(self) -> "pd.DataFrame":
        """The linear student's table (``feature``, ``class``, ``weight``: the n-gram's whole
        score) with ``teacher_logit``: the teacher's own logit for the class on the n-gram alone."""
        frame = super().weights()
        ids = {name: i for i, name in enumerate(self.featurizer_.features_)}
        teacher = self.module_.ngram_teacher_logits.detach().float().cpu().numpy()
        classes = {label: c for c, label in enumerate(self.label_names)}
        frame["teacher_logit"] = [float(teacher[ids[f], classes[c]]) for f, c in zip(frame["feature"], frame["class"])]
        return frame
