"""The trust curve of a run of texts: the unit is a text, the decision its label (:mod:`kdcore.trust`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ...trust import TARGET_FIDELITY, RunTrust, empty_trust, evaluate_trust
from ...utils import ProgressFn, relabel

__all__ = ["trust_of_splits"]


def trust_of_splits(teacher, students: Mapping[str, object], dev, test, test_teacher_logits=None,
                    dev_teacher_logits=None, target: float = TARGET_FIDELITY,
                    progress: ProgressFn | None = None) -> tuple[RunTrust, np.ndarray | None]:
    """The trust record of ``students`` over a corpus's ``dev`` and ``test`` splits (TextDatasets), and the
    teacher's dev logits it used (computed here unless given). Without dev texts the record is empty and
    its note says why: the score, calibrator and threshold are chosen on dev, never on test. ``progress``
    hears ``trust`` events: the teacher's pass over dev (``part="teacher"``), then one a student."""
    empty = empty_trust(dev, test, target, "dev split", "test texts")
    if empty is not None:
        return empty, None
    if dev_teacher_logits is None:
        dev_teacher_logits = teacher.predict_logits(list(dev.texts), progress=relabel(progress, "trust", part="teacher"))
    if test_teacher_logits is None:
        test_teacher_logits = teacher.predict_logits(list(test.texts), progress=relabel(progress, "trust", part="teacher"))
    record = evaluate_trust(students, dev.texts, dev_teacher_logits, test.texts, test_teacher_logits, target,
                            progress=progress)
    return record, np.asarray(dev_teacher_logits)
