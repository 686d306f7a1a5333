"""A certified stand-in threshold: route a text to the student only where fidelity is guaranteed.

For a student, a fidelity target (default 0.95) and a confidence (default 0.95), the threshold on its stand-in
score (:mod:`kdcore.trust`) is chosen on calibration texts (the dev split) by **fixed-sequence testing**, the
Learn-then-Test procedure of Angelopoulos et al. (2021):

- the candidate thresholds are a grid fixed before any data is seen: :data:`GRID` points evenly spaced in
  ``t = s / (1 + |s|)`` (a monotone map of any score onto (-1, 1)), scanned from the highest down;
- at each, the null hypothesis "fidelity of the texts scored at or above it is below the target" is tested
  with the exact binomial p-value ``P(Binomial(n, target) >= k)`` (``k`` of the ``n`` routed calibration texts
  agree with the teacher), which is at most ``1 - confidence`` exactly when the one-sided Clopper-Pearson lower
  bound of the routed fidelity at that confidence reaches the target;
- the scan stops at the first threshold whose null is not rejected; the lowest rejected threshold is chosen.
  Thresholds routing fewer than :data:`MIN_COVERAGE` of the calibration texts, or fewer than any test could
  reject with (all agreeing), are passed over: the scan starts where a test has the power to pass, since a
  first failure on a handful of texts would end it.

Fixed-sequence testing controls the family-wise error at ``1 - confidence`` without a multiplicity correction,
so with probability at least ``confidence`` over the calibration texts the fidelity on new texts from the same
distribution routed by the chosen threshold is at least the target, despite the search. (The stand-in score
itself was chosen on the same dev texts by its AUROC; a small selection the guarantee does not account for.)
When no threshold is certified the student never stands in and the hybrid is the teacher.

The hybrid model (:class:`HybridModel`) answers with the student where the threshold routes a text to it and
with the teacher elsewhere; its settings are saved with the run in :data:`HYBRID_FILE`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from .intervals import wilson
from .metrics import softmax
from .trust import stand_in_scores

__all__ = ["GRID", "HYBRID_FILE", "certify_threshold", "clopper_pearson_lower", "certify_student", "HybridModel",
           "load_hybrid", "min_routed", "MIN_COVERAGE"]

GRID = 4000
MIN_COVERAGE = 0.1  # the share of calibration texts the highest tested threshold routes at least
HYBRID_FILE = "hybrid.json"


def _grid() -> np.ndarray:
    """The fixed candidate thresholds, highest first, on the score's own scale."""
    t = 1 - 2 * (np.arange(GRID) + 0.5) / GRID
    return t / (1 - np.abs(t))


def clopper_pearson_lower(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound of a proportion ``k / n`` at ``confidence`` (0 for ``k == 0``)."""
    from scipy import stats  # on first use: importing scipy.stats takes most of a second

    if n <= 0:
        return float("nan")
    return 0.0 if k == 0 else float(stats.beta.ppf(1 - confidence, k, n - k + 1))


def min_routed(target: float, confidence: float) -> int:
    """The fewest routed texts whose all agreeing could certify ``target`` (``target ** n <= 1 - confidence``)."""
    return max(1, math.ceil(math.log(1 - confidence) / math.log(target))) if target < 1 else 10**9


def certify_threshold(scores, agree, target: float = 0.95, confidence: float = 0.95) -> dict:
    """The lowest threshold that fixed-sequence testing certifies (see the module docstring), and the
    calibration counts there; ``threshold`` is None when none is."""
    from scipy import stats  # on first use, as above

    if not 0 < target < 1 or not 0 < confidence < 1:
        raise ValueError(f"target and confidence must lie strictly between 0 and 1, got {target} and {confidence}.")
    scores, agree = np.asarray(scores, dtype=np.float64), np.asarray(agree, dtype=bool)
    if scores.shape != agree.shape or scores.ndim != 1:
        raise ValueError("scores and agreements must be two vectors of one length.")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, cumulative = scores[order], np.r_[0, np.cumsum(agree[order])]
    grid = _grid()
    routed = np.searchsorted(-sorted_scores, -grid, side="right")  # texts scored >= each threshold
    tested = routed >= max(min_routed(target, confidence), math.ceil(MIN_COVERAGE * scores.size))
    grid, routed = grid[tested], routed[tested]
    agreeing = cumulative[routed]
    rejected = stats.binom.sf(agreeing - 1, routed, target) <= 1 - confidence
    failed = np.flatnonzero(~rejected)
    last = (failed[0] if failed.size else rejected.size) - 1  # the scan stops at the first non-rejection
    chosen = None if last < 0 else (float(grid[last]), int(routed[last]), int(agreeing[last]))
    out = {"target": target, "confidence": confidence, "method": "fixed-sequence testing (Learn-then-Test)",
           "calibration_size": int(scores.size), "threshold": None, "routed": 0, "agreeing": 0,
           "coverage": 0.0, "lower_bound": None}
    if chosen is not None:
        threshold, n, k = chosen
        out.update(threshold=threshold, routed=n, agreeing=k, coverage=n / scores.size,
                   lower_bound=clopper_pearson_lower(k, n, confidence))
    return out


def certify_student(name: str, score: str, dev_student_logits, dev_teacher_logits, test_student_logits,
                    test_teacher_logits, target: float = 0.95, confidence: float = 0.95) -> dict:
    """The certified threshold of one student on dev, and what it gives on test: coverage (the share of
    teacher passes the hybrid saves) and the fidelity measured on the routed test texts (Wilson interval)."""
    dev_agree = np.asarray(dev_student_logits).argmax(1) == np.asarray(dev_teacher_logits).argmax(1)
    result = certify_threshold(stand_in_scores(dev_student_logits, score), dev_agree, target, confidence)
    test_scores = stand_in_scores(test_student_logits, score)
    test_agree = np.asarray(test_student_logits).argmax(1) == np.asarray(test_teacher_logits).argmax(1)
    routed = np.zeros(test_scores.shape, bool) if result["threshold"] is None else test_scores >= result["threshold"]
    k, n = int(test_agree[routed].sum()), int(routed.sum())
    return {"student": name, "score": score, **result,
            "test": {"n": int(test_scores.size), "routed": n, "coverage": n / max(test_scores.size, 1),
                     "fidelity": k / n if n else None, "ci": list(wilson(k, n)) if n else [None, None],
                     "hybrid_fidelity": float((test_agree | ~routed).mean()) if test_scores.size else None},
            "teacher_passes_saved": n / max(test_scores.size, 1)}


@dataclass
class HybridModel:
    """The student where its stand-in score reaches the certified threshold, the teacher elsewhere."""

    student_name: str
    score: str
    threshold: float | None
    target: float
    confidence: float
    student: object = None
    teacher: object = None

    def routes(self, texts) -> np.ndarray:
        """Whether each text goes to the student (its stand-in score reaches the threshold)."""
        return self._routes(np.asarray(self.student.predict_logits(list(texts))))

    def _routes(self, student_logits: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return np.zeros(len(student_logits), bool)
        return stand_in_scores(student_logits, self.score) >= self.threshold

    def decide(self, texts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(proba, routed, student_logits)``: the hybrid's class probabilities (the student's on routed texts,
        the teacher's, run on the others only, elsewhere), which texts the student answered, and its logits."""
        texts = list(texts)
        logits = np.asarray(self.student.predict_logits(texts), dtype=np.float64)
        proba = softmax(logits)
        routed = self._routes(logits)
        rest = np.flatnonzero(~routed)
        if rest.size:
            proba[rest] = np.asarray(self.teacher.predict_proba([texts[i] for i in rest]))
        return proba, routed, logits

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities: the student's on routed texts, the teacher's (run on the others only) elsewhere."""
        return self.decide(texts)[0]

    def predict(self, texts) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("student", "teacher")}


def load_hybrid(run, student: str | None = None) -> HybridModel | None:
    """The run's saved hybrid for ``student`` (the one saving the most teacher passes when None), with its
    models attached; None for a run without :data:`HYBRID_FILE`."""
    path = run.path / HYBRID_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    entries = saved.get("students", {})
    if not entries:
        return None
    if student is None:
        student = max(entries, key=lambda s: (entries[s].get("teacher_passes_saved") or 0, s))
    if student not in entries:
        raise ValueError(f"The run's hybrid has no student {student!r}; it has {', '.join(entries)}.")
    entry = entries[student]
    return HybridModel(student, entry["score"], entry["threshold"], entry["target"], entry["confidence"],
                       run.student(student), run.teacher)
