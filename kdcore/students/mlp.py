"""The MLP student: EmbeddingBag(features -> hidden) + bias -> ReLU -> dropout -> Linear
(parameters, forward, pruning; training is in train.py)."""

from __future__ import annotations

import torch
from torch import nn

from .base import Student

__all__ = ["MLPStudent"]


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


class MLPStudent(Student):
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

