"""How faithful an explanation is to the model it explains (ERASER), and the deletion curve.

Faithfulness (ERASER, DeYoung et al. 2020, with ferret's defaults)
    The *rationale* of size k is the k words with the highest positive scores (only
    positively attributed words count); k = ceil(fraction x n_words), at least 1, at most
    the number of positive words. Words are *deleted* from the text
    (:func:`kdcore.attribution.delete_words`), not masked, and the same model that was
    explained re-predicts; p is the probability of the explanation's target class.
    - ``comprehensiveness`` = p(x) - p(x without the rationale); higher is better.
    - ``sufficiency`` = p(x) - p(rationale only); lower is better (can be negative).
    - ``aopc_comprehensiveness`` / ``aopc_sufficiency``: their means over the rationale
      sizes 1, 5, 10, 20 and 50% of the words (:data:`AOPC_FRACTIONS`).
    - ``log_odds``: logit(p(x without the top 20% rationale)) - logit(p(x)), natural log,
      p clipped to [1e-6, 1 - 1e-6] (Shrikumar et al. 2017 replace the top words; kd-lens
      deletes them, as for every other metric); lower (more negative) is better.
    - ``tau_loo``: Kendall's tau-b between the scores and the leave-one-out drops
      p(x) - p(x without word i); higher is better.
    With no positively attributed word the rationale metrics are NaN (tau_loo is still
    defined). :func:`faithfulness` computes all of them with one batched predict call.

Which class is explained
    Every model explains a text for the same class, the teacher's predicted class, so that
    explanations can be compared; the faithfulness metrics above are for that class. ERASER
    defines them for the model's own predicted class; where a student predicts another class
    than the teacher, ``comprehensiveness_own_class`` and ``sufficiency_own_class``
    (:func:`own_class_faithfulness`) explain and measure it for its own class (equal to the
    teacher-class numbers where the two classes agree).

:data:`kdcore.explain_metrics.DEFINITIONS` states each in one line for the dashboard and the report.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .explain_agreement import k_for, kendall_with_reason, top_k_indices
from .explanation import Explanation

# kdcore.attribution (torch) is imported by the functions that run a model, not here: the metric names are
# read by pages and reports that never load a model.

__all__ = [
    "AOPC_FRACTIONS", "FAITHFULNESS_METRICS", "OWN_CLASS_METRICS", "faithfulness", "comprehensiveness",
    "sufficiency", "aopc_comprehensiveness", "aopc_sufficiency", "log_odds", "tau_loo", "own_class_faithfulness",
    "deletion_curve",
]

AOPC_FRACTIONS = (0.01, 0.05, 0.10, 0.20, 0.50)
FAITHFULNESS_METRICS = ("comprehensiveness", "sufficiency", "aopc_comprehensiveness", "aopc_sufficiency",
                        "log_odds", "tau_loo")
# ERASER's pair on each model's own predicted class (the metrics above: on the teacher's class).
OWN_CLASS_METRICS = ("comprehensiveness_own_class", "sufficiency_own_class")

_NAN = float("nan")
_PROB_CLIP = 1e-6


# ---------------------------------------------------------------------------------- faithfulness

def _positive_order(expl: Explanation) -> np.ndarray:
    """Positively scored words, highest score first (ties: earlier word first)."""
    order = top_k_indices(expl.scores, len(expl.scores))
    return order[expl.scores[order] > 0]


def _rationale_size(n_words: int, fraction: float, n_positive: int) -> int:
    return min(k_for(n_words, fraction), n_positive)


def _without(expl: Explanation, drop: Sequence[int]) -> str:
    from .attribution import delete_words

    keep = np.ones(len(expl.words), dtype=bool)
    keep[list(drop)] = False
    return delete_words(expl.text, expl.spans, keep)


def _only(expl: Explanation, kept: Sequence[int]) -> str:
    from .attribution import delete_words

    keep = np.zeros(len(expl.words), dtype=bool)
    keep[list(kept)] = True
    return delete_words(expl.text, expl.spans, keep)


class _Batch:
    """Collects perturbed texts, then predicts them all with one call (duplicates once)."""

    def __init__(self, expl: Explanation):
        self.expl = expl
        self.texts: dict[str, int] = {expl.text: 0}

    def add(self, text: str) -> str:
        self.texts.setdefault(text, len(self.texts))
        return text

    def run(self, model) -> Callable[[str], float]:
        from .attribution import model_proba

        texts = list(self.texts)
        probs = model_proba(model, texts)
        if probs.ndim != 2 or probs.shape[0] != len(texts) or not 0 <= self.expl.target < probs.shape[1]:
            raise ValueError(f"The model gave probabilities of shape {probs.shape} for {len(texts)} texts; the "
                             f"explanation's target is class {self.expl.target}. Use the model that was explained.")
        target_probs = probs[:, self.expl.target]
        return lambda text: float(target_probs[self.texts[text]])


def _logit(p: float) -> float:
    p = min(max(p, _PROB_CLIP), 1 - _PROB_CLIP)
    return math.log(p / (1 - p))


def _check_fraction(name: str, fraction: float) -> None:
    if not 0 < fraction <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {fraction}.")


def faithfulness(model, expl: Explanation, k_fraction: float = 0.2,
                 aopc_fractions: Sequence[float] = AOPC_FRACTIONS) -> dict:
    """All faithfulness metrics of one explanation, with ONE batched predict call of ``model``.

    Returns ``{"comprehensiveness", "sufficiency", "aopc_comprehensiveness",
    "aopc_sufficiency", "log_odds", "tau_loo", "p_full", "k", "n_positive", "reason"}``
    (definitions in the module docstring). ``model`` must be the model that was explained.
    """
    _check_fraction("k_fraction", k_fraction)
    for fraction in aopc_fractions:
        _check_fraction("aopc_fractions", fraction)
    n = len(expl.words)
    out = {name: _NAN for name in FAITHFULNESS_METRICS}
    out.update(p_full=_NAN, k=0, n_positive=0, reason="")
    if n == 0:
        out["reason"] = "the text has no words"
        return out
    positive = _positive_order(expl)
    n_positive = len(positive)
    batch = _Batch(expl)
    sizes = sorted({_rationale_size(n, f, n_positive) for f in (k_fraction, *aopc_fractions)} - {0})
    removed = {k: batch.add(_without(expl, positive[:k])) for k in sizes}
    alone = {k: batch.add(_only(expl, positive[:k])) for k in sizes}
    loo = [batch.add(_without(expl, [i])) for i in range(n)]
    prob = batch.run(model)
    p_full = prob(expl.text)
    out.update(p_full=p_full, n_positive=n_positive)

    drops = np.array([p_full - prob(text) for text in loo])
    tau, why_tau = kendall_with_reason(expl.scores, drops)
    out["tau_loo"] = tau
    reasons = [why_tau.replace("kendall", "tau_loo")] if why_tau else []
    if n_positive == 0:
        reasons.append("no word has a positive score, so there is no rationale")
    else:
        k = _rationale_size(n, k_fraction, n_positive)
        comp = {size: p_full - prob(removed[size]) for size in sizes}
        suff = {size: p_full - prob(alone[size]) for size in sizes}
        bins = [_rationale_size(n, f, n_positive) for f in aopc_fractions]
        out.update(
            comprehensiveness=comp[k], sufficiency=suff[k],
            aopc_comprehensiveness=float(np.mean([comp[size] for size in bins])) if bins else _NAN,
            aopc_sufficiency=float(np.mean([suff[size] for size in bins])) if bins else _NAN,
            log_odds=_logit(prob(removed[k])) - _logit(p_full), k=k,
        )
        if k < k_for(n, k_fraction):
            reasons.append(f"only {n_positive} word(s) have a positive score: the rationale is capped at {n_positive}")
    out["reason"] = "; ".join(reasons)
    return out


def comprehensiveness(model, expl: Explanation, k_fraction: float = 0.2) -> float:
    """p(target | text) - p(target | text without the top-k positive words) (ERASER)."""
    return faithfulness(model, expl, k_fraction, aopc_fractions=())["comprehensiveness"]


def sufficiency(model, expl: Explanation, k_fraction: float = 0.2) -> float:
    """p(target | text) - p(target | the top-k positive words only) (ERASER)."""
    return faithfulness(model, expl, k_fraction, aopc_fractions=())["sufficiency"]


def aopc_comprehensiveness(model, expl: Explanation, fractions: Sequence[float] = AOPC_FRACTIONS) -> float:
    """Mean comprehensiveness over rationale sizes ``fractions`` of the words."""
    return faithfulness(model, expl, fractions[0], aopc_fractions=fractions)["aopc_comprehensiveness"]


def aopc_sufficiency(model, expl: Explanation, fractions: Sequence[float] = AOPC_FRACTIONS) -> float:
    """Mean sufficiency over rationale sizes ``fractions`` of the words."""
    return faithfulness(model, expl, fractions[0], aopc_fractions=fractions)["aopc_sufficiency"]


def log_odds(model, expl: Explanation, k_fraction: float = 0.2) -> float:
    """logit(p after deleting the top-k positive words) - logit(p before); lower is better."""
    return faithfulness(model, expl, k_fraction, aopc_fractions=())["log_odds"]


def tau_loo(model, expl: Explanation) -> float:
    """Kendall tau-b between the scores and the leave-one-out probability drops."""
    return faithfulness(model, expl, aopc_fractions=())["tau_loo"]


def own_class_faithfulness(model, expl: Explanation, k_fraction: float = 0.2, faith: dict | None = None,
                           **options) -> dict:
    """ERASER comprehensiveness and sufficiency for ``model``'s own predicted class on ``expl``'s text.

    ``expl`` is ``model``'s explanation of some class (e.g. the teacher's); where that is the
    model's own class its numbers are reused (``faith``: its :func:`faithfulness`, when already
    computed), else the text is explained again (same method and ``options``) for the class the
    model predicts. Returns ``{"own_target", "comprehensiveness_own_class", "sufficiency_own_class"}``.
    """
    own = int(np.nanargmax(np.asarray(expl.probs, dtype=np.float64)))
    if own == expl.target:
        faith = faith if faith is not None else faithfulness(model, expl, k_fraction, aopc_fractions=())
    else:
        from .attribution import explain

        mine = explain(model, expl.text, method=expl.method, target=own, **options)[0]
        faith = faithfulness(model, mine, k_fraction, aopc_fractions=())
    return {"own_target": own, "comprehensiveness_own_class": faith["comprehensiveness"],
            "sufficiency_own_class": faith["sufficiency"]}


def deletion_curve(model, expl: Explanation, fractions: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """p(target) as the highest-scored words are deleted, for the dashboard's chart.

    At fraction f the ceil(f x n_words) words with the highest signed scores (ties by
    position) are deleted; f = 0 is the full text, f = 1 the empty text. One predict call.
    Returns ``(fractions, probs)`` as arrays.
    """
    fractions = np.linspace(0, 1, 11) if fractions is None else np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or ((fractions < 0) | (fractions > 1)).any():
        raise ValueError("fractions must be a 1-D sequence of values in [0, 1].")
    n = len(expl.words)
    order = top_k_indices(expl.scores, n)
    batch = _Batch(expl)
    texts = [batch.add(_without(expl, order[:math.ceil(f * n - 1e-9)])) for f in fractions]
    prob = batch.run(model)
    return fractions, np.array([prob(text) for text in texts])

