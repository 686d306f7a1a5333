"""The stand-in scores and the fidelity-coverage curve: the maths of :mod:`kdcore.trust`.

- the candidate scores (:data:`SCORES`): how sure a student is of its own answer, each a function of
  its own logits, so it is known without running the teacher;
- the choice among them: the candidate with the highest AUROC for predicting agreement with the
  teacher (ties, as for two classes where the candidates rank texts alike except where probabilities
  round to 1, go to the earlier candidate);
- the curve (:class:`TrustCurve`) of fidelity against coverage, texts sorted by score, surest first
  (tied scores enter together), the largest coverage whose fidelity reaches a target, and its
  bootstrap standard error and interval.

These are pure functions of arrays; :mod:`kdcore.trust` makes the trust records from them (the
choices on dev, the figures on test) and stores them with a run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .metrics import softmax

__all__ = [
    "SCORES", "SCORE_NAMES", "BOOTSTRAP_SAMPLES", "stand_in_scores", "teacher_agreement", "auroc", "choose_score",
    "score_candidates", "choose_among", "TrustCurve", "trust_curve", "bootstrap_coverage",
]

BOOTSTRAP_SAMPLES = 1000  # as kdcore.intervals.N_BOOTSTRAP
_TIE = 1e-12

def _sorted_logits(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"stand-in scores need logits of shape [texts, classes >= 2], got {logits.shape}.")
    return np.sort(logits, axis=1)


def _logit_margin(logits):
    top = _sorted_logits(logits)
    return top[:, -1] - top[:, -2]


def _probability_margin(logits):
    top = np.sort(softmax(logits), axis=1)
    return top[:, -1] - top[:, -2]


def _max_probability(logits):
    return softmax(logits).max(axis=1)


def _negative_entropy(logits):
    p = softmax(logits)
    return (p * np.log(np.clip(p, 1e-300, 1.0))).sum(axis=1)


# name -> (function of the student's logits [n, C] -> [n], higher = surer; words for the screen).
SCORES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "logit_margin": (_logit_margin, "its margin: top logit minus the runner-up's"),
    "probability_margin": (_probability_margin, "its probability margin: top probability minus the runner-up's"),
    "max_probability": (_max_probability, "its top class probability"),
    "negative_entropy": (_negative_entropy, "its certainty: minus the entropy of its class probabilities"),
}
SCORE_NAMES = tuple(SCORES)


def stand_in_scores(logits: np.ndarray, name: str) -> np.ndarray:
    """The stand-in score ``name`` (one of :data:`SCORE_NAMES`) of each row of ``logits``."""
    if name not in SCORES:
        raise ValueError(f"Unknown stand-in score {name!r}; choose one of {', '.join(SCORE_NAMES)}.")
    return SCORES[name][0](logits)


def teacher_agreement(student_logits, teacher_logits) -> np.ndarray:
    """Whether the student's top class is the teacher's, row by row."""
    student_logits, teacher_logits = np.asarray(student_logits), np.asarray(teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {student_logits.shape} vs "
                         f"{teacher_logits.shape}.")
    return student_logits.argmax(axis=1) == teacher_logits.argmax(axis=1)


def auroc(scores, agree) -> float:
    """Area under the ROC curve of ``scores`` for ``agree`` (NaN when only one outcome occurs)."""
    agree = np.asarray(agree, dtype=bool)
    if agree.all() or not agree.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(agree, np.asarray(scores, dtype=np.float64)))


def choose_score(student_logits, teacher_logits) -> tuple[str, dict[str, float]]:
    """The candidate with the highest dev AUROC (earlier candidate on ties; the first when every
    AUROC is undefined), and the AUROC of every candidate."""
    return choose_among(score_candidates(student_logits), teacher_agreement(student_logits, teacher_logits))


def score_candidates(logits) -> dict[str, np.ndarray]:
    """Every candidate stand-in score of each row of ``logits``."""
    return {name: stand_in_scores(np.asarray(logits), name) for name in SCORE_NAMES}


def choose_among(candidates: Mapping[str, np.ndarray], agree,
                 names: Sequence[str] = SCORE_NAMES) -> tuple[str, dict[str, float]]:
    """:func:`choose_score` over candidate scores already computed for each unit (a text, a sentence, an
    entity), among ``names`` in their order of preference."""
    names = tuple(names)
    aurocs = {name: auroc(candidates[name], agree) for name in names}
    best = names[0]
    for name in names:
        if math.isfinite(aurocs[name]) and (not math.isfinite(aurocs[best]) or aurocs[name] > aurocs[best] + _TIE):
            best = name
    return best, aurocs


# ------------------------------------------------------------------------------ the curve
@dataclass
class TrustCurve:
    """Fidelity against coverage: after sorting texts by score (surest first), ``covered[i]`` texts
    (the end of a group of tied scores) of which ``agreeing[i]`` agree with the teacher;
    ``thresholds[i]`` is the lowest score among them."""

    covered: list
    agreeing: list
    thresholds: list
    n_texts: int

    @property
    def coverage(self) -> np.ndarray:
        return np.asarray(self.covered, dtype=np.float64) / max(self.n_texts, 1)

    @property
    def fidelity(self) -> np.ndarray:
        return np.asarray(self.agreeing, dtype=np.float64) / np.maximum(np.asarray(self.covered, dtype=np.float64), 1)

    def point_at(self, target: float) -> int | None:
        """Index of the largest coverage whose fidelity is at least ``target`` (None when none is)."""
        reached = np.flatnonzero(self.fidelity >= target - 1e-12)
        return int(reached[-1]) if reached.size else None

    def coverage_at(self, target: float) -> float:
        """The largest coverage whose fidelity is at least ``target`` (0 when no share of texts reaches it)."""
        index = self.point_at(target)
        return 0.0 if index is None else float(self.coverage[index])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrustCurve":
        return cls(list(data["covered"]), list(data["agreeing"]), list(data["thresholds"]), int(data["n_texts"]))


def trust_curve(scores, agree) -> TrustCurve:
    """The fidelity-coverage curve of texts sorted by ``scores``, highest first (ties enter together)."""
    scores, agree = np.asarray(scores, dtype=np.float64), np.asarray(agree, dtype=bool)
    if scores.shape != agree.shape or scores.ndim != 1:
        raise ValueError(f"scores and agreements must be two vectors of one length, got {scores.shape} and "
                         f"{agree.shape}.")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    cumulative = np.cumsum(agree[order])
    # The last position of each run of equal scores: a cut never separates tied texts.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True]) if scores.size else np.array([], int)
    return TrustCurve([int(e + 1) for e in ends], [int(cumulative[e]) for e in ends],
                      [float(sorted_scores[e]) for e in ends], int(scores.size))


def bootstrap_coverage(scores, agree, target: float, samples: int, seed: int) -> tuple[float, list]:
    """Standard deviation and percentile 95% interval of the coverage at ``target`` over bootstrap
    resamples of the texts (the draws of :func:`kdcore.intervals.bootstrap`)."""
    if scores.size < 2 or samples < 2:
        return float("nan"), [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    values = [trust_curve(scores[idx], agree[idx]).coverage_at(target)
              for idx in (rng.integers(0, scores.size, size=scores.size) for _ in range(samples))]
    return float(np.std(values, ddof=1)), [float(v) for v in np.percentile(values, [2.5, 97.5])]
