"""Perturbation methods (``occlusion``, ``lime``, ``shapley_sampling``) for any model.

Model-agnostic and identical for every model: the interpretable features are the words,
a feature "off" means the word is *deleted* from the text (:func:`delete_words`), and
each Captum forward call re-predicts its whole batch of perturbed texts with one
``predict`` call. ``occlusion`` is Captum ``FeatureAblation`` (leave one word out:
score = f(x) - f(x without the word)); ``lime`` is Captum ``Lime`` with LIME's text
kernel (exponential kernel on cosine distance, width 0.25) and LIME's weighted ridge
(alpha 1, :class:`_WeightedRidge`) as the surrogate; ``shapley_sampling`` is Captum
``ShapleyValueSampling``. Sampling is seeded (``seed`` option) without touching the
global random state.
"""

from __future__ import annotations

import numpy as np
import torch

from ..explanation import Explanation
from ..metrics import softmax as _softmax
from ..words import Word
from .common import _empty, _record, delete_words, model_logits, resolve_target


class _WeightedRidge:
    """LIME's surrogate: weighted least squares with an L2 penalty and a free intercept,
    ``min sum_i w_i (y_i - x_i b - c)^2 + alpha ||b||^2`` with the kernel weights ``w`` as
    they come: scikit-learn's ``Ridge(alpha).fit(x, y, sample_weight=w)``, which the lime
    package (``Ridge(alpha=1)``) and Captum's ``SkLearnRidge`` use.

    Implements Captum's interpretable-model interface (``fit(DataLoader)``,
    ``representation()``, ``__call__``) in closed form, so LIME needs no scikit-learn.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, train_data, **kwargs):
        xs, ys, ws = [], [], []
        for x, y, w in train_data:
            xs.append(x.double()), ys.append(y.double().reshape(-1)), ws.append(w.double().reshape(-1))
        x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
        # The intercept is free, so centre on the weighted means; the penalty is weighed
        # against the weighted squared errors as they are (not normalised, not divided by n).
        share = w / w.sum().clamp_min(1e-12)
        x_mean = (share[:, None] * x).sum(0)
        y_mean = (share * y).sum()
        xc, yc = x - x_mean, y - y_mean
        gram = xc.T @ (w[:, None] * xc) + self.alpha * torch.eye(x.shape[1], dtype=x.dtype)
        self.coef_ = torch.linalg.solve(gram, xc.T @ (w * yc))
        self.intercept_ = y_mean - x_mean @ self.coef_
        return {}

    def representation(self) -> torch.Tensor:
        return self.coef_.float().unsqueeze(0)

    def __call__(self, x):
        return x.double() @ self.coef_ + self.intercept_


def _explain_perturbation(model, text: str, words: list[Word], method: str, target, opts: dict) -> Explanation:
    from captum.attr import FeatureAblation, Lime, ShapleyValueSampling
    from captum.attr._core.lime import get_exp_kernel_similarity_function

    logits = model_logits(model, [text])[0]
    probs = _softmax(logits)
    target = resolve_target(model, target, probs)
    if not words:
        return _empty(text, target, probs, method, model)
    spans = [(w.start, w.end) for w in words]
    seen: dict[str, np.ndarray] = {text: logits}

    def forward(presence: torch.Tensor) -> torch.Tensor:
        texts = [delete_words(text, spans, row) for row in (presence > 0.5).tolist()]
        new = list(dict.fromkeys(t for t in texts if t not in seen))
        if new:
            seen.update(zip(new, model_logits(model, new)))
        return torch.as_tensor(np.stack([seen[t] for t in texts]), dtype=torch.float32)

    inputs = torch.ones(1, len(words))
    per_eval = int(opts["perturbations_per_eval"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(opts["seed"]))
        if method == "occlusion":
            attributions = FeatureAblation(forward).attribute(
                inputs, baselines=0.0, target=target, perturbations_per_eval=per_eval)
        elif method == "lime":
            lime = Lime(forward, interpretable_model=_WeightedRidge(float(opts["ridge_alpha"])),
                        similarity_func=get_exp_kernel_similarity_function("cosine", float(opts["kernel_width"])))
            attributions = lime.attribute(inputs, baselines=0.0, target=target, n_samples=int(opts["n_samples"]),
                                          perturbations_per_eval=per_eval)
        else:
            attributions = ShapleyValueSampling(forward).attribute(
                inputs, baselines=0.0, target=target, n_samples=int(opts["n_samples"]),
                perturbations_per_eval=per_eval)
    scores = attributions.detach()[0].double().numpy()
    return _record(text, words, scores, target, probs, method, model, None, [])
