"""The one table of student kinds: ``config.kind`` -> class, and the constructors built on it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import StudentConfig
from ..config import STUDENT_KINDS
from .aug_linear import AugLinearStudent
from .base import Student
from .linear import LinearStudent
from .mlp import MLPStudent
from .token import TokenLinearStudent, TokenMLPStudent
from .token_crf import TokenCRFStudent

__all__ = ["STUDENT_CLASSES", "SENTENCE_STUDENT_CLASSES", "WEIGHT_TABLE_KINDS", "make_student", "load_student"]

# Filled by Student.__init_subclass__ as the student modules are imported above.
STUDENT_CLASSES: dict[str, type[Student]] = Student.kinds
assert {"linear": LinearStudent, "mlp": MLPStudent, "aug_linear": AugLinearStudent, "token_linear": TokenLinearStudent,
        "token_mlp": TokenMLPStudent}.items() <= STUDENT_CLASSES.items()
# The kinds fitted, saved and loaded a whole sentence at a time with their own code (fit_sentences, save,
# load), not the shared Student training over one row an input: the CRF token student.
SENTENCE_STUDENT_CLASSES = {"token_crf": TokenCRFStudent}
assert set(STUDENT_KINDS) == set(STUDENT_CLASSES) | set(SENTENCE_STUDENT_CLASSES)
# The kinds read as one weight per feature and class (``weights()``); the others through
# their global importances.
WEIGHT_TABLE_KINDS = tuple(kind for kind, cls in STUDENT_CLASSES.items() if hasattr(cls, "weights"))


def make_student(config: StudentConfig) -> Student:
    """An unfitted student of the kind ``config.kind`` (e.g. ``LinearStudent(config)``)."""
    if not isinstance(config, StudentConfig):
        raise ValueError(f"make_student needs a StudentConfig, got {type(config).__name__}.")
    return {**STUDENT_CLASSES, **SENTENCE_STUDENT_CLASSES}[config.kind](config)


def load_student(directory: str | os.PathLike):
    """Load any saved student, dispatching on the ``kind`` in its config.json."""
    try:
        kind = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None  # Student.load says what is missing or wrong
    if kind in SENTENCE_STUDENT_CLASSES:
        return SENTENCE_STUDENT_CLASSES[kind].load(directory)
    return Student.load(directory)
