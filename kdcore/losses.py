"""Distillation losses: pure functions of tensors, looked up by name in ``LOSSES``.

Every function returns a scalar tensor (a mean over the batch) that can be back-propagated.
``compute_loss`` weights and sums named parts and returns the unweighted parts for logging,
as TextBrewer does.

The formula ``-mean(log(p_s / p_t))`` is deliberately absent: it is not a divergence (it is
unbounded below and rewards pushing ``p_s`` up without limit).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["kd_kl", "kd_mse", "hard_ce", "feature_align", "attr_match", "compute_loss", "LOSSES"]

_EPS = 1e-12
# attr_match: word-score vectors shorter than this (a tenth of a logit, summed over a text's
# words) are not normalised up to unit length; see attr_match.
ATTR_MATCH_FLOOR = 0.1


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Hinton et al. (2015): ``T^2 * KL(softmax(t / T) || softmax(s / T))``, mean over the batch.

    The ``T^2`` factor keeps the gradient's scale independent of the temperature, so the
    loss can be mixed with a hard-label loss without retuning its weight. Always >= 0 and
    zero (with zero gradient) exactly when the two logit rows differ by a constant.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def kd_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Tang et al. (2019): mean squared error between logits (mean over batch and classes)."""
    return F.mse_loss(student_logits, teacher_logits.detach())


def hard_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against gold labels; label ``-1`` means "no gold label" and is ignored.

    The mean runs over labelled rows only. With no labelled row the loss is a zero that is
    still attached to the graph (so ``backward()`` works and changes nothing).
    """
    labels = labels.long()
    if not bool((labels >= 0).any()):
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits, labels, ignore_index=-1)


def feature_align(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """FitNets hint (Romero et al. 2015): ``MSE(projection(student_hidden), teacher_hidden)``.

    ``projection`` (usually a trainable ``nn.Linear(H_student, H_teacher)``) maps the
    student's hidden layer into the teacher's space; ``None`` means the sizes already agree.
    """
    projected = student_hidden if projection is None else projection(student_hidden)
    if projected.shape != teacher_hidden.shape:
        raise ValueError(
            f"feature_align needs matching shapes after projection; got {tuple(projected.shape)} "
            f"and {tuple(teacher_hidden.shape)}. Pass a projection to the teacher's hidden size."
        )
    return F.mse_loss(projected, teacher_hidden.detach())


def attr_match(student_attr: torch.Tensor, teacher_attr: torch.Tensor, mask: torch.Tensor | None = None,
               floor: float = ATTR_MATCH_FLOOR) -> torch.Tensor:
    """Match word attributions: mean over texts of ``1 - cos(student_attr, teacher_attr)``.

    Inputs are ``[batch, words]`` (padded); ``mask`` is 1 for real words, 0 for padding.
    Each text's attribution vector is scaled to unit L2 norm over its real words, so only
    the *pattern* (which words, which sign, relative size) is matched and not the scale,
    which differs between models. For unit vectors ``||a - b||^2 = 2 (1 - cos)``, so this is
    exactly half the squared-error form; we return ``1 - cos`` because it reads directly
    (0 = same pattern, 1 = unrelated, 2 = opposite). A text whose vector is all zero has
    cosine 0 (loss 1); texts with no real words are left out; with none left the loss is 0.

    The student's vector is divided by ``max(norm, floor)``, not its norm: below ``floor``
    (in the scores' own unit, logits for gradient x input) the loss is ``1 - <s, t>/floor``,
    linear in the scores, so its gradient stays below ``1 / floor`` per text. Dividing by
    the bare norm gives a gradient of ``1 / norm``, about 1e12 at the all-zero scores of a
    zero-initialised linear student, which wrecks Adam's second-moment estimates. At or
    above ``floor`` the loss is exactly the cosine form.
    """
    if student_attr.shape != teacher_attr.shape:
        raise ValueError(f"attr_match needs equal shapes; got {tuple(student_attr.shape)} and {tuple(teacher_attr.shape)}.")
    if mask is None:
        mask = torch.ones_like(student_attr)
    mask = mask.to(student_attr.dtype)
    student = student_attr * mask
    teacher = teacher_attr.detach().to(student_attr.dtype) * mask
    student_unit = student / student.norm(dim=-1, keepdim=True).clamp_min(floor)
    teacher_unit = teacher / teacher.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    per_text = 1.0 - (student_unit * teacher_unit).sum(dim=-1)
    has_words = mask.sum(dim=-1) > 0
    if not bool(has_words.any()):
        return student_attr.sum() * 0.0
    return per_text[has_words].mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "kd_kl": kd_kl,
    "kd_mse": kd_mse,
    "hard_ce": hard_ce,
    "feature_align": feature_align,
    "attr_match": attr_match,
}


def compute_loss(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of named loss parts, and the *unweighted* parts as floats for logging.

    Every part needs a weight in ``weights`` (a missing one is a bug in the caller, so it
    raises); parts weighted 0 are logged but not added, so they cost no backward pass.
    """
    missing = sorted(set(parts) - set(weights))
    if missing:
        raise ValueError(f"compute_loss has no weight for part(s) {missing}; pass weights for every part.")
    if not parts:
        raise ValueError("compute_loss needs at least one loss part.")
    total = None
    for name, value in parts.items():
        weight = float(weights[name])
        if weight == 0.0:
            continue
        term = value * weight
        total = term if total is None else total + term
    if total is None:
        total = next(iter(parts.values())) * 0.0
    logged = {name: float(value.detach()) for name, value in parts.items()}
    return total, logged
