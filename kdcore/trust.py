"""The trust records: on which texts a student can stand in for the teacher.

For each student a *stand-in score* ranks texts by how sure the student is of its own answer;
the texts it is surest of are the ones where it most often makes the teacher's decision. Every
choice is made on the dev split, and the test split is read once for the reported figures:

- the score: the candidate of :data:`SCORES` (each a function of the student's own logits, so it
  is known without running the teacher) with the highest AUROC for predicting agreement with the
  teacher on dev; ties (for two classes the candidates rank texts alike, except where
  probabilities round to 1) go to the earlier candidate;
- the calibrated agreement probability p(student agrees with the teacher | score): isotonic or
  Platt regression of dev agreement on the score (:mod:`kdcore.calibration`), the one with the lower
  cross-validated Brier score on dev; both are non-decreasing in the score;
- the dev threshold: the lowest score at which the dev texts scored at least as high still agree
  with the teacher at the target fidelity (0.95); a text at or above it is a *likely stand-in*
  (every text is, when the whole dev split reaches the target);
- on test, the curve of fidelity against coverage (texts sorted by score, surest first; tied
  scores enter together), the largest coverage whose fidelity reaches the target, with a bootstrap
  standard error, and the coverage and fidelity the dev threshold gives on test.

The scores, their choice and the curve are pure maths on arrays (:mod:`kdcore.trust_scores`, whose
public names are importable from here too). This module holds the records made from them: a
student's (:class:`StudentTrust`, fitted by :func:`unit_trust`), a run's (:class:`RunTrust`, the
run's ``trust.json``: computed, written, read back), and one text's verdict (:class:`StandIn`).
The engine computes all of it; the dashboard and the report only display it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .calibration import Calibrator, fit_calibrator
from .tasks import get_task, task_of
from .trust_scores import (
    BOOTSTRAP_SAMPLES, SCORE_NAMES, SCORES, TrustCurve, auroc, bootstrap_coverage, choose_among, choose_score,
    score_candidates, stand_in_scores, teacher_agreement, trust_curve,
)
from .utils import emit, strict_json

__all__ = [
    "SCORES", "SCORE_NAMES", "TARGET_FIDELITY", "TRUST_FILE", "DEV_LOGITS_FILE", "DEFINITIONS", "stand_in_scores",
    "auroc", "choose_score", "Calibrator", "fit_calibrator", "TrustCurve", "trust_curve", "StudentTrust", "RunTrust",
    "student_trust", "unit_trust", "score_candidates", "choose_among", "evaluate_trust",
    "write_trust", "save_trust", "recompute_trust", "StandIn", "trust_fields", "nan_if_none",
    "assess_logits", "assess", "load_trust", "empty_trust",
]

TARGET_FIDELITY = 0.95
TRUST_FILE = "trust.json"
DEV_LOGITS_FILE = "teacher_dev_logits.npy"

DEFINITIONS = {
    "stand-in score": "How sure a student is of its own answer, from its own outputs only (no teacher): the "
                      "candidate (logit margin, probability margin, top probability, minus entropy) that best "
                      "predicts agreement with the teacher on the dev split (AUROC).",
    "p(agrees)": "Calibrated probability that the student predicts the teacher's class for this text: isotonic or "
                 "Platt regression of dev agreement on the stand-in score (the lower cross-validated Brier score).",
    "coverage at 95% fidelity": "On test, texts sorted by the stand-in score (surest first): the largest share of "
                                "texts whose agreement with the teacher is at least 95%.",
    "likely stand-in": "The text's stand-in score is at or above the dev threshold: among dev texts scored at "
                       "least as high, the student agreed with the teacher at least 95% of the time.",
}


# ------------------------------------------------------------------------------ per student
@dataclass
class StudentTrust:
    """One student's stand-in score, calibration, dev threshold and test curve (see the module docstring)."""

    name: str
    score: str
    dev_auroc: dict
    calibrator: Calibrator
    target: float
    dev_threshold: float | None  # None: no dev texts reach the target, so no text is a likely stand-in
    dev_coverage: float          # share of dev texts at or above it (1: every text counts as likely)
    dev_size: int
    curve: TrustCurve
    coverage: float          # largest test coverage with fidelity >= target
    coverage_se: float       # its bootstrap standard error
    coverage_ci: list        # and its bootstrap 95% interval [low, high]
    fidelity_at_coverage: float | None
    test_fidelity: float     # at full coverage
    threshold_coverage: float | None  # the dev threshold applied to test: coverage and fidelity
    threshold_fidelity: float | None
    unit: str = "texts"  # what the curve counts: texts, or (a tagging run) sentences

    def likely(self, scores) -> np.ndarray:
        """Whether each stand-in score is at or above the dev threshold (every score when the whole dev
        split reached the target: below its lowest score dev says nothing worse)."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.dev_threshold is None:
            return np.zeros(scores.shape, bool)
        if self.dev_coverage >= 1.0:
            return np.ones(scores.shape, bool)
        return scores >= self.dev_threshold

    @property
    def score_words(self) -> str:
        return SCORES[self.score][1] if self.score in SCORES else self.score

    @property
    def chosen_auroc(self) -> float:
        return nan_if_none(self.dev_auroc.get(self.score))

    def headline(self) -> str:
        """The curve in one sentence, e.g. "On the 78% of test texts linear is surest of, it agrees with the
        teacher 96% of the time"."""
        if self.fidelity_at_coverage is None or self.coverage <= 0:
            return (f"No group of the test {self.unit} {self.name} is surest of reaches {self.target:.0%} agreement "
                    f"with the teacher (it agrees on {self.test_fidelity:.0%} of all of them).")
        if self.coverage >= 1.0:
            return f"{self.name} agrees with the teacher on {self.fidelity_at_coverage:.0%} of all test {self.unit}."
        return (f"On the {self.coverage:.0%} of test {self.unit} {self.name} is surest of, it agrees with the teacher "
                f"{self.fidelity_at_coverage:.0%} of the time (on all of them, {self.test_fidelity:.0%}).")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["calibrator"], out["curve"] = self.calibrator.to_dict(), self.curve.to_dict()
        return strict_json(out)

    @classmethod
    def from_dict(cls, data: dict) -> "StudentTrust":
        return cls(**trust_fields(cls, data, nan_fields=("coverage_se",)))


def nan_if_none(value) -> float:
    """A number strict JSON wrote as None (NaN or an infinity) read back as NaN."""
    return float("nan") if value is None else float(value)


def trust_fields(cls, data: dict, nan_fields: Sequence[str] = ()) -> dict:
    """The fields of the trust record ``cls`` (a dataclass with a calibrator, a curve, dev AUROCs and a coverage
    interval) read back from its ``to_dict()``: the calibrator and curve rebuilt, and the numbers strict JSON
    wrote as None (in ``dev_auroc``, ``coverage_ci`` and ``nan_fields``) restored as NaN."""
    values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
    values["calibrator"] = Calibrator.from_dict(data["calibrator"])
    values["curve"] = TrustCurve.from_dict(data["curve"])
    values["dev_auroc"] = {k: nan_if_none(v) for k, v in data.get("dev_auroc", {}).items()}
    values["coverage_ci"] = [nan_if_none(v) for v in data.get("coverage_ci") or [None, None]]
    for key in nan_fields:
        values[key] = nan_if_none(data.get(key))
    return values


def student_trust(name: str, dev_student_logits, dev_teacher_logits, test_student_logits, test_teacher_logits,
                  target: float = TARGET_FIDELITY, bootstrap: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> StudentTrust:
    """Choose the score and fit the calibrator and threshold on dev; measure the curve on test."""
    if len(dev_student_logits) == 0 or len(test_student_logits) == 0:
        raise ValueError("The trust curve needs dev and test texts; this corpus has none in one of them.")
    return unit_trust(name, score_candidates(dev_student_logits),
                      teacher_agreement(dev_student_logits, dev_teacher_logits),
                      score_candidates(test_student_logits), teacher_agreement(test_student_logits, test_teacher_logits),
                      target, bootstrap, seed)


def unit_trust(name: str, dev_candidates: Mapping[str, np.ndarray], dev_agree, test_candidates: Mapping[str, np.ndarray],
               test_agree, target: float = TARGET_FIDELITY, bootstrap: int = BOOTSTRAP_SAMPLES,
               seed: int = 0, unit: str = "texts") -> StudentTrust:
    """:func:`student_trust` over units of any task: each unit's candidate scores (:data:`SCORE_NAMES`) and
    whether the student made the teacher's decision there, on dev (choices) and test (the figures)."""
    if not 0 < target <= 1:
        raise ValueError(f"target fidelity must be in (0, 1], got {target}.")
    dev_agree, agree = np.asarray(dev_agree, dtype=bool), np.asarray(test_agree, dtype=bool)
    if dev_agree.size == 0 or agree.size == 0:
        raise ValueError("The trust curve needs dev and test texts; this corpus has none in one of them.")
    score, aurocs = choose_among(dev_candidates, dev_agree)
    dev_scores = np.asarray(dev_candidates[score], dtype=np.float64)
    calibrator = fit_calibrator(dev_scores, dev_agree, seed=seed)
    dev_curve = trust_curve(dev_scores, dev_agree)
    dev_point = dev_curve.point_at(target)
    threshold = None if dev_point is None else dev_curve.thresholds[dev_point]
    dev_coverage = 0.0 if dev_point is None else float(dev_curve.coverage[dev_point])

    scores = np.asarray(test_candidates[score], dtype=np.float64)
    curve = trust_curve(scores, agree)
    point = curve.point_at(target)
    se, interval = bootstrap_coverage(scores, agree, target, bootstrap, seed)
    record = StudentTrust(
        name=name, score=score, dev_auroc=aurocs, calibrator=calibrator, target=target, dev_threshold=threshold,
        dev_coverage=dev_coverage, dev_size=int(dev_scores.size), curve=curve, coverage=curve.coverage_at(target),
        coverage_se=se, coverage_ci=interval,
        fidelity_at_coverage=None if point is None else float(curve.fidelity[point]),
        test_fidelity=float(agree.mean()), threshold_coverage=None, threshold_fidelity=None, unit=unit)
    chosen = record.likely(scores)
    record.threshold_coverage = float(chosen.mean())
    record.threshold_fidelity = float(agree[chosen].mean()) if chosen.any() else None
    return record


# ------------------------------------------------------------------------------ per run
@dataclass
class RunTrust:
    """Every student's trust record of one run (the run's ``trust.json``)."""

    target: float
    students: dict  # name -> StudentTrust
    dev_size: int = 0
    test_size: int = 0
    note: str = ""
    entities: dict = field(default_factory=dict)  # a tagging run's per-entity records: name -> plain dict

    def to_dict(self) -> dict:
        return {"target": self.target, "dev_size": self.dev_size, "test_size": self.test_size, "note": self.note,
                "students": {name: entry.to_dict() for name, entry in self.students.items()},
                "entities": self.entities}

    @classmethod
    def from_dict(cls, data: dict) -> "RunTrust":
        return cls(float(data.get("target", TARGET_FIDELITY)),
                   {name: StudentTrust.from_dict(entry) for name, entry in (data.get("students") or {}).items()},
                   int(data.get("dev_size", 0)), int(data.get("test_size", 0)), str(data.get("note", "")),
                   dict(data.get("entities") or {}))

    def text(self) -> str:
        """The record in words: one line per student (score, dev AUROC, coverage with its SE) and its headline."""
        from .intervals import format_interval

        if not self.students:
            return f"Trust curve: none. {self.note}".strip()
        unit = next(iter(self.students.values())).unit
        lines = [f"Trust curves: stand-in score chosen on dev ({self.dev_size} {unit}), curve on test "
                 f"({self.test_size} {unit}), target fidelity {self.target:.2f}"]
        for name, t in self.students.items():
            se = f" ± {t.coverage_se:.3f} (SE; 95% interval {format_interval(t.coverage_ci)})" \
                if math.isfinite(t.coverage_se) else ""
            at = "—" if t.threshold_fidelity is None else f"{t.threshold_fidelity:.3f}"
            lines.append(f"  {name}: score {t.score} (dev AUROC {t.chosen_auroc:.3f}); coverage at fidelity "
                         f"{t.target:.2f}: {t.coverage:.3f}{se}; dev threshold on test: coverage "
                         f"{t.threshold_coverage:.3f}, fidelity {at}")
            lines.append(f"    {t.headline()}")
        for name, entry in self.entities.items():
            lines.append(f"  {name} per entity: score {entry.get('score')}, coverage at entity agreement "
                         f"{entry.get('target', 0):.2f}: {entry.get('coverage', 0):.3f} (95% interval "
                         f"{format_interval(entry.get('coverage_ci')) or '—'}); {entry.get('headline', '')}")
        return "\n".join(lines)

    def summary(self) -> list[dict]:
        """One row per student: the chosen score, its dev AUROC, coverage at the target (with its SE and
        95% interval)."""
        from .intervals import format_interval

        return [{"student": name, "stand-in score": t.score, "dev AUROC": t.chosen_auroc,
                 f"coverage at {t.target:.0%} fidelity": t.coverage, "coverage SE": t.coverage_se,
                 "coverage 95% interval": format_interval(t.coverage_ci),
                 "fidelity there": t.fidelity_at_coverage, "fidelity on all texts": t.test_fidelity,
                 "dev threshold": t.dev_threshold, "coverage at dev threshold": t.threshold_coverage,
                 "fidelity at dev threshold": t.threshold_fidelity}
                for name, t in self.students.items()]


def evaluate_trust(students: Mapping[str, object], dev_texts: Sequence[str], dev_teacher_logits,
                   test_texts: Sequence[str], test_teacher_logits, target: float = TARGET_FIDELITY,
                   progress=None) -> RunTrust:
    """The trust record of every student (any kind with ``predict_logits``) from the teacher's logits on
    the dev and test texts; ``progress`` hears a ``trust`` event as each student's record is done."""
    records = {}
    for done, (name, student) in enumerate(students.items(), start=1):
        records[name] = student_trust(name, student.predict_logits(list(dev_texts)), dev_teacher_logits,
                                      student.predict_logits(list(test_texts)), test_teacher_logits, target)
        emit(progress, stage="trust", student=name, done=done, total=len(students))
    return RunTrust(target, records, len(dev_texts), len(test_texts))


def write_trust(writer, teacher, students: Mapping[str, object], dev, test, test_teacher_logits=None,
                task=None) -> RunTrust:
    """The trust record of ``task`` (default: the sequence task's, over texts) written into a run
    being built (``writer``: a RunWriter): ``trust.json`` and the teacher's dev logits."""
    task = task or get_task()
    record, dev_logits = task.trust(teacher, students, dev, test, test_teacher_logits)
    return save_trust(writer, task, record, dev_logits)


def save_trust(writer, task, record: RunTrust, dev_logits=None) -> RunTrust:
    """Write a trust record (``trust.json``) and the teacher's dev logits it used into a run being built."""
    if dev_logits is not None:
        writer.write_array(DEV_LOGITS_FILE, task.logits_array(dev_logits))
    writer.write_json(TRUST_FILE, record.to_dict())
    return record


def recompute_trust(run, target: float = TARGET_FIDELITY) -> RunTrust:
    """Compute a finished run's trust record from its stored splits and teacher logits (the teacher runs on
    the dev split when its logits are not stored yet), and write it into the run (``trust.json``)."""
    from .runs import RunError, update_run_file

    try:
        dev = run.split("dev")
    except RunError:
        dev = None
    test = run.split("test")
    task = task_of(run)
    stored = {name: run.path / name for name in ("teacher_test_logits.npy", DEV_LOGITS_FILE)}
    test_logits = (task.logits_of(run.array("teacher_test_logits.npy"), test)
                   if stored["teacher_test_logits.npy"].is_file() else None)
    dev_logits = task.logits_of(run.array(DEV_LOGITS_FILE), dev) if stored[DEV_LOGITS_FILE].is_file() else None
    teacher = run.teacher if test_logits is None or (dev is not None and dev_logits is None) else None
    record, used = task.trust(teacher, run.students, dev, test, test_logits, dev_logits, target)
    if used is not None and dev_logits is None:
        update_run_file(run, DEV_LOGITS_FILE, task.logits_array(used))
    update_run_file(run, TRUST_FILE, record.to_dict())
    return record


def empty_trust(dev, test, target: float, dev_words: str, test_words: str) -> RunTrust | None:
    """The empty trust record, its note saying why, when ``dev`` or ``test`` has nothing to read (else None):
    the score, calibrator and threshold are chosen on dev, never on test. ``dev_words`` / ``test_words`` name
    what is missing in the task's own words ("dev split", "test texts")."""
    if dev is None or len(dev) == 0:
        return RunTrust(target, {}, 0, len(test) if test is not None else 0,
                        note=f"This run has no {dev_words}, on which the stand-in score, its calibration and "
                             "threshold are chosen; build it from data with a dev split for a trust curve.")
    if test is None or len(test) == 0:
        return RunTrust(target, {}, len(dev), 0, note=f"This run has no {test_words} to draw a trust curve on.")
    return None


def load_trust(run) -> RunTrust | None:
    """The run's trust record, or None for a run built before kd-lens computed it."""
    import json

    path = run.path / TRUST_FILE
    if not path.is_file():
        return None
    return RunTrust.from_dict(json.loads(path.read_text(encoding="utf-8")))


# ------------------------------------------------------------------------------ one text
@dataclass
class StandIn:
    """One text, one student: its stand-in score, the calibrated p(agrees), whether it is at or above
    the dev threshold (a likely stand-in), and, where the teacher's class on the text is known,
    whether the student gives that class (``agrees``; None when unknown)."""

    student: str
    score: float
    probability: float
    likely: bool
    agrees: bool | None = None

    @property
    def stands_in(self) -> bool:
        """Likely, and not seen to disagree: p(agrees) is a prediction, the teacher's class a fact."""
        return self.likely and self.agrees is not False

    @property
    def label(self) -> str:
        if self.agrees is False:
            return "disagrees with the teacher here"
        return "likely stand-in" if self.likely else "unlikely stand-in"


def assess_logits(trust: StudentTrust, logits, teacher_classes: Sequence[int] | None = None) -> list[StandIn]:
    """The stand-in verdict of ``trust``'s student for each row of its ``logits``; with the teacher's
    class of each row, also whether the student agrees with it there."""
    logits = np.atleast_2d(np.asarray(logits))
    scores = stand_in_scores(logits, trust.score)
    probabilities = trust.calibrator(scores)
    likely = trust.likely(scores)
    if teacher_classes is None:
        agrees = [None] * len(scores)
    else:
        teacher_classes = np.asarray(teacher_classes, dtype=np.int64).reshape(-1)
        if len(teacher_classes) != len(scores):
            raise ValueError(f"{len(teacher_classes)} teacher classes for {len(scores)} rows of logits.")
        agrees = [bool(a) for a in logits.argmax(axis=1) == teacher_classes]
    return [StandIn(trust.name, float(s), float(p), bool(k), a)
            for s, p, k, a in zip(scores, probabilities, likely, agrees)]


def assess(trust: RunTrust | None, students: Mapping[str, object], texts: Sequence[str],
           teacher_classes: Sequence[int] | None = None) -> dict[str, list[StandIn]]:
    """{student: one StandIn per text} for every student of ``students`` that ``trust`` covers (none for a run
    without a trust record). ``teacher_classes`` (the teacher's class of each text, where it was run) lets
    each verdict say whether the student agrees with it there."""
    if trust is None:
        return {}
    texts = [texts] if isinstance(texts, str) else list(texts)
    return {name: assess_logits(trust.students[name], model.predict_logits(texts), teacher_classes)
            for name, model in students.items() if name in trust.students}
