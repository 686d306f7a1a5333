"""The trust curve of a tagging run: on which sentences a student can stand in for the teacher.

The unit is a sentence, and the decision is entity-level: a student stands in for the teacher on a
sentence when its entities (exact span and type, as it decodes: the BIO-valid Viterbi, or a CRF's own) are the
teacher's. Each
candidate stand-in score of :mod:`kdcore.trust` is read per word from the student's own word logits and
a sentence takes its weakest word's (the minimum): one unsure word can break an entity. The score, its
calibration and the threshold are chosen on dev, the curve and coverage measured on test, exactly as for
texts (:func:`kdcore.trust.unit_trust`).

Beside it, the per-entity record of :mod:`kdcore.tasks.token.entity_trust` (a calibrated p(agrees) for each
entity a student predicts, and the curve of entity agreement against coverage), stored in the same record.
"""

from __future__ import annotations

import numpy as np

from ...trust import SCORE_NAMES, TARGET_FIDELITY, RunTrust, empty_trust, stand_in_scores, unit_trust
from .bio import entities
from .entity_trust import student_entity_trust
from .metrics import decode, model_decode

__all__ = ["sentence_candidates", "same_entities", "sentence_trust"]


def sentence_candidates(word_logits) -> dict[str, np.ndarray]:
    """Every candidate stand-in score of each sentence: the lowest of its words' scores."""
    return {name: np.array([float(stand_in_scores(np.asarray(rows), name).min()) if len(rows) else np.inf
                            for rows in word_logits]) for name in SCORE_NAMES}


def same_entities(student_tags, teacher_tags) -> np.ndarray:
    """Per sentence: whether the entities of the student's tags are exactly those of the teacher's."""
    return np.array([set(entities(mine)) == set(entities(theirs)) for mine, theirs in zip(student_tags, teacher_tags)],
                    dtype=bool)


def sentence_trust(teacher, students, dev, test, test_teacher_logits=None, dev_teacher_logits=None,
                   target: float = TARGET_FIDELITY) -> tuple[RunTrust, list | None]:
    """The trust record of ``students`` over the ``dev`` and ``test`` sentences, and the teacher's dev word
    logits it used (computed here unless given). Without dev sentences the record is empty and says why."""
    empty = empty_trust(dev, test, target, "dev sentences", "test sentences")
    if empty is not None:
        return empty, None
    if dev_teacher_logits is None:
        dev_teacher_logits = teacher.predict_word_logits(dev.sentences)
    if test_teacher_logits is None:
        test_teacher_logits = teacher.predict_word_logits(test.sentences)
    names = list(dev.label_names)
    teacher_tags = decode(dev_teacher_logits, names), decode(test_teacher_logits, names)
    records, per_entity = {}, {}
    for name, student in students.items():
        dev_logits, test_logits = student.predict_word_logits(dev.sentences), student.predict_word_logits(test.sentences)
        # Each student read as it decodes (a CRF through its own Viterbi), for both records.
        dev_tags = model_decode(student, dev.sentences, dev_logits)
        test_tags = model_decode(student, test.sentences, test_logits)
        records[name] = unit_trust(name, sentence_candidates(dev_logits), same_entities(dev_tags, teacher_tags[0]),
                                   sentence_candidates(test_logits), same_entities(test_tags, teacher_tags[1]), target,
                                   unit="sentences")
        entity_record = student_entity_trust(name, names, dev_tags, dev_logits, teacher_tags[0], test_tags, test_logits,
                                             teacher_tags[1])
        if entity_record is not None:
            per_entity[name] = entity_record.to_dict()
    return RunTrust(target, records, len(dev), len(test), entities=per_entity), list(dev_teacher_logits)
