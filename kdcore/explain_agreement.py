"""How far two explanations of one text agree: rank correlations, top-k overlap, sign agreement.

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

:data:`kdcore.explain_metrics.DEFINITIONS` states each in one line for the dashboard and the report;
:mod:`kdcore.explain_faithfulness` reuses :func:`kendall_with_reason`, :func:`k_for` and
:func:`top_k_indices`.
"""

from __future__ import annotations

import math

import numpy as np

from .explanation import Explanation

__all__ = ["AGREEMENT_METRICS", "spearman", "kendall_tau", "top_k_overlap", "sign_agreement", "agreement",
           "kendall_with_reason", "k_for", "top_k_indices"]

AGREEMENT_METRICS = ("spearman", "kendall", "top_k_overlap", "sign_agreement")

_NAN = float("nan")


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


def kendall_with_reason(x, y) -> tuple[float, str]:
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
    return kendall_with_reason(x, y)[0]


def k_for(n_words: int, fraction: float) -> int:
    # The small epsilon keeps 0.2 * 10 from becoming ceil(2.0000000000000004) = 3.
    return max(1, math.ceil(fraction * n_words - 1e-9))


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest signed scores, ties broken by position (earlier first)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]


def top_k_overlap(a, b, k_fraction: float = 0.2) -> float:
    """|top_k(a) & top_k(b)| / k over signed scores, k = ceil(k_fraction x n), at least 1."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) == 0:
        return _NAN
    k = k_for(len(a), k_fraction)
    return len(set(top_k_indices(a, k).tolist()) & set(top_k_indices(b, k).tolist())) / k


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
    tau, why_tau = kendall_with_reason(a.scores, b.scores)
    signs, why_sign = _sign_agreement(a.scores, b.scores)
    reasons += [r for r in (why_rho, why_tau, why_sign) if r]
    if a.target != b.target:
        reasons.append(f"the explanations target different classes ({a.target} and {b.target})")
    return {"spearman": rho, "kendall": tau, "top_k_overlap": top_k_overlap(a.scores, b.scores, k_fraction),
            "sign_agreement": signs, "k": k_for(n, k_fraction), "reason": "; ".join(reasons)}
