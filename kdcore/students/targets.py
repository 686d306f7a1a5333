"""What a student learns from: the checked targets (teacher logits, gold labels, teacher hidden
vectors and attributions), the dev set scored during training, and the loss parts on the
student's outputs. Shared by both solvers (train_adam.py, train_lbfgs.py)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..config import LINEAR_KINDS, DistillConfig
from ..losses import LOSSES

__all__ = ["ConvergenceWarning", "Targets", "DevSet", "prepare_targets", "output_parts"]


class ConvergenceWarning(UserWarning):
    """A solver stopped at its iteration limit before its convergence test held
    (as scikit-learn's ``ConvergenceWarning``)."""


@dataclass
class Targets:
    """What a student learns from, checked against the texts: teacher logits ``[n, C]``,
    gold labels ``[n]`` (-1 = none), the teacher's hidden vectors (FitNets hint), the
    teacher's word attributions (attr_match), and the loss weights."""

    n_classes: int
    label_names: list[str]
    weights: dict[str, float]
    teacher: torch.Tensor | None = None
    gold: torch.Tensor | None = None
    hidden: torch.Tensor | None = None
    attributions: list | None = None

    def to(self, device) -> "Targets":
        move = lambda tensor: tensor.to(device) if tensor is not None else None  # noqa: E731
        return replace(self, teacher=move(self.teacher), gold=move(self.gold), hidden=move(self.hidden))


@dataclass
class DevSet:
    """Held-out texts scored after each pass (accuracy, macro-F1 in ``history_``)."""

    texts: list | None = None
    labels: object = None

    def metrics(self, student) -> dict[str, float]:
        if self.texts is None or self.labels is None:
            return {}
        from ..metrics import accuracy, macro_f1

        dev_labels = np.asarray(self.labels, dtype=np.int64)
        predicted = student.predict_logits(list(self.texts)).argmax(axis=1)
        keep = dev_labels >= 0
        if not keep.any():
            return {}
        gold, predicted = dev_labels[keep], predicted[keep]
        return {"dev_accuracy": accuracy(gold, predicted),
                "dev_macro_f1": macro_f1(gold, predicted, len(student.label_names))}


def prepare_targets(student, n_texts: int, teacher_logits, labels, label_names, distill: DistillConfig,
                    teacher_hidden, teacher_attributions) -> Targets:
    """Check what ``fit`` was given against the ``n_texts`` texts; raise ValueError saying
    what to pass where something does not fit."""
    if teacher_logits is None and labels is None:
        raise ValueError("fit needs teacher_logits (to distill) or labels (to train on gold labels), or both.")
    teacher = _check_teacher_logits(teacher_logits, n_texts) if teacher_logits is not None else None
    gold = _check_labels(labels, n_texts, teacher is not None) if labels is not None else None
    label_names = _label_names(teacher, gold, label_names)
    if gold is not None and (bool((gold < -1).any()) or bool((gold >= len(label_names)).any())):
        raise ValueError(f"labels must be class ids in [0, {len(label_names)}) or -1 for unlabelled.")
    hidden = _check_hidden(student, distill, teacher_hidden, n_texts)
    attributions = None
    if distill.attr_match > 0:
        if teacher_attributions is None:
            raise ValueError("distill.attr_match > 0 needs teacher_attributions (one array of word scores per text).")
        if teacher is None:
            raise ValueError("attr_match matches attributions for the teacher's predicted class; pass teacher_logits.")
        if len(teacher_attributions) != n_texts:
            raise ValueError(f"teacher_attributions must have one entry per text ({n_texts}); got {len(teacher_attributions)}.")
        attributions = teacher_attributions
    weights = _loss_weights(distill, teacher is not None, gold is not None)
    return Targets(len(label_names), label_names, weights, teacher, gold, hidden, attributions)


def _check_teacher_logits(teacher_logits, n_texts: int) -> torch.Tensor:
    teacher = torch.tensor(np.asarray(teacher_logits, dtype=np.float32))
    if teacher.ndim != 2 or teacher.shape[0] != n_texts:
        raise ValueError(f"teacher_logits must have shape [n_texts={n_texts}, n_classes]; got {tuple(teacher.shape)}.")
    if not torch.isfinite(teacher).all():
        raise ValueError("teacher_logits contain NaN or infinite values; recompute them.")
    return teacher


def _check_labels(labels, n_texts: int, has_teacher: bool) -> torch.Tensor:
    gold = torch.tensor(np.asarray(labels, dtype=np.int64))
    if gold.shape != (n_texts,):
        raise ValueError(f"labels must have one entry per text ({n_texts}); got shape {tuple(gold.shape)}.")
    if not has_teacher and not bool((gold >= 0).any()):
        raise ValueError("All labels are -1 (unlabelled); pass teacher_logits or some gold labels.")
    return gold


def _label_names(teacher, gold, label_names) -> list[str]:
    if teacher is not None:
        n_classes = teacher.shape[1]
    elif label_names is not None:
        n_classes = len(label_names)
    else:
        n_classes = int(gold.max()) + 1
    if n_classes < 2:
        raise ValueError(f"A classifier needs at least 2 classes; got {n_classes}.")
    names = [str(name) for name in label_names] if label_names is not None else [str(i) for i in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"Got {len(names)} label_names for {n_classes} classes; pass one name per class.")
    return names


def _check_hidden(student, distill: DistillConfig, teacher_hidden, n_texts: int) -> torch.Tensor | None:
    if distill.feature_align <= 0:
        return None
    if student.config.kind in LINEAR_KINDS:
        warnings.warn("feature_align needs a hidden layer; the linear student ignores it.", stacklevel=5)
        return None
    if teacher_hidden is None:
        raise ValueError("distill.feature_align > 0 needs teacher_hidden [n_texts, H] (the teacher's pooled vectors).")
    hidden = torch.tensor(np.asarray(teacher_hidden, dtype=np.float32))
    if hidden.ndim != 2 or hidden.shape[0] != n_texts:
        raise ValueError(f"teacher_hidden must have shape [n_texts={n_texts}, H]; got {tuple(hidden.shape)}.")
    return hidden


def _loss_weights(distill: DistillConfig, has_teacher: bool, has_gold: bool) -> dict[str, float]:
    if has_teacher:
        alpha = distill.alpha if has_gold else 0.0
        weights = {"kd_kl": 1.0 - alpha, "kd_mse": 1.0 - alpha, "teacher_ce": 1.0 - alpha, "hard_ce": alpha}
    else:
        weights = {"hard_ce": 1.0}
    weights["feature_align"] = distill.feature_align
    weights["attr_match"] = distill.attr_match
    return weights


def output_parts(logits: torch.Tensor, teacher: torch.Tensor | None, gold: torch.Tensor | None,
                 distill: DistillConfig, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """The loss parts on the student's outputs (both solvers): the teacher term chosen by
    ``distill.loss`` where teacher logits are given, and ``hard_ce`` on ``gold`` where it has
    weight."""
    parts: dict[str, torch.Tensor] = {}
    if teacher is not None:
        if distill.loss == "kd_kl":
            parts["kd_kl"] = LOSSES["kd_kl"](logits, teacher, distill.temperature)
        elif distill.loss == "kd_mse":
            parts["kd_mse"] = LOSSES["kd_mse"](logits, teacher)
        else:
            parts["teacher_ce"] = LOSSES["hard_ce"](logits, teacher.argmax(dim=1))
    if gold is not None and weights.get("hard_ce", 0.0) > 0:
        parts["hard_ce"] = LOSSES["hard_ce"](logits, gold)
    return parts
