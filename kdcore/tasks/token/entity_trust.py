"""Stand-in per entity: for each entity a student predicts, a calibrated p(agrees with the teacher).

An entity of the student *agrees* when the teacher has the same span with the same type. Its score is read
from the student's own outputs only (no teacher): over the entity's words, the student's probability of the
tag it gave each word, taken at its lowest (``min_tag_probability``) or its mean (``mean_tag_probability``),
whichever predicts agreement better on dev (AUROC; the lowest on ties). Every choice is made on the dev
sentences and the test sentences are read once for the reported figures:

- the calibrated p(agrees | score): isotonic or Platt regression of dev agreement on the score
  (:func:`kdcore.calibration.fit_calibrator`, non-decreasing in the score), fitted on dev entities only;
- on test, the trust curve: the student's entities sorted by score (surest first, ties together), the
  entity agreement (the share of kept entities that are the teacher's: a precision) against the coverage
  (the share of the student's entities kept); the largest coverage whose agreement reaches the target
  (0.90), with a 95% interval from resampling the test sentences; and the test Brier score of p(agrees).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ...calibration import Calibrator, fit_calibrator
from ...trust import BOOTSTRAP_SAMPLES, TrustCurve, choose_among, trust_curve, trust_fields
from ...utils import strict_json
from .bio import entities
from .metrics import log_softmax, model_decode

__all__ = ["ENTITY_TARGET", "ENTITY_SCORES", "EntityTrust", "entity_scores_of", "entity_agreement_flags",
           "entity_trust", "student_entity_trust", "entity_stand_ins", "entity_records", "assess_entities",
           "ENTITY_DEFINITIONS"]

ENTITY_TARGET = 0.90
# name -> (reduction over the entity's words of the student's probability of its tag, words for the screen)
ENTITY_SCORES = {"min_tag_probability": (np.min, "the lowest probability it gives its tag on the entity's words"),
                 "mean_tag_probability": (np.mean, "the mean probability it gives its tag on the entity's words")}
ENTITY_DEFINITIONS = {
    "p(agrees) per entity": "Calibrated probability that the teacher has this entity too (same span and type): "
                            "isotonic or Platt regression, fitted on the dev sentences, of agreement on the "
                            "student's lowest (or mean) probability of its tags over the entity's words.",
    "coverage at 0.90 entity agreement": "On test, the student's entities sorted by that score (surest first): "
                                         "the largest share of them of which at least 90% are the teacher's.",
}


def entity_scores_of(tags, word_logits, label_names: Sequence[str]) -> tuple[list[tuple], dict[str, np.ndarray]]:
    """The entities ``(sentence, type, start, end)`` of the student's decoded ``tags`` and every candidate
    score of each (see the module docstring), from its per-word logits."""
    index = {tag: k for k, tag in enumerate(label_names)}
    found, values = [], {name: [] for name in ENTITY_SCORES}
    for i, (sentence_tags, rows) in enumerate(zip(tags, word_logits)):
        spans = entities(list(sentence_tags))
        if not spans:
            continue
        probabilities = np.exp(log_softmax(np.asarray(rows)))
        chosen = probabilities[np.arange(len(sentence_tags)), [index[t] for t in sentence_tags]]
        for kind, start, end in spans:
            found.append((i, kind, start, end))
            for name, (reduce, _) in ENTITY_SCORES.items():
                values[name].append(float(reduce(chosen[start:end])))
    return found, {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}


def entity_agreement_flags(found: Sequence[tuple], teacher_tags) -> np.ndarray:
    """Whether the teacher has each entity ``(sentence, type, start, end)`` (same span and type)."""
    spans = [set(entities(list(tags))) for tags in teacher_tags]
    return np.array([(kind, start, end) in spans[i] for i, kind, start, end in found], dtype=bool)


@dataclass
class EntityTrust:
    """One student's per-entity stand-in record (see the module docstring)."""

    name: str
    score: str
    dev_auroc: dict
    calibrator: Calibrator
    target: float
    dev_entities: int
    test_entities: int
    curve: TrustCurve
    coverage: float            # largest test coverage with entity agreement >= target
    coverage_ci: list          # its 95% interval, resampling the test sentences
    agreement_at_coverage: float | None
    test_agreement: float      # share of all the student's test entities that are the teacher's
    test_brier: float          # mean squared error of p(agrees) on the test entities
    test_mean_probability: float  # mean p(agrees) on test, to set beside test_agreement

    def probabilities(self, scores) -> np.ndarray:
        return self.calibrator(np.asarray(scores, dtype=np.float64))

    def headline(self) -> str:
        if self.agreement_at_coverage is None or self.coverage <= 0:
            return (f"No group of {self.name}'s test entities it is surest of reaches {self.target:.0%} agreement "
                    f"with the teacher ({self.test_agreement:.0%} of all {self.test_entities} are the teacher's).")
        if self.coverage >= 1.0:
            return (f"{self.agreement_at_coverage:.0%} of {self.name}'s {self.test_entities} test entities are the "
                    f"teacher's: all of them together reach {self.target:.0%} agreement.")
        return (f"On the {self.coverage:.0%} of its {self.test_entities} test entities {self.name} is surest of, "
                f"{self.agreement_at_coverage:.0%} are the teacher's (of all of them, {self.test_agreement:.0%}).")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["calibrator"], out["curve"], out["headline"] = self.calibrator.to_dict(), self.curve.to_dict(), self.headline()
        return strict_json(out)

    @classmethod
    def from_dict(cls, data: dict) -> "EntityTrust":
        return cls(**trust_fields(cls, data, nan_fields=("test_brier", "test_mean_probability", "test_agreement")))


def _coverage_interval(scores, agree, sentence_of, target: float, samples: int, seed: int) -> list[float]:
    """Percentile 95% interval of the coverage at ``target``, resampling the sentences that hold the entities."""
    sentences = np.unique(sentence_of)
    if len(sentences) < 2 or samples < 2:
        return [float("nan"), float("nan")]
    members = [np.flatnonzero(sentence_of == s) for s in sentences]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        chosen = np.concatenate([members[d] for d in rng.integers(0, len(members), len(members))])
        values.append(trust_curve(scores[chosen], agree[chosen]).coverage_at(target))
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def entity_trust(name: str, dev_candidates: dict, dev_agree, test_candidates: dict, test_agree, test_sentence_of,
                 target: float = ENTITY_TARGET, bootstrap: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> EntityTrust:
    """Choose the score and fit the calibrator on the dev entities; measure the curve on the test entities
    (``test_sentence_of``: the test sentence of each, for the bootstrap). Needs at least one dev entity."""
    dev_agree, test_agree = np.asarray(dev_agree, bool), np.asarray(test_agree, bool)
    if not dev_agree.size:
        raise ValueError(f"{name} predicts no entity on the dev sentences, so p(agrees) per entity cannot be "
                         "calibrated; give a dev split with entities.")
    score, aurocs = choose_among(dev_candidates, dev_agree, ENTITY_SCORES)
    calibrator = fit_calibrator(dev_candidates[score], dev_agree)
    scores = np.asarray(test_candidates[score], dtype=np.float64)
    curve = trust_curve(scores, test_agree)
    point = curve.point_at(target)
    probabilities = calibrator(scores)
    return EntityTrust(
        name=name, score=score, dev_auroc=aurocs, calibrator=calibrator, target=target,
        dev_entities=int(dev_agree.size), test_entities=int(test_agree.size), curve=curve,
        coverage=curve.coverage_at(target),
        coverage_ci=_coverage_interval(scores, test_agree, np.asarray(test_sentence_of), target, bootstrap, seed),
        agreement_at_coverage=None if point is None else float(curve.fidelity[point]),
        test_agreement=float(test_agree.mean()) if test_agree.size else float("nan"),
        test_brier=float(((probabilities - test_agree) ** 2).mean()) if test_agree.size else float("nan"),
        test_mean_probability=float(probabilities.mean()) if test_agree.size else float("nan"))


def student_entity_trust(name: str, label_names, dev_tags, dev_logits, dev_teacher_tags, test_tags, test_logits,
                         test_teacher_tags, target: float = ENTITY_TARGET) -> EntityTrust | None:
    """:func:`entity_trust` of a student from its decoded tags and word logits on dev and test and the
    teacher's decoded tags there; None when the student predicts no entity on dev."""
    dev_found, dev_candidates = entity_scores_of(dev_tags, dev_logits, label_names)
    if not dev_found:
        return None
    test_found, test_candidates = entity_scores_of(test_tags, test_logits, label_names)
    return entity_trust(name, dev_candidates, entity_agreement_flags(dev_found, dev_teacher_tags), test_candidates,
                        entity_agreement_flags(test_found, test_teacher_tags), [e[0] for e in test_found], target)


def entity_records(trust_record) -> dict[str, EntityTrust]:
    """{student: EntityTrust} of a run's trust record (kdcore.trust.RunTrust); empty for a run without them."""
    if trust_record is None:
        return {}
    return {name: EntityTrust.from_dict(entry) for name, entry in (trust_record.entities or {}).items()}


def entity_stand_ins(record: EntityTrust, tags, word_logits, label_names) -> list[dict[int, float]]:
    """Per sentence, ``{first word of an entity of the student: its p(agrees)}`` for the student's ``tags``
    (decoded as it decodes) and word logits."""
    found, candidates = entity_scores_of(tags, word_logits, label_names)
    probabilities = record.probabilities(candidates[record.score]) if found else []
    out: list[dict[int, float]] = [{} for _ in tags]
    for (sentence, _, start, _), p in zip(found, probabilities):
        out[sentence][start] = float(p)
    return out


def assess_entities(trust_record, students: dict, sentences) -> dict[str, list[dict[int, float]]]:
    """{student: per sentence ``{first word of each of its entities: p(agrees)}``} for every student of
    ``students`` with a per-entity record in ``trust_record`` (a RunTrust; none without one), each student's
    entities decoded as it decodes (:func:`kdcore.tasks.token.metrics.model_decode`)."""
    out = {}
    for name, record in entity_records(trust_record).items():
        if name in students and len(sentences):
            model = students[name]
            logits = model.predict_word_logits(sentences)
            out[name] = entity_stand_ins(record, model_decode(model, sentences, logits), logits, model.label_names)
    return out
