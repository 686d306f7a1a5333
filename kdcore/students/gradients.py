"""Gradient x input of a student's feature values: the one computation behind attr_match's
differentiable word scores, a student's global importances and explain()'s gradient x input."""

from __future__ import annotations

import torch
from torch import nn

from .featurize import FeatureBatch

__all__ = ["feature_gradient_x_input"]


def feature_gradient_x_input(module: nn.Module, batch: FeatureBatch, target, create_graph: bool = False) -> torch.Tensor:
    """Gradient x input of every feature value in ``batch`` for the class ``target``.

    ``module`` is a student's module (``bag`` + ``head``); ``target`` a class id or a tensor
    of one class id per text. Returns a tensor shaped like ``batch.values``: the score of
    feature ``batch.indices[j]`` in its text, i.e. ``d logit_target / d value_j * value_j``
    (for the linear student exactly weight x value). With ``create_graph`` the scores stay
    differentiable with respect to the module's parameters (for the ``attr_match`` loss).
    Dropout is off inside the computation.
    """
    n_texts = batch.n_texts
    device = batch.values.device
    lengths = torch.diff(batch.offsets, append=torch.tensor([batch.indices.numel()], device=device))
    rows = torch.repeat_interleave(torch.arange(n_texts, device=device), lengths)
    if not torch.is_tensor(target) or target.ndim == 0:
        target = torch.full((n_texts,), int(target), dtype=torch.long, device=device)
    weight = module.bag.weight
    was_training = module.training
    module.train(False)
    try:
        with torch.enable_grad():
            values = batch.values.detach().clone().requires_grad_(True)
            # EmbeddingBag has no double backward for per-sample weights, so the bag sum is
            # written out with embedding + index_add (same numbers, differentiable twice).
            embedded = nn.functional.embedding(batch.indices, weight, sparse=bool(module.bag.sparse))
            summed = torch.zeros(n_texts, weight.shape[1], device=device, dtype=values.dtype)
            summed = summed.index_add(0, rows, embedded * values[:, None])
            chosen = module.head(summed).gather(1, target.to(device)[:, None]).sum()
            (grad,) = torch.autograd.grad(chosen, values, create_graph=create_graph)
    finally:
        module.train(was_training)
    scores = grad * values
    return scores if create_graph else scores.detach()
