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
    equally over the word positions it covers (a bigram gives half to each of its words,
    a trigram a third).

The methods, one family per module (as Captum keeps them)
    :mod:`.gradients`: ``integrated_gradients`` / ``gradient_x_input`` on the teacher's
    word embeddings, long texts window by window, and the IG convergence check and
    ``n_steps="auto"`` ladder (nested rules, :mod:`.ig_auto`). :mod:`.student_gradients`: the same two methods on a
    student's feature values. :mod:`.perturbation`: ``occlusion``, ``lime`` and
    ``shapley_sampling``, model-agnostic, a word "off" meaning the word is deleted.
    :mod:`.common`: what they share (model access, targets, records, the model lock).
    This module checks the options, dispatches, and explains several models at once.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..explanation import Explanation
from ..metrics import softmax as _softmax  # noqa: F401  (kept importable: one softmax for kd-lens)
from ..words import split_words
from .common import _is_student, _is_teacher, delete_words, model_logits, model_proba, resolve_target
from .gradients import IG_STEP_LADDER, _explain_teacher_gradient
from .perturbation import _explain_perturbation, _WeightedRidge  # noqa: F401  (_WeightedRidge: tests)
from .student_gradients import _explain_student_gradient

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
BASELINES = ("pad", "unk", "mask")

DEFAULT_OPTIONS: dict[str, Any] = {
    # integrated gradients
    "n_steps": 50,                 # int, or "auto" (fewest nested Clenshaw–Curtis points of IG_STEP_LADDER within tolerance)
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


def _explain_one(model, text: str, method: str, target, opts: dict, progress=None) -> Explanation:
    if not isinstance(text, str):
        raise ValueError(f"explain needs str texts, got {type(text).__name__}; convert or drop missing texts first.")
    if method in GRADIENT_METHODS:
        if _is_teacher(model):
            return _explain_teacher_gradient(model, text, split_words(text), method, target, opts, progress)
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
            progress: Callable[[int, int], None] | None = None, **options) -> list[Explanation]:
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
    progress: called as ``progress(done, total)`` by the teacher's gradient methods, with
        the text's windows explained so far: ``(0, total)`` first, then after each group of
        windows (:func:`.gradients.window_groups`), so a caller can show a long text's
        progress or draw the students' explanations first. Not called by the other models
        and methods.

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
    return [_explain_one(model, text, method, t, opts, progress) for text, t in zip(texts, targets)]


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
