"""The linear student: ``logits = W . phi(x) + b``, an exact sparse linear model over words
and word pairs (parameters, forward, pruning, the weights table; training is in train.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .base import Student
from .train_lbfgs import LbfgsProblem

if TYPE_CHECKING:  # the weights tables are pandas frames; pandas is imported where they are built
    import pandas as pd

__all__ = ["LinearStudent"]


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



class LinearStudent(Student):
    """Sparse linear student: ``logits = W . phi(x) + b`` over words and word pairs.

    A word's attribution is exactly its features' weight x value (split as described in
    :meth:`Featurizer.occurrences`), which is also integrated gradients from the empty bag.
    ``config.l1`` (proximal L1 during training) and ``config.top_k`` (keep the k largest
    |w| per class after training) make ``W`` sparse; ``n_nonzero_`` counts its non-zeros.
    """

    _kind = "linear"

    def _build_module(self, n_features: int, n_classes: int) -> nn.Module:
        return _LinearModule(n_features, n_classes)

    def _lbfgs_problem(self, module: nn.Module, matrix: torch.Tensor) -> LbfgsProblem:
        """L-BFGS fits ``W`` and ``b`` of ``logits = X W + b`` with the penalty ``l2 * ||W||^2``."""
        weight, bias, l2 = module.bag.weight, module.bias, self.config.l2
        return LbfgsProblem([weight, bias], lambda block, rows: block @ weight + bias,
                            lambda: l2 * weight.pow(2).sum(), lambda: None)

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

