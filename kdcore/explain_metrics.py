"""Explanation metrics: the definitions tables, the per-text evaluation and its summaries, the global view.

Every definition the dashboard and the report show is stated in :data:`DEFINITIONS` and in
the docstrings of the modules that compute them: agreement between explanations in
:mod:`kdcore.explain_agreement`, faithfulness to the explained model in
:mod:`kdcore.explain_faithfulness`. This module holds the tables (:data:`DEFINITIONS`,
:data:`ALL_DEFINITIONS`, :data:`HIGHER_IS_BETTER`), :func:`evaluate_explanations` (every
text x model x method), :func:`summarize` and :func:`summary_table`, and the global word
view (:func:`global_word_attribution`, :func:`weights_vs_attribution`); it re-exports both
metric modules, and is the module the rest of kd-lens imports.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .explain_agreement import (AGREEMENT_METRICS, agreement, kendall_tau, sign_agreement, spearman,
                                top_k_overlap)
from .explain_faithfulness import (AOPC_FRACTIONS, FAITHFULNESS_METRICS, OWN_CLASS_METRICS, aopc_comprehensiveness,
                                   aopc_sufficiency, comprehensiveness, deletion_curve, faithfulness, log_odds,
                                   own_class_faithfulness, sufficiency, tau_loo)
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
