"""Training-time helpers of the Adam trainer: the featurized transfer set as a table of bags,
the per-text word mapping that ``attr_match`` needs, and the lazy L1 / weight-decay of the
feature table."""

from __future__ import annotations

import numpy as np
import torch

from .featurize import FeatureBatch, Featurizer

__all__: list[str] = []


class _BagTable:
    """The featurized transfer set kept as one CSR table; ``gather(rows)`` builds a batch."""

    def __init__(self, features: FeatureBatch, device: torch.device):
        n_values = features.indices.numel()
        self.indices = features.indices.to(device)
        self.values = features.values.to(device)
        self.starts = features.offsets.to(device)
        ends = torch.cat([features.offsets[1:], torch.tensor([n_values])])
        self.lengths = (ends - features.offsets).to(device)

    def gather(self, rows: torch.Tensor) -> FeatureBatch:
        lengths = self.lengths[rows]
        starts = self.starts[rows]
        offsets = torch.zeros_like(lengths)
        offsets[1:] = torch.cumsum(lengths, 0)[:-1]
        total = int(lengths.sum())
        position = torch.repeat_interleave(starts - offsets, lengths, output_size=total)
        position += torch.arange(total, device=position.device)
        return FeatureBatch(self.indices[position], offsets, self.values[position])


class _LazyRegularizer:
    """Weight decay and L1 on the feature table, applied lazily to the rows a batch touches.

    L1 makes ``objective = training loss + l1 * sum |W|`` (``W`` the feature table) and is
    applied as a proximal soft-threshold after each Adam step, in Adam's own metric
    (threshold ``lr * l1 / (sqrt(v_hat) + eps)`` per weight). Unlike a subgradient added to
    the loss this gives exact zeros, and the preconditioning keeps the L1 meaning: at a fixed
    point a weight is zero exactly when its loss gradient is smaller than ``l1``. Weight
    decay is AdamW's decoupled ``w *= 1 - lr * weight_decay`` per step.

    Both are meant to act on every row at every step, but a row untouched by a batch has no
    Adam update, and consecutive shrinks compose (``soft(soft(w, a), b) = soft(w, a + b)``),
    so each row keeps the step it was last regularised at and pays what it owes when its
    feature next appears (and once more at the end). That keeps the cost per batch small.
    """

    def __init__(self, weight: torch.Tensor, optimizer: torch.optim.Optimizer, lr: float, l1: float, weight_decay: float):
        self.weight, self.optimizer = weight, optimizer
        self.lr, self.l1, self.weight_decay = lr, l1, weight_decay
        self.beta2 = optimizer.param_groups[0]["betas"][1]
        self.eps = optimizer.param_groups[0]["eps"]
        self.steps = 0
        self.last = torch.zeros(weight.shape[0], dtype=torch.long, device=weight.device)

    def _shrink(self, rows: torch.Tensor, n_steps: torch.Tensor) -> None:
        with torch.no_grad():
            values = self.weight[rows]
            n_steps = n_steps.to(values.dtype)[:, None]
            if self.weight_decay > 0:
                values = values * (1.0 - self.lr * self.weight_decay) ** n_steps
            if self.l1 > 0:
                state = self.optimizer.state.get(self.weight, {})
                if "exp_avg_sq" in state:
                    bias_correction = 1.0 - self.beta2 ** max(int(state["step"]), 1)
                    scale = (state["exp_avg_sq"][rows] / bias_correction).sqrt() + self.eps
                else:
                    scale = torch.full_like(values, self.eps)
                threshold = self.lr * self.l1 * n_steps / scale
                values = torch.sign(values) * torch.clamp(values.abs() - threshold, min=0.0)
            self.weight[rows] = values

    def catch_up(self, rows: torch.Tensor) -> None:
        """Before an Adam step: the shrinks these rows missed while their features were absent."""
        owed = self.steps - self.last[rows]
        due = owed > 0
        if bool(due.any()):
            self._shrink(rows[due], owed[due])

    def step(self, rows: torch.Tensor) -> None:
        """After an Adam step: this step's shrink for the touched rows."""
        self.steps += 1
        self._shrink(rows, torch.ones_like(rows))
        self.last[rows] = self.steps

    def flush(self) -> None:
        """At the end of training: every row pays what it still owes."""
        rows = torch.arange(self.weight.shape[0], device=self.weight.device)
        self.catch_up(rows)
        self.last[:] = self.steps


class _AttrTable:
    """Per-text feature occurrences and how each one's score is shared over words."""

    def __init__(self, featurizer: Featurizer, texts: list[str], teacher_attributions):
        self.items = []
        for i, text in enumerate(texts):
            if teacher_attributions[i] is None:
                # No cached teacher attribution for this text: it is left out of attr_match
                # (all-zero mask) and still trained on the teacher's outputs.
                self.items.append(([], [], [], [], [], np.zeros(0, dtype=np.float32)))
                continue
            words, ids, values, word_index = featurizer.occurrences(text)
            scores = np.asarray(teacher_attributions[i], dtype=np.float32).reshape(-1)
            if scores.shape[0] != len(words):
                raise ValueError(
                    f"teacher_attributions[{i}] has {scores.shape[0]} scores but text {i} has {len(words)} words "
                    "(split_words); compute teacher attributions on the same words."
                )
            pair_occ, pair_pos, pair_share = [], [], []
            for k, positions in enumerate(word_index):
                share = 1.0 / len(positions)
                pair_occ.extend([k] * len(positions))
                pair_pos.extend(positions)
                pair_share.extend([share] * len(positions))
            self.items.append((ids.tolist(), values.tolist(), pair_occ, pair_pos, pair_share, scores))

    def batch(self, rows: list[int], device) -> dict:
        """The texts ``rows`` as one batch: ``features`` (a FeatureBatch of their feature
        occurrences), the occurrence -> word mapping (``pair_occ``, ``pair_word``,
        ``pair_share``), the teacher's word scores padded to ``width`` and their ``mask``."""
        width = max(1, max(len(self.items[r][5]) for r in rows))
        ids, values, offsets, pair_occ, pair_word, pair_share = [], [], [], [], [], []
        teacher = np.zeros((len(rows), width), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.float32)
        for b, r in enumerate(rows):
            f_ids, f_values, occ, pos, share, scores = self.items[r]
            base = len(ids)
            offsets.append(base)
            ids.extend(f_ids)
            values.extend(f_values)
            pair_occ.extend(base + k for k in occ)
            pair_word.extend(b * width + p for p in pos)
            pair_share.extend(share)
            teacher[b, : len(scores)] = scores
            mask[b, : len(scores)] = 1.0
        features = FeatureBatch(torch.tensor(ids, dtype=torch.long, device=device),
                                torch.tensor(offsets, dtype=torch.long, device=device),
                                torch.tensor(values, dtype=torch.float32, device=device))
        return {
            "features": features,
            "pair_occ": torch.tensor(pair_occ, dtype=torch.long, device=device),
            "pair_word": torch.tensor(pair_word, dtype=torch.long, device=device),
            "pair_share": torch.tensor(pair_share, dtype=torch.float32, device=device),
            "teacher": torch.from_numpy(teacher).to(device),
            "mask": torch.from_numpy(mask).to(device),
            "width": width,
        }
