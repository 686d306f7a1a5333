"""How far explanations agree, and how faithful each is to its own model.

Every definition the dashboard and the report show is stated here and in
:data:`DEFINITIONS`.

Agreement (two explanations of one text, on the same words)
    - ``spearman``: Spearman's rho between the two score vectors (Pearson correlation of
      their ranks; tied scores share their average rank).
    - ``kendall``: Kendall's tau-b between the two score vectors (concordant minus
      discordant pairs over the geometric mean of the non-tied pair counts).
    - ``top_k_overlap``: with k = ceil(k_fraction x n_words), at least 1 (k_fraction 0.2
      by default), the share of the k words with the highest *signed* score (the most
      support for the target class; ties broken by word position) that both explanations
      put in their top k: |top_k(a) & top_k(b)| / k.
    - ``sign_agreement``: the share of words whose scores have the same sign, among the
      words where at least one of the two scores is non-zero.
    Spearman and Kendall are scipy.stats' ``spearmanr`` and ``kendalltau(variant="b")``.
    A value that is undefined (fewer than 2 words, a constant score vector, all scores 0)
    is NaN and ``reason`` says why; kd-lens checks these cases itself rather than passing
    a constant vector to scipy (which also answers NaN, with a warning).

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
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np

from .explanation import Explanation
from .metrics import DEFINITIONS as _TASK_DEFINITIONS
from .trust import DEFINITIONS as _TRUST_DEFINITIONS

# kdcore.attribution (torch) is imported by the functions that run a model, not here: the definitions and
# the agreement metrics are read by pages and reports that never load a model.

__all__ = [
    "DEFINITIONS", "ALL_DEFINITIONS", "HIGHER_IS_BETTER", "AOPC_FRACTIONS", "AGREEMENT_METRICS", "FAITHFULNESS_METRICS",
    "OWN_CLASS_METRICS", "own_class_faithfulness",
    "spearman", "kendall_tau", "top_k_overlap", "sign_agreement", "agreement",
    "comprehensiveness", "sufficiency", "aopc_comprehensiveness", "aopc_sufficiency", "log_odds", "tau_loo",
    "faithfulness", "deletion_curve", "summarize", "evaluate_explanations", "summary_table",
    "global_word_attribution", "weights_vs_attribution",
]

AOPC_FRACTIONS = (0.01, 0.05, 0.10, 0.20, 0.50)
AGREEMENT_METRICS = ("spearman", "kendall", "top_k_overlap", "sign_agreement")
FAITHFULNESS_METRICS = ("comprehensiveness", "sufficiency", "aopc_comprehensiveness", "aopc_sufficiency",
                        "log_odds", "tau_loo")
# ERASER's pair on each model's own predicted class (the metrics above: on the teacher's class).
OWN_CLASS_METRICS = ("comprehensiveness_own_class", "sufficiency_own_class")

DEFINITIONS = {
    "spearman": "Spearman's rho between two explanations' word scores: the correlation of their ranks "
                "(ties get their average rank); 1 = same order, -1 = reversed.",
    "kendall": "Kendall's tau-b between two explanations' word scores: (concordant - discordant word pairs) "
               "over the geometric mean of the non-tied pair counts.",
    "top_k_overlap": "Share of the k words with the highest signed score (most support for the target; "
                     "k = 20% of the words, at least 1) that both explanations rank in their top k.",
    "sign_agreement": "Share of words whose two scores have the same sign, among words where at least one "
                      "score is non-zero.",
    "comprehensiveness": "p(target | text) - p(target | text with the rationale deleted); the rationale is the "
                         "top 20% of words by positive score (ERASER); higher = more faithful.",
    "sufficiency": "p(target | text) - p(target | rationale words only); lower = more faithful (ERASER).",
    "aopc_comprehensiveness": "Mean comprehensiveness over rationales of 1, 5, 10, 20 and 50% of the words "
                              "(area over the perturbation curve); higher = more faithful.",
    "aopc_sufficiency": "Mean sufficiency over rationales of 1, 5, 10, 20 and 50% of the words; "
                        "lower = more faithful.",
    "log_odds": "Change in the log-odds of the target after deleting the top 20% positively scored words: "
                "logit(p after) - logit(p before); more negative = more faithful.",
    "tau_loo": "Kendall's tau-b between the word scores and the drop in p(target) when each word alone is "
               "deleted (leave-one-out); higher = more faithful.",
    "comprehensiveness_own_class": "Comprehensiveness with the model's explanation of its OWN predicted class "
                                   "(ERASER's definition); the plain comprehensiveness explains the teacher's "
                                   "class. Equal where the model predicts the teacher's class; higher = more "
                                   "faithful.",
    "sufficiency_own_class": "Sufficiency with the model's explanation of its OWN predicted class (ERASER's "
                             "definition); the plain sufficiency explains the teacher's class; lower = more "
                             "faithful.",
}

# Every metric kd-lens shows, task metrics first, the trust curve's last: what the Overview and the report list.
ALL_DEFINITIONS = {**_TASK_DEFINITIONS, **DEFINITIONS, **_TRUST_DEFINITIONS}

HIGHER_IS_BETTER = {
    "spearman": True, "kendall": True, "top_k_overlap": True, "sign_agreement": True,
    "comprehensiveness": True, "sufficiency": False, "aopc_comprehensiveness": True, "aopc_sufficiency": False,
    "log_odds": False, "tau_loo": True, "comprehensiveness_own_class": True, "sufficiency_own_class": False,
}

_NAN = float("nan")
_PROB_CLIP = 1e-6


# ---------------------------------------------------------------------------------- rank statistics

def _rank_inputs(x, y, name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Both vectors as float arrays, and why a rank correlation is undefined for them ("" if it is not).

    scipy.stats returns NaN for these cases too, but with a ConstantInputWarning and no
    reason; kd-lens checks first so the NaN is explicit and the reason is shown.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"{name} needs two score vectors of one length, got {len(x)} and {len(y)}.")
    if len(x) < 2:
        return x, y, f"{name} needs at least 2 words"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return x, y, f"{name} is undefined for constant scores"
    return x, y, ""


def _spearman(x, y) -> tuple[float, str]:
    """scipy's Spearman rho (tied values share their average rank) and a reason when NaN."""
    from scipy import stats  # on first use: importing scipy.stats takes most of a second

    x, y, reason = _rank_inputs(x, y, "spearman")
    if reason:
        return _NAN, reason
    return float(stats.spearmanr(x, y).statistic), ""


def _kendall(x, y) -> tuple[float, str]:
    """scipy's Kendall tau-b (ties corrected for in both vectors) and a reason when NaN."""
    from scipy import stats

    x, y, reason = _rank_inputs(x, y, "kendall")
    if reason:
        return _NAN, reason
    return float(stats.kendalltau(x, y, variant="b").statistic), ""


def spearman(x, y) -> float:
    """Spearman's rho with average ranks for ties; NaN for < 2 values or a constant vector.

    NaN scores are not expected (explanations are finite); scipy would propagate them to a NaN rho.
    """
    return _spearman(x, y)[0]


def kendall_tau(x, y) -> float:
    """Kendall's tau-b (tie-corrected); NaN for < 2 values or a constant vector."""
    return _kendall(x, y)[0]


def _k_for(n_words: int, fraction: float) -> int:
    # The small epsilon keeps 0.2 * 10 from becoming ceil(2.0000000000000004) = 3.
    return max(1, math.ceil(fraction * n_words - 1e-9))


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest signed scores, ties broken by position (earlier first)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]


def top_k_overlap(a, b, k_fraction: float = 0.2) -> float:
    """|top_k(a) & top_k(b)| / k over signed scores, k = ceil(k_fraction x n), at least 1."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) == 0:
        return _NAN
    k = _k_for(len(a), k_fraction)
    return len(set(_top_k(a, k).tolist()) & set(_top_k(b, k).tolist())) / k


def _sign_agreement(a, b) -> tuple[float, str]:
    a, b = np.sign(np.asarray(a, dtype=np.float64)), np.sign(np.asarray(b, dtype=np.float64))
    counted = (a != 0) | (b != 0)
    if not counted.any():
        return _NAN, "sign agreement is undefined when every score is 0"
    return float((a[counted] == b[counted]).mean()), ""


def sign_agreement(a, b) -> float:
    """Share of positions with equal signs, ignoring positions where both are 0."""
    return _sign_agreement(a, b)[0]


def _check_same_words(a: Explanation, b: Explanation) -> None:
    if list(a.spans) != list(b.spans) or a.text != b.text:
        raise ValueError(
            f"Explanations of {a.model_name!r} and {b.model_name!r} are not on the same words of the same text; "
            "explain one text with every model (attribution.explain_many) before comparing them.")


def agreement(a: Explanation, b: Explanation, k_fraction: float = 0.2) -> dict:
    """Spearman, Kendall tau-b, top-k overlap and sign agreement of two explanations.

    Returns ``{"spearman", "kendall", "top_k_overlap", "sign_agreement", "k", "reason"}``;
    ``reason`` is "" or says why a value is NaN (or that the targets differ).
    """
    _check_same_words(a, b)
    if not 0 < k_fraction <= 1:
        raise ValueError(f"k_fraction must be in (0, 1], got {k_fraction}.")
    n = len(a.scores)
    reasons = []
    if n == 0:
        return {"spearman": _NAN, "kendall": _NAN, "top_k_overlap": _NAN, "sign_agreement": _NAN, "k": 0,
                "reason": "the text has no words"}
    rho, why_rho = _spearman(a.scores, b.scores)
    tau, why_tau = _kendall(a.scores, b.scores)
    signs, why_sign = _sign_agreement(a.scores, b.scores)
    reasons += [r for r in (why_rho, why_tau, why_sign) if r]
    if a.target != b.target:
        reasons.append(f"the explanations target different classes ({a.target} and {b.target})")
    return {"spearman": rho, "kendall": tau, "top_k_overlap": top_k_overlap(a.scores, b.scores, k_fraction),
            "sign_agreement": signs, "k": _k_for(n, k_fraction), "reason": "; ".join(reasons)}


# ---------------------------------------------------------------------------------- faithfulness

def _positive_order(expl: Explanation) -> np.ndarray:
    """Positively scored words, highest score first (ties: earlier word first)."""
    order = _top_k(expl.scores, len(expl.scores))
    return order[expl.scores[order] > 0]


def _rationale_size(n_words: int, fraction: float, n_positive: int) -> int:
    return min(_k_for(n_words, fraction), n_positive)


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
    tau, why_tau = _kendall(expl.scores, drops)
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
        if k < _k_for(n, k_fraction):
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
    order = _top_k(expl.scores, n)
    batch = _Batch(expl)
    texts = [batch.add(_without(expl, order[:math.ceil(f * n - 1e-9)])) for f in fractions]
    prob = batch.run(model)
    return fractions, np.array([prob(text) for text in texts])


# ---------------------------------------------------------------------------------- corpus level

def _summary(values: list[tuple[int, float]], higher_is_better: bool, worst_k: int) -> dict:
    finite = [(i, v) for i, v in values if v is not None and np.isfinite(v)]
    numbers = np.array([v for _, v in finite], dtype=np.float64)
    worst = sorted(finite, key=lambda item: (item[1] if higher_is_better else -item[1], item[0]))[:worst_k]
    return {
        "mean": float(numbers.mean()) if len(numbers) else _NAN,
        "std": float(numbers.std(ddof=1)) if len(numbers) > 1 else _NAN,
        "median": float(np.median(numbers)) if len(numbers) else _NAN,
        "n": int(len(numbers)),
        "worst": [(int(i), float(v)) for i, v in worst],
    }


def summarize(records, metric: str | None = None, worst_k: int = 5) -> dict:
    """Mean, sample std, median, count and the worst cases of metrics over many records.

    ``records``: a list of dicts (e.g. :func:`faithfulness` outputs) or a DataFrame. NaN
    values are left out (``n`` counts the others). ``worst`` lists ``(index, value)`` of
    the ``worst_k`` records that score worst by :data:`HIGHER_IS_BETTER` (lowest first
    where higher is better, highest first otherwise; unknown metrics: lowest first).
    With ``metric`` the summary of that metric, else ``{metric: summary}`` for every
    numeric key.
    """
    if hasattr(records, "to_dict"):
        records = records.to_dict("records")
    records = list(records)
    if metric is not None:
        names = [metric]
    else:
        names = []
        for record in records:
            for key, value in record.items():
                if key not in names and isinstance(value, (int, float, np.integer, np.floating)) \
                        and not isinstance(value, (bool, np.bool_)):
                    names.append(key)
    out = {}
    for name in names:
        values = []
        for index, record in enumerate(records):
            value = record.get(name)
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
                values.append((index, float(value)))
        out[name] = _summary(values, HIGHER_IS_BETTER.get(name, True), worst_k)
    return out[metric] if metric is not None else out


def evaluate_explanations(teacher, students, texts: Sequence[str], methods: Sequence[str] = ("integrated_gradients",),
                          k_fraction: float = 0.2, progress: Callable[[dict], None] | None = None, **options):
    """Explain every text with every model and method; faithfulness and agreement per row.

    Every model explains a text for the same target (the teacher's predicted class; see
    :func:`kdcore.attribution.explain_many`). Returns a DataFrame with one row per (text,
    model, method): ``text_index, model, method, target, n_words``, the
    :data:`FAITHFULNESS_METRICS` of the model's own explanation (of the teacher's class), the
    model's own class ``own_target`` and the :data:`OWN_CLASS_METRICS` for it
    (:func:`own_class_faithfulness`), the
    :data:`AGREEMENT_METRICS` of that explanation with the teacher's (NaN on the teacher's
    rows), ``convergence_delta``, ``warnings`` and the ``faithfulness_note`` /
    ``agreement_note`` reasons. ``options`` go to ``explain``; ``progress`` receives
    ``{"stage": "explain_eval", "done", "total"}`` after each text.
    """
    from .attribution import explain_many

    import pandas as pd

    from .utils import emit

    if isinstance(students, Mapping):
        models = dict(students)
    else:
        models = {str(s.name): s for s in students}
    teacher_name = None
    if teacher is not None:
        teacher_name = str(teacher.name)
        if teacher_name in models:
            raise ValueError(f"A student is named like the teacher ({teacher_name!r}); give it another name.")
        models = {teacher_name: teacher, **models}
    if not models:
        raise ValueError("evaluate_explanations needs a teacher or at least one student.")
    texts = [texts] if isinstance(texts, str) else list(texts)
    rows = []
    for index, text in enumerate(texts):
        for method in methods:
            explanations = explain_many(models, text, method, **options)
            reference = explanations.get(teacher_name) if teacher_name else None
            for name, expl in explanations.items():
                faith = faithfulness(models[name], expl, k_fraction)
                row = {"text_index": index, "model": name, "method": method, "target": expl.target,
                       "n_words": len(expl.words)}
                row.update({metric: faith[metric] for metric in FAITHFULNESS_METRICS})
                row.update(own_class_faithfulness(models[name], expl, k_fraction, faith, **options))
                if reference is not None and name != teacher_name:
                    agree = agreement(reference, expl, k_fraction)
                    row.update({metric: agree[metric] for metric in AGREEMENT_METRICS})
                    row["agreement_note"] = agree["reason"]
                else:
                    row.update({metric: _NAN for metric in AGREEMENT_METRICS})
                    row["agreement_note"] = "" if reference is None else "the teacher itself"
                row["faithfulness_note"] = faith["reason"]
                row["convergence_delta"] = expl.convergence_delta if expl.convergence_delta is not None else _NAN
                row["warnings"] = "; ".join(expl.warnings)
                rows.append(row)
        emit(progress, stage="explain_eval", done=index + 1, total=len(texts))
    columns = ["text_index", "model", "method", "target", "n_words", *FAITHFULNESS_METRICS, "own_target",
               *OWN_CLASS_METRICS, *AGREEMENT_METRICS, "convergence_delta", "faithfulness_note", "agreement_note",
               "warnings"]
    return pd.DataFrame(rows, columns=columns)


def summary_table(df):
    """Mean and std (over texts) of every metric, one row per (model, method).

    Columns ``model, method, n_texts`` and ``<metric>_mean``, ``<metric>_std``, ``<metric>_ci_low``,
    ``<metric>_ci_high`` (the bootstrap 95% interval of the mean, :func:`kdcore.intervals.bootstrap_mean`)
    for the faithfulness and agreement metrics (NaN values left out).
    """
    import pandas as pd

    from .intervals import bootstrap_mean

    metrics = [m for m in (*FAITHFULNESS_METRICS, *OWN_CLASS_METRICS, *AGREEMENT_METRICS) if m in df.columns]
    rows = []
    for (model, method), group in df.groupby(["model", "method"], sort=False):
        row = {"model": model, "method": method, "n_texts": int(group["text_index"].nunique())
               if "text_index" in group else len(group)}
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce")
            row[f"{metric}_mean"] = float(values.mean()) if values.notna().any() else _NAN
            row[f"{metric}_std"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else _NAN
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = bootstrap_mean(values.to_numpy(dtype=float))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- global view

def global_word_attribution(model, texts: Sequence[str], method: str = "integrated_gradients", target=1,
                            min_count: int = 1, **options):
    """Mean attribution of each word towards class ``target`` over ``texts``.

    Every text is explained for the same class (index or label name; default class 1,
    e.g. "positive" in a binary task). Returns a DataFrame ``word, mean_attribution,
    count`` (count = occurrences; words seen fewer than ``min_count`` times dropped),
    sorted from the most positive mean attribution down.
    """
    from .attribution import explain

    import pandas as pd

    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for expl in explain(model, list(texts), method=method, target=target, **options):
        for word, score in zip(expl.words, expl.scores):
            sums[word] = sums.get(word, 0.0) + float(score)
            counts[word] = counts.get(word, 0) + 1
    frame = pd.DataFrame({"word": list(sums), "mean_attribution": [sums[w] / counts[w] for w in sums],
                          "count": [counts[w] for w in sums]}, columns=["word", "mean_attribution", "count"])
    frame = frame[frame["count"] >= min_count]
    return frame.sort_values(["mean_attribution", "word"], ascending=[False, True], kind="stable").reset_index(drop=True)


def weights_vs_attribution(linear_student, teacher_global_df, class_index: int = 1):
    """The linear student's word weights next to the teacher's mean word attributions.

    For each word that is both a unigram feature of the student and a row of
    ``teacher_global_df`` (from :func:`global_word_attribution`), ``student_weight`` is
    its weight for ``class_index`` (its contribution per unit of feature value to that
    class's logit). Returns ``(DataFrame(word, student_weight, teacher_mean_attribution,
    count), spearman rho)`` (rho NaN with fewer than 2 shared words).
    """
    import pandas as pd

    if not (hasattr(linear_student, "featurizer_") and hasattr(linear_student, "module_")):
        raise ValueError("weights_vs_attribution needs a fitted LinearStudent.")
    coef = getattr(linear_student, "coef_", None)
    if coef is None:
        coef = linear_student.module_.bag.weight.detach().cpu().numpy()
    coef = np.asarray(coef)
    if not 0 <= class_index < coef.shape[1]:
        raise ValueError(f"class_index {class_index} is out of range for {coef.shape[1]} classes.")
    unigram = {name: i for i, name in enumerate(linear_student.featurizer_.features_) if " " not in name}
    shared = teacher_global_df[teacher_global_df["word"].isin(unigram)]
    frame = pd.DataFrame({
        "word": shared["word"].to_numpy(),
        "student_weight": [float(coef[unigram[w], class_index]) for w in shared["word"]],
        "teacher_mean_attribution": shared["mean_attribution"].to_numpy(dtype=np.float64),
        "count": shared["count"].to_numpy() if "count" in shared else np.ones(len(shared), dtype=int),
    })
    rho = spearman(frame["student_weight"], frame["teacher_mean_attribution"]) if len(frame) >= 2 else _NAN
    return frame.reset_index(drop=True), rho
