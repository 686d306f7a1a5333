"""Integrated gradients and gradient x input for the kd-lens students.

Captum ``IntegratedGradients`` / ``InputXGradient`` on the feature values of the text's
bag, from the empty bag (all values 0). For the linear student this gives exactly
weight x value per feature (completeness), whatever ``n_steps``. A feature's score is
split equally over the word positions it covers (a bigram gives half to each of its words,
a trigram a third).
"""

from __future__ import annotations

import numpy as np
import torch

from ..explanation import Explanation
from ..metrics import softmax as _softmax
from .common import _empty, eval_mode, model_lock, _record, resolve_target
from .gradients import run_ig


def _explain_student_gradient(student, text: str, method: str, target, opts: dict) -> Explanation:
    from captum.attr import IntegratedGradients

    from ..students import FeatureBatch, feature_gradient_x_input

    student.prepare([text])  # a student that scores unseen n-grams adds them first
    words, feature_ids, values, word_index = student.featurizer_.occurrences(text)
    module = student.module_
    device = next(module.parameters()).device
    feature_ids = feature_ids.to(device)
    values = values.to(device=device, dtype=torch.float32)
    n_features = int(feature_ids.numel())

    def forward(batch_values):
        rows = batch_values.shape[0]
        indices = feature_ids.repeat(rows)
        offsets = torch.arange(rows, device=device) * n_features
        return module(indices, offsets, batch_values.reshape(-1)).float()

    warnings: list[str] = []
    delta_value = None
    with model_lock(student), eval_mode(module):
        with torch.no_grad():
            both = torch.stack([values, torch.zeros_like(values)])
            logits = forward(both)
        probs = _softmax(logits[0].double().cpu().numpy())
        target = resolve_target(student, target, probs)
        if not words:
            return _empty(text, target, probs, method, student)
        if n_features == 0:
            warnings.append("none of the words is in the student's vocabulary: every score is 0")
            return _record(text, words, np.zeros(len(words)), target, probs, method, student, 0.0
                           if method == "integrated_gradients" else None, warnings)
        inputs = values.unsqueeze(0)
        if method == "integrated_gradients":
            gap = logits[0:1, target] - logits[1:2, target]
            attributions, delta_value = run_ig(IntegratedGradients(forward), inputs, torch.zeros_like(inputs),
                                                target, None, gap, opts, warnings)
        else:
            batch = FeatureBatch(feature_ids, torch.zeros(1, dtype=torch.long, device=device), values)
            attributions = feature_gradient_x_input(module, batch, target)[None]
    feature_scores = attributions.detach()[0].double().cpu().numpy()
    scores = np.zeros(len(words), dtype=np.float64)
    for score, positions in zip(feature_scores, word_index):
        share = score / len(positions)
        for position in positions:
            scores[position] += share
    return _record(text, words, scores, target, probs, method, student, delta_value, warnings)
