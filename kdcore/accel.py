"""How the teacher uses the device: precision, attention kernel and batch shapes.

On the CPU everything stays as it always was: float32, batches of a fixed number of
length-sorted windows, fine-tuning batches drawn in random order. On a CUDA device:

- precision: bfloat16 autocast for prediction and fine-tuning (``precision="auto"``; pass
  ``"fp32"`` to a :class:`~kdcore.teacher.Teacher` to turn it off), weights kept in float32;
- attention: PyTorch's fused scaled-dot-product attention (``attn_implementation="sdpa"``)
  where the model supports it, its own attention otherwise;
- prediction batches: windows sorted by length and cut by a *token budget* sized to the
  card's memory (``padded tokens = windows x longest window``), so short windows travel in
  large batches and long ones in small, instead of a fixed count of windows;
- fine-tuning batches: the usual shuffled batches of ``batch_size`` texts, but drawn from
  groups of 50 batches sorted by length, so a batch holds texts of similar length and little
  padding (the batch order is shuffled again, so the schedule is not ordered by length).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator, Sequence

import numpy as np
import torch

__all__ = ["PRECISIONS", "autocast", "uses_bf16", "token_budget", "length_batches", "length_grouped_order",
           "load_with_sdpa"]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32")
GROUP_BATCHES = 50  # fine-tuning: batches per length-sorted group
_MIN_TOKENS, _MAX_TOKENS = 8_192, 262_144


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether work on ``device`` runs under bfloat16 autocast."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not valid; choose one of {', '.join(PRECISIONS)}.")
    return precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, precision: str = "auto"):
    """bfloat16 autocast on a CUDA device that supports it; nothing (float32) elsewhere."""
    if uses_bf16(device, precision):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def token_budget(device: torch.device, hidden_size: int, intermediate_size: int | None = None) -> int | None:
    """Padded tokens per prediction batch on a CUDA device (None on the CPU: fixed batch counts).

    Inference keeps about one layer's activations alive at a time; the feed-forward block's
    ``tokens x intermediate`` tensor is the largest. The budget lets that tensor, in
    bfloat16 and a few times over, fill a tenth of the card's memory, within [8k, 256k] tokens.
    """
    if device.type != "cuda":
        return None
    total = torch.cuda.get_device_properties(device).total_memory
    width = max(int(intermediate_size or 4 * hidden_size), hidden_size)
    tokens = int(0.1 * total / (width * 2 * 4))
    return int(min(max(tokens, _MIN_TOKENS), _MAX_TOKENS))


def length_batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
                   budget: int | None) -> Iterator[list[int]]:
    """Consecutive batches of ``order`` (indices sorted by ascending length).

    Without a budget: ``batch_size`` indices a batch (the CPU behaviour). With one: as many
    indices as keep ``count x longest length`` within the budget (at least one a batch).
    """
    order = list(order)
    if budget is None:
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]
        return
    batch: list[int] = []
    for index in order:
        longest = max(lengths[index], lengths[batch[-1]] if batch else 0)
        if batch and (len(batch) + 1) * longest > budget:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def length_grouped_order(permutation: np.ndarray, lengths: Sequence[int], batch_size: int,
                         rng: np.random.Generator) -> np.ndarray:
    """A shuffled order whose consecutive ``batch_size`` blocks hold texts of similar length.

    The permutation is cut into groups of ``GROUP_BATCHES`` batches; each group is sorted by
    length and cut into batches; the batches (the last, shorter one included) are shuffled.
    Every index appears once, so an epoch still sees every text once.
    """
    lengths = np.asarray(lengths)
    group = batch_size * GROUP_BATCHES
    batches = []
    for start in range(0, len(permutation), group):
        chunk = permutation[start:start + group]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    full = [b for b in batches if len(b) == batch_size]
    partial = [b for b in batches if len(b) < batch_size]
    shuffled = [full[i] for i in rng.permutation(len(full))]
    # A short batch goes last, so every batch_size block of the order is one batch.
    return np.concatenate(shuffled + partial) if batches else permutation


def load_with_sdpa(loader, source: str, **kwargs):
    """``loader(source, attn_implementation="sdpa", **kwargs)``; the model's own attention
    when it has no SDPA implementation."""
    try:
        return loader(source, attn_implementation="sdpa", **kwargs)
    except ValueError as err:
        if "sdpa" not in str(err).lower() and "scaled_dot_product" not in str(err).lower():
            raise
        logger.info("%s has no SDPA attention; using its own attention (%s)", source, err)
        return loader(source, **kwargs)
