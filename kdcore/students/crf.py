"""A linear-chain CRF over BIO tags, as pure functions of tensors: the log-partition (forward
algorithm), per-word marginals, the structural distillation loss and Viterbi decoding.

A tag path ``y`` of a sentence scores ``start[y_0] + sum_i emission_i[y_i] + sum_i
transition[y_(i-1), y_i] + end[y_last]``; a path with a BIO-invalid step (``I-x`` after ``O``,
after the sentence start or after another type) is not a path at all: those transitions carry
:data:`FORBIDDEN` in training and minus infinity in decoding, so the model's probability of an
invalid sequence is zero and Viterbi never returns one.

The loss is structural knowledge distillation (Wang et al., ACL 2021, "Structural Knowledge
Distillation: Tractably Distilling Information for Structured Predictor"): the cross-entropy
``-E_teacher[log p_student(y)]`` between the teacher's distribution over tag paths and the CRF's.
The token teacher tags each word independently, so its distribution factorises over words and the
expectation is exact and cheap: the teacher's per-word marginals weight the emissions and start /
end scores, and the products of neighbouring marginals (restricted to valid steps and renormalised)
weight the transitions. With one-hot "marginals" (gold tags) it is the CRF's usual negative
log-likelihood, which trains the label-trained twin with the same code.
"""

from __future__ import annotations

import torch

from ..tasks.token.bio import allowed_transitions

__all__ = ["FORBIDDEN", "bio_masks", "log_partition", "marginals", "structural_kd_loss", "viterbi"]

FORBIDDEN = -1e4  # the score of a BIO-invalid step in training: exp() of it is 0 in float32


def bio_masks(label_names) -> tuple[torch.Tensor, torch.Tensor]:
    """``(start [C], transition [C, C])`` booleans of the valid BIO starts and steps."""
    start, transition = allowed_transitions(list(label_names))
    return torch.from_numpy(start), torch.from_numpy(transition)


def _masked(start, transition, end, allowed_start, allowed_transition, blocked: float):
    start = torch.where(allowed_start, start, torch.full_like(start, blocked))
    transition = torch.where(allowed_transition, transition, torch.full_like(transition, blocked))
    return start, transition, end


def log_partition(emissions: torch.Tensor, mask: torch.Tensor, start, transition, end,
                  allowed_start, allowed_transition) -> torch.Tensor:
    """``log Z`` ``[B]`` of padded sentences: ``emissions`` ``[B, L, C]``, ``mask`` ``[B, L]`` (True on
    words; every sentence at least one word, words first)."""
    start, transition, end = _masked(start, transition, end, allowed_start, allowed_transition, FORBIDDEN)
    # logsumexp over the previous tag as a matrix product in exp space (shifted by the row maximum):
    # a forbidden step's exp() is exactly 0.
    step_weights = torch.exp(transition)
    alpha = start + emissions[:, 0]
    for i in range(1, emissions.shape[1]):
        shift = alpha.max(dim=1, keepdim=True).values
        step = torch.log((torch.exp(alpha - shift) @ step_weights).clamp_min(1e-30)) + shift + emissions[:, i]
        alpha = torch.where(mask[:, i].unsqueeze(1), step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def marginals(emissions, mask, start, transition, end, allowed_start, allowed_transition) -> torch.Tensor:
    """Per-word tag marginals ``p(y_i = c)`` ``[B, L, C]`` (zeros on padding): the gradient of log Z
    with respect to the emissions (forward-backward)."""
    emissions = emissions.detach().requires_grad_(True)
    with torch.enable_grad():
        total = log_partition(emissions, mask, start.detach(), transition.detach(), end.detach(),
                              allowed_start, allowed_transition).sum()
        (grad,) = torch.autograd.grad(total, emissions)
    return grad * mask.unsqueeze(2)


def structural_kd_loss(emissions, mask, targets, start, transition, end, allowed_start,
                       allowed_transition) -> torch.Tensor:
    """Summed ``-E_q[log p_crf(y)]`` over the sentences, ``q`` the product of the per-word target
    distributions ``targets`` ``[B, L, C]`` (teacher probabilities, or one-hot gold tags)."""
    log_z = log_partition(emissions, mask, start, transition, end, allowed_start, allowed_transition)
    weights = mask.unsqueeze(2).to(emissions.dtype)
    targets = targets * weights
    first = targets[:, 0] * allowed_start  # an invalid first tag is no path: its mass goes to the valid ones
    first = first / first.sum(dim=1, keepdim=True).clamp_min(1e-12)
    expected = (targets * emissions).sum(dim=(1, 2)) + first @ start
    lengths = mask.sum(dim=1)
    last = targets[torch.arange(len(lengths)), lengths - 1]
    expected = expected + last @ end
    if emissions.shape[1] > 1:
        # Neighbouring marginals' products on the valid steps, renormalised per step:
        # sum_kl q(k) q'(l) A[k, l] T[k, l] / sum_kl q(k) q'(l) A[k, l], without the [B, L, C, C] tensor.
        allowed = allowed_transition.to(emissions.dtype)
        before, after = targets[:, :-1], targets[:, 1:]
        scored = ((before @ (allowed * transition)) * after).sum(dim=2)
        total = ((before @ allowed) * after).sum(dim=2)
        steps = mask[:, 1:].to(emissions.dtype)
        expected = expected + (steps * scored / total.clamp_min(1e-12)).sum(dim=1)
    return (log_z - expected).sum()


def viterbi(emissions: torch.Tensor, start, transition, end, allowed_start, allowed_transition) -> list[int]:
    """The best valid tag path of one sentence (``emissions`` ``[n, C]``), as tag ids."""
    start, transition, end = _masked(start, transition, end, allowed_start, allowed_transition, float("-inf"))
    n = emissions.shape[0]
    if n == 0:
        return []
    best = start + emissions[0]
    back = []
    for i in range(1, n):
        candidates = best.unsqueeze(1) + transition  # [previous, next]
        score, argmax = candidates.max(dim=0)
        back.append(argmax)
        best = score + emissions[i]
    tag = int((best + end).argmax())
    path = [tag]
    for argmax in reversed(back):
        tag = int(argmax[tag])
        path.append(tag)
    return path[::-1]
