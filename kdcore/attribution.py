"""One ``explain()`` for every model and every method: word-level :class:`Explanation` records.

What is explained
    Every method, for every model, attributes the **target class logit** (the
    pre-softmax score of the target class), so that the numbers of two models or two
    methods are in the same units and can be compared. Students expose their logits;
    the teacher its classification head's logits; a foreign model that only has
    ``predict_proba`` is explained through ``log p`` (a logit vector of the same
    softmax). The integrated-gradients completeness axiom then reads: the scores of a
    text add up to ``logit_target(text) - logit_target(baseline)`` (up to the reported
    convergence delta). Faithfulness metrics (:mod:`kdcore.explain_metrics`) work on
    probabilities, as ERASER defines them.

The unit
    Scores are given per *word* of :func:`kdcore.words.split_words` (the teacher's own
    pre-tokenizer words). Teacher wordpieces are summed into the word whose character
    span contains the wordpiece's start offset; a student feature's score is split
    equally over the word positions it covers (a bigram gives half to each of its words).

Gradient methods (``integrated_gradients``, ``gradient_x_input``)
    Teacher: Captum ``IntegratedGradients`` / ``InputXGradient`` on the word-embedding
    output, fed to the model as ``inputs_embeds`` (with the real attention mask and
    token type ids). This is exactly ``LayerIntegratedGradients`` on
    ``model.get_input_embeddings()`` (a test checks they agree) but registers no hook on
    the model, so a teacher shared between threads (a dashboard) keeps predicting
    correctly while it is being explained. The baseline keeps [CLS] and [SEP] and puts
    [PAD] (``baseline="pad"``, or ``"unk"`` / ``"mask"``) at every other position.
    Gradient x input has no baseline: gradient of the target logit times the embedding.
    A wordpiece's attribution is the sum over the embedding dimension.
    Students: Captum ``IntegratedGradients`` / ``InputXGradient`` on the feature values of
    the text's bag, from the empty bag (all values 0). For the linear student this gives
    exactly weight x value per feature (completeness), whatever ``n_steps``.

Integrated-gradients convergence
    The convergence delta (Captum's definition) is ``sum(attributions) - (f(x) -
    f(baseline))``, f(x) and f(baseline) taken from kd-lens's own forward pass. It is
    flagged in ``Explanation.warnings`` when ``|delta| > max(delta_atol, delta_rtol *
    |f(x) - f(baseline)|)`` (defaults 0.01 logit and 5%). ``n_steps="auto"`` takes the
    fewest steps of ``IG_STEP_LADDER`` whose delta is within that tolerance and says
    which in the warnings.

Long texts (teacher)
    A text longer than one window is explained window by window (one Captum call, the
    windows batched); each wordpiece's attribution is taken from the window in which it
    is most central (farthest from the window's edges, where it has the most context),
    and a warning says "explained in N windows". Completeness then holds per window,
    not for the averaged logits of the whole text.

Perturbation methods (``occlusion``, ``lime``, ``shapley_sampling``)
    Model-agnostic and identical for every model: the interpretable features are the
    words, a feature "off" means the word is *deleted* from the text
    (:func:`delete_words`), and each Captum forward call re-predicts its whole batch of
    perturbed texts with one ``predict`` call. ``occlusion`` is Captum
    ``FeatureAblation`` (leave one word out: score = f(x) - f(x without the word));
    ``lime`` is Captum ``Lime`` with LIME's text kernel (exponential kernel on cosine
    distance, width 0.25) and LIME's weighted ridge (alpha 1) as the surrogate;
    ``shapley_sampling`` is Captum ``ShapleyValueSampling``. Sampling is seeded
    (``seed`` option) without touching the global random state.
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
import threading
import weakref
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .explanation import Explanation
from .metrics import softmax as _softmax
from .words import Word, split_words

__all__ = [
    "METHODS", "METHOD_NAMES", "GRADIENT_METHODS", "PERTURBATION_METHODS", "IG_STEP_LADDER",
    "DEFAULT_OPTIONS", "explain", "explain_many", "delete_words", "model_logits", "model_proba",
    "resolve_target",
]

METHODS = ("integrated_gradients", "gradient_x_input", "occlusion", "lime", "shapley_sampling")
METHOD_NAMES = {
    "integrated_gradients": "Integrated Gradients",
    "gradient_x_input": "Gradient x Input",
    "occlusion": "Occlusion (leave one word out)",
    "lime": "LIME",
    "shapley_sampling": "Shapley value sampling",
}
GRADIENT_METHODS = ("integrated_gradients", "gradient_x_input")
PERTURBATION_METHODS = ("occlusion", "lime", "shapley_sampling")
IG_STEP_LADDER = (8, 16, 32, 64, 128)
BASELINES = ("pad", "unk", "mask")

DEFAULT_OPTIONS: dict[str, Any] = {
    # integrated gradients
    "n_steps": 50,                 # int, or "auto" (fewest of IG_STEP_LADDER within tolerance)
    "ig_method": "gausslegendre",  # Captum's integration rule
    "internal_batch_size": 64,     # interpolation rows per forward/backward (teacher)
    "baseline": "pad",             # teacher baseline token: pad | unk | mask
    "delta_rtol": 0.05,            # flag |delta| > max(delta_atol, delta_rtol * |f(x) - f(baseline)|)
    "delta_atol": 0.01,
    # perturbation methods
    "n_samples": None,             # lime: 200, shapley_sampling: 25 (Captum's meaning for each)
    "perturbations_per_eval": 256,  # perturbed texts per predict call
    "kernel_width": 0.25,          # lime: exponential kernel width on cosine distance (LIME's text default)
    "ridge_alpha": 1.0,            # lime: L2 penalty of the weighted linear surrogate (LIME's default)
    "seed": 0,                     # lime / shapley_sampling sampling seed
}
_DEFAULT_SAMPLES = {"lime": 200, "shapley_sampling": 25}


# ---------------------------------------------------------------------------------- helpers

def delete_words(text: str, spans: Sequence[tuple[int, int]], keep_mask: Sequence[bool]) -> str:
    """The text with the words whose ``keep_mask`` is false deleted.

    The result is rebuilt from the original string: each kept word's characters, and
    between two kept words that were neighbours the original text between them. Where
    words were deleted between two kept words, the original whitespace after the left
    word (else before the right one, else one space) separates them, so kept words never
    fuse: ``split_words`` of the result gives exactly the kept words, in order.

    >>> delete_words("Not good, really.", [(0, 3), (4, 8), (8, 9), (10, 16), (16, 17)],
    ...              [True, False, True, True, True])
    'Not , really.'
    """
    if len(spans) != len(keep_mask):
        raise ValueError(f"delete_words needs one keep flag per span; got {len(spans)} spans and {len(keep_mask)} flags.")
    kept = [i for i, keep in enumerate(keep_mask) if keep]
    if not kept:
        return ""
    parts = [text[spans[kept[0]][0]:spans[kept[0]][1]]]
    for left, right in zip(kept, kept[1:]):
        if right == left + 1:
            gap = text[spans[left][1]:spans[right][0]]
        else:
            after_left = text[spans[left][1]:spans[left + 1][0]]
            before_right = text[spans[right - 1][1]:spans[right][0]]
            gap = next((g for g in (after_left, before_right) if g and g.isspace()), " ")
        parts.append(gap)
        parts.append(text[spans[right][0]:spans[right][1]])
    return "".join(parts)


def _is_teacher(model) -> bool:
    from .teacher import Teacher

    return isinstance(model, Teacher)


def _is_student(model) -> bool:
    return hasattr(model, "featurizer_") and hasattr(model, "module_")


def model_logits(model, texts: Sequence[str]) -> np.ndarray:
    """Logits [n, classes] of any model: the teacher's and students' own, else ``log p``.

    The teacher's disk cache is bypassed: perturbed texts are never worth caching.
    """
    texts = list(texts)
    if _is_teacher(model):
        return np.asarray(model.predict_logits(texts, use_cache=False), dtype=np.float64)
    if hasattr(model, "predict_logits"):
        return np.asarray(model.predict_logits(texts), dtype=np.float64)
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"{type(model).__name__} has neither predict_logits nor predict_proba; it cannot be explained.")
    probs = np.asarray(model.predict_proba(texts), dtype=np.float64)
    return np.log(np.clip(probs, 1e-12, None))


def model_proba(model, texts: Sequence[str]) -> np.ndarray:
    """Probabilities [n, classes] of any model (the teacher's disk cache bypassed)."""
    texts = list(texts)
    if _is_teacher(model):
        return np.asarray(model.predict_proba(texts, use_cache=False), dtype=np.float64)
    return np.asarray(model.predict_proba(texts), dtype=np.float64)


def resolve_target(model, target, probs: np.ndarray | None = None) -> int:
    """A class index from ``target``: None (the predicted class), an index, or a label name."""
    label_names = list(getattr(model, "label_names", []) or [])
    n_classes = len(label_names) if label_names else (len(probs) if probs is not None else None)
    if target is None:
        if probs is None:
            raise ValueError("target=None needs the model's probabilities to pick the predicted class.")
        return int(np.argmax(probs))
    if isinstance(target, str):
        if target in label_names:
            return label_names.index(target)
        raise ValueError(f"target {target!r} is not a label of {getattr(model, 'name', 'the model')}; "
                         f"choose one of {label_names} or a class index.")
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"target must be None, a class index or a label name, got {target!r}.")
    target = int(target)
    if n_classes is not None and not 0 <= target < n_classes:
        raise ValueError(f"target {target} is out of range: the model has {n_classes} classes (0..{n_classes - 1}).")
    return target


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module):
    """Dropout off while explaining; the module's mode is restored afterwards."""
    was_training = module.training
    if was_training:
        module.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        if was_training:
            module.train()


def _check_options(method: str, options: Mapping[str, Any]) -> dict:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; choose one of {', '.join(METHODS)}.")
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"Unknown explain option(s) {sorted(unknown)}; valid options: {sorted(DEFAULT_OPTIONS)}.")
    opts = {**DEFAULT_OPTIONS, **options}
    if opts["n_samples"] is None:
        opts["n_samples"] = _DEFAULT_SAMPLES.get(method, 0)
    steps = opts["n_steps"]
    if not (steps == "auto" or (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 2)):
        raise ValueError(f"n_steps must be an int >= 2 or 'auto', got {steps!r}.")
    if opts["baseline"] not in BASELINES:
        raise ValueError(f"baseline={opts['baseline']!r} is not valid; choose one of {', '.join(BASELINES)}.")
    for name in ("internal_batch_size", "perturbations_per_eval"):
        if int(opts[name]) < 1:
            raise ValueError(f"{name} must be >= 1, got {opts[name]!r}.")
    if method in ("lime", "shapley_sampling") and int(opts["n_samples"]) < 1:
        raise ValueError(f"n_samples must be >= 1 for {method}, got {opts['n_samples']!r}.")
    for name in ("kernel_width", "delta_rtol", "delta_atol", "ridge_alpha"):
        if not float(opts[name]) >= 0:
            raise ValueError(f"{name} must be >= 0, got {opts[name]!r}.")
    return opts


def _tolerance(gap: torch.Tensor, opts: dict) -> torch.Tensor:
    return torch.clamp(gap.abs() * float(opts["delta_rtol"]), min=float(opts["delta_atol"]))


def _run_ig(ig, inputs: torch.Tensor, baselines: torch.Tensor, target: int, extra, gap: torch.Tensor, opts: dict,
            warnings: list[str]) -> tuple[torch.Tensor, float]:
    """Captum integrated gradients with the fixed or automatic step count; flags a high delta.

    ``gap`` = f(x) - f(baseline) per example, from the forward pass made anyway for the
    probabilities. The convergence delta is Captum's, ``sum(attributions) - gap`` per
    example, computed from that gap rather than by ``return_convergence_delta=True``,
    which would run the model on the inputs and baselines a second time.
    """
    batch = max(int(opts["internal_batch_size"]), inputs.shape[0])

    def attribute(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        attributions = ig.attribute(inputs, baselines=baselines, target=target, additional_forward_args=extra,
                                    n_steps=steps, method=opts["ig_method"], internal_batch_size=batch)
        totals = attributions.detach().reshape(attributions.shape[0], -1).double().sum(1).cpu()
        return attributions, totals - gap

    gap = gap.double().cpu()
    tolerance = _tolerance(gap, opts)
    if opts["n_steps"] == "auto":
        for steps in IG_STEP_LADDER:
            attributions, delta = attribute(steps)
            if bool((delta.abs() <= tolerance).all()):
                break
        warnings.append(f"integrated gradients: n_steps={steps} chosen automatically "
                        f"(the fewest of {list(IG_STEP_LADDER)} within the delta tolerance)")
    else:
        steps = int(opts["n_steps"])
        attributions, delta = attribute(steps)
    worst = int(delta.abs().argmax())
    delta_value = float(delta[worst])
    if abs(delta_value) > float(tolerance[worst]):
        warnings.append(
            f"integrated gradients did not converge: |delta| = {abs(delta_value):.4g} exceeds the tolerance "
            f"{float(tolerance[worst]):.4g} (max of {opts['delta_atol']} and {opts['delta_rtol']:.0%} of "
            f"|f(x) - f(baseline)| = {abs(float(gap[worst])):.4g}) at n_steps={steps}; raise n_steps or use "
            "n_steps='auto'")
    return attributions, delta_value


# ---------------------------------------------------------------------------------- teacher

# One lock per model: _eval_mode flips a training module to eval and back, and two threads
# explaining one shared (dashboard) model must not interleave those flips; it also keeps a
# shared teacher from running several heavy Captum passes at once.
_LOCKS: "weakref.WeakKeyDictionary[Any, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _model_lock(model) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


def _window_starts(teacher, text: str, windows: list[dict]) -> list[int]:
    """Position in the text's wordpiece sequence of each window's first body token."""
    if len(windows) == 1:
        return [0]
    encoded = teacher.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                return_attention_mask=False, return_token_type_ids=False)
    full = list(zip(encoded["input_ids"], map(tuple, encoded["offset_mapping"])))
    starts, position = [], 0
    for window in windows:
        body = list(zip(window["input_ids"][1:-1], map(tuple, window["offsets"][1:-1])))
        found = None
        for candidate in range(position, len(full) - len(body) + 1):
            if full[candidate:candidate + len(body)] == body:
                found = candidate
                break
        if found is None:  # not expected: windows are slices of the text's wordpieces
            raise RuntimeError("A teacher window is not a slice of the text's wordpieces; cannot place it.")
        starts.append(found)
        position = found
    return starts


def _teacher_token_scores(windows: list[dict], starts: list[int], window_scores: np.ndarray):
    """Per wordpiece of the text: (start offset, score), each from its most central window."""
    best: dict[int, tuple[int, float, int]] = {}  # global position -> (centrality, score, start offset)
    for k, (window, start) in enumerate(zip(windows, starts)):
        body_len = len(window["input_ids"]) - 2
        for j in range(body_len):
            position = start + j
            centrality = min(j, body_len - 1 - j)
            if position not in best or centrality > best[position][0]:
                best[position] = (centrality, float(window_scores[k, j + 1]), window["offsets"][j + 1][0])
    return [(best[p][2], best[p][1]) for p in sorted(best)]


def _tokens_to_words(words: list[Word], token_scores: list[tuple[int, float]]) -> tuple[np.ndarray, int]:
    starts = [w.start for w in words]
    scores = np.zeros(len(words), dtype=np.float64)
    orphans = 0
    for offset, score in token_scores:
        index = bisect.bisect_right(starts, offset) - 1
        if index >= 0 and offset < words[index].end:
            scores[index] += score
        else:
            orphans += 1
    return scores, orphans


def _explain_teacher_gradient(teacher, text: str, words: list[Word], method: str, target, opts: dict) -> Explanation:
    from captum.attr import InputXGradient, IntegratedGradients

    model = teacher.model
    device = teacher.device
    tokenizer = teacher.tokenizer
    windows = teacher.encode_windows(text)
    n_windows = len(windows)
    width = max(len(w["input_ids"]) for w in windows)
    pad_id = tokenizer.pad_token_id
    baseline_id = {"pad": pad_id, "unk": tokenizer.unk_token_id, "mask": tokenizer.mask_token_id}[opts["baseline"]]
    if baseline_id is None:
        raise ValueError(f"The teacher's tokenizer has no {opts['baseline']} token; use baseline='pad'.")
    input_ids = torch.full((n_windows, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n_windows, width), dtype=torch.long)
    baseline_ids = input_ids.clone()
    for row, window in enumerate(windows):
        ids = window["input_ids"]
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        baseline_ids[row, :len(ids)] = baseline_id
        baseline_ids[row, 0], baseline_ids[row, len(ids) - 1] = ids[0], ids[-1]  # keep [CLS] / [SEP]
    input_ids, baseline_ids, attention = input_ids.to(device), baseline_ids.to(device), attention.to(device)
    token_types = torch.zeros_like(input_ids)
    embeddings = model.get_input_embeddings()

    # DistilBERT-style models take no token type ids; BERT and RoBERTa get explicit zeros.
    takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def forward(inputs_embeds, attention_mask, token_type_ids):
        extra_inputs = {"token_type_ids": token_type_ids} if takes_token_types else {}
        out = model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra_inputs)
        return out.logits.float()

    warnings: list[str] = []
    delta_value = None
    with _model_lock(teacher), _eval_mode(model):
        with torch.no_grad():
            input_embeds = embeddings(input_ids).detach()
            baseline_embeds = embeddings(baseline_ids).detach()
            logits = forward(torch.cat([input_embeds, baseline_embeds]), torch.cat([attention, attention]),
                             torch.cat([token_types, token_types]))
        window_logits, baseline_logits = logits[:n_windows], logits[n_windows:]
        # The text's prediction averages its windows' logits, as Teacher.predict_logits does.
        text_logits = window_logits.mean(0).double().cpu().numpy()
        probs = _softmax(text_logits)
        target = resolve_target(teacher, target, probs)
        extra = (attention, token_types)
        if not words:
            return _empty(text, target, probs, method, teacher)
        if method == "integrated_gradients":
            gap = window_logits[:, target] - baseline_logits[:, target]
            attributions, delta_value = _run_ig(IntegratedGradients(forward), input_embeds, baseline_embeds, target,
                                                extra, gap, opts, warnings)
        else:
            attributions = InputXGradient(forward).attribute(input_embeds.clone().requires_grad_(), target=target,
                                                             additional_forward_args=extra)
    window_scores = attributions.detach().sum(-1).double().cpu().numpy()
    starts = _window_starts(teacher, text, windows)
    scores, orphans = _tokens_to_words(words, _teacher_token_scores(windows, starts, window_scores))
    if n_windows > 1:
        warnings.append(f"explained in {n_windows} windows (each wordpiece scored in the window where it is most central)")
    if orphans:
        warnings.append(f"{orphans} wordpiece(s) lay outside every word and were left out")
    return _record(text, words, scores, target, probs, method, teacher, delta_value, warnings)


# ---------------------------------------------------------------------------------- students

def _explain_student_gradient(student, text: str, method: str, target, opts: dict) -> Explanation:
    from captum.attr import IntegratedGradients

    from .students import FeatureBatch, feature_gradient_x_input

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
    with _model_lock(student), _eval_mode(module):
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
            attributions, delta_value = _run_ig(IntegratedGradients(forward), inputs, torch.zeros_like(inputs),
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


# ---------------------------------------------------------------------------------- perturbation

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


# ---------------------------------------------------------------------------------- records

def _record(text, words, scores, target, probs, method, model, delta, warnings) -> Explanation:
    return Explanation(
        text=text, words=[w.text for w in words], spans=[(w.start, w.end) for w in words], scores=scores,
        target=int(target), probs=probs, method=method, model_name=str(getattr(model, "name", type(model).__name__)),
        label_names=list(getattr(model, "label_names", []) or []), convergence_delta=delta, warnings=list(warnings),
    )


def _empty(text, target, probs, method, model) -> Explanation:
    return _record(text, [], np.zeros(0), target, probs, method, model, None,
                   ["the text has no words to attribute (empty or whitespace only)"])


def _explain_one(model, text: str, method: str, target, opts: dict) -> Explanation:
    if not isinstance(text, str):
        raise ValueError(f"explain needs str texts, got {type(text).__name__}; convert or drop missing texts first.")
    if method in GRADIENT_METHODS:
        if _is_teacher(model):
            return _explain_teacher_gradient(model, text, split_words(text), method, target, opts)
        if _is_student(model):
            return _explain_student_gradient(model, text, method, target, opts)
        raise ValueError(f"{method} needs a Teacher or a kd-lens student; for {type(model).__name__} use one of "
                         f"{', '.join(PERTURBATION_METHODS)}.")
    if _is_student(model):
        words = split_words(text, getattr(model.featurizer_, "lowercase", True))
    else:
        words = split_words(text)
    return _explain_perturbation(model, text, words, method, target, opts)


def explain(model, texts: str | Sequence[str], method: str = "integrated_gradients", target=None,
            **options) -> list[Explanation]:
    """Word-level explanations of ``model``'s predictions for ``texts`` (a str or a list).

    Parameters
    ----------
    model: a :class:`~kdcore.teacher.Teacher`, a kd-lens student (``featurizer_`` and
        ``module_``), or, for the perturbation methods, any object with ``name``,
        ``label_names`` and ``predict_proba(texts)``.
    method: one of :data:`METHODS` (display names in :data:`METHOD_NAMES`).
    target: the class to explain: None (each text's predicted class), a class index or a
        label name, or a sequence of those, one per text.
    options: see :data:`DEFAULT_OPTIONS` (``n_steps`` int or ``"auto"``, ``ig_method``,
        ``internal_batch_size``, ``baseline`` pad|unk|mask, ``delta_rtol``, ``delta_atol``,
        ``n_samples``, ``perturbations_per_eval``, ``kernel_width``, ``ridge_alpha``, ``seed``).

    Returns one :class:`Explanation` per text (a list, also for a single str). The target
    class logit is attributed for every model and method (see the module docstring).
    """
    opts = _check_options(method, options)
    texts = [texts] if isinstance(texts, str) else list(texts)
    if target is not None and not isinstance(target, (str, int, np.integer)):
        targets = list(target)
        if len(targets) != len(texts):
            raise ValueError(f"Got {len(targets)} targets for {len(texts)} texts; pass one target or one per text.")
    else:
        targets = [target] * len(texts)
    return [_explain_one(model, text, method, t, opts) for text, t in zip(texts, targets)]


def explain_many(models, text: str, method: str = "integrated_gradients", target=None,
                 **options) -> dict[str, Explanation]:
    """Explain one text with several models for the SAME target class, keyed by model name.

    ``models`` is a list of models or a {name: model} mapping. With ``target=None`` the
    target is the teacher's predicted class when a Teacher is among the models, else the
    first model's. A target is passed to every model by label name when the models share
    it (so models with the same labels in another order still explain the same class),
    else by index.
    """
    if isinstance(models, Mapping):
        named = list(models.items())
    else:
        named = [(str(getattr(m, "name", type(m).__name__)), m) for m in models]
    if not named:
        raise ValueError("explain_many needs at least one model.")
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"Model names must be unique to key the results; got {names}. Pass a dict {{name: model}}.")
    if target is None:
        reference = next((m for _, m in named if _is_teacher(m)), named[0][1])
        index = int(np.argmax(model_logits(reference, [text])[0]))
        labels = list(getattr(reference, "label_names", []) or [])
        target = labels[index] if labels else index
    elif not isinstance(target, str):
        reference = named[0][1]
        labels = list(getattr(reference, "label_names", []) or [])
        index = resolve_target(reference, target, None)
        target = labels[index] if labels else index
    out = {}
    for name, model in named:
        model_target = target
        if isinstance(target, str) and target not in (getattr(model, "label_names", []) or []):
            raise ValueError(f"Model {name!r} has no label {target!r} (labels: {getattr(model, 'label_names', [])}); "
                             "explain_many compares models with the same labels.")
        out[name] = explain(model, text, method=method, target=model_target, **options)[0]
    return out
