"""Calibration of a score into a probability: p(event | score), non-decreasing in the score.

Used by :mod:`kdcore.trust` to turn a student's stand-in score into the probability that it agrees
with the teacher. Isotonic regression and Platt scaling are scikit-learn's; the one with the lower
cross-validated Brier score on the data it is fitted on is kept. A fitted calibrator is plain
numbers (JSON), never a pickled estimator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Calibrator", "fit_calibrator", "CV_FOLDS"]

CV_FOLDS = 5


@dataclass
class Calibrator:
    """p(agrees | score), non-decreasing in the score. ``method`` is ``"isotonic"`` (piecewise linear
    through ``x``/``y``, flat beyond the ends, as scikit-learn's IsotonicRegression predicts),
    ``"platt"`` (``1 / (1 + exp(-(slope * score + intercept)))``, slope >= 0) or ``"constant"``."""

    method: str
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    slope: float = 0.0
    intercept: float = 0.0
    constant: float = float("nan")
    brier: dict = field(default_factory=dict)  # cross-validated dev Brier score of each method tried
    note: str = ""

    def __call__(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(scores, np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64))
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.slope * scores + self.intercept)))
        return np.full(scores.shape, self.constant)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibrator":
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["constant"] = float("nan") if values.get("constant") is None else float(values["constant"])
        return cls(**values)


def _isotonic(scores, agree) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(scores, agree)
    return Calibrator("isotonic", x=model.X_thresholds_.tolist(), y=model.y_thresholds_.tolist())


def _platt(scores, agree) -> Calibrator | None:
    """Logistic regression of agreement on the score (no penalty); None when it would decrease."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, max_iter=1000).fit(scores.reshape(-1, 1), agree)
    slope = float(model.coef_[0, 0])
    if slope < 0:
        return None
    return Calibrator("platt", slope=slope, intercept=float(model.intercept_[0]))


_FITTERS = {"isotonic": _isotonic, "platt": _platt}


def fit_calibrator(scores, agree, folds: int = CV_FOLDS, seed: int = 0) -> Calibrator:
    """Isotonic or Platt regression of ``agree`` on ``scores``, whichever has the lower Brier score in
    ``folds``-fold cross-validation (stratified); Platt when either outcome has fewer than ``folds``
    texts; a constant (the observed agreement) when only one outcome occurs."""
    scores, agree = np.asarray(scores, dtype=np.float64), np.asarray(agree, dtype=bool).astype(np.float64)
    if scores.size == 0:
        raise ValueError("fit_calibrator needs at least one text.")
    positives = int(agree.sum())
    if positives in (0, scores.size):
        return Calibrator("constant", constant=float(agree.mean()),
                          note="the student agreed with the teacher on every dev text" if positives else
                          "the student agreed with the teacher on no dev text")
    if min(positives, scores.size - positives) < folds:
        fitted = _platt(scores, agree)
        if fitted is None:
            return Calibrator("constant", constant=float(agree.mean()), note="too few dev texts to fit a curve")
        fitted.note = f"fewer than {folds} dev texts of one outcome: Platt scaling, not cross-validated"
        return fitted
    from sklearn.model_selection import StratifiedKFold

    brier: dict[str, float] = {}
    for name, fitter in _FITTERS.items():
        errors = []
        for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(scores, agree):
            fitted = fitter(scores[train], agree[train])
            if fitted is None:
                break
            errors.append(((fitted(scores[held]) - agree[held]) ** 2).sum())
        else:
            brier[name] = float(np.sum(errors) / scores.size)
    best = min(brier, key=brier.get)  # isotonic never fails, so brier is never empty
    chosen = _FITTERS[best](scores, agree) or _isotonic(scores, agree)
    chosen.brier = brier
    return chosen
