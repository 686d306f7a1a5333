"""The one table of student kinds: ``config.kind`` -> class, and the constructors built on it."""

from __future__ import annotations

import os

from ..config import StudentConfig
from ..config import STUDENT_KINDS
from .aug_linear import AugLinearStudent
from .base import Student
from .linear import LinearStudent
from .mlp import MLPStudent
from .token import TokenLinearStudent, TokenMLPStudent

__all__ = ["STUDENT_CLASSES", "WEIGHT_TABLE_KINDS", "make_student", "load_student"]

# Filled by Student.__init_subclass__ as the student modules are imported above.
STUDENT_CLASSES: dict[str, type[Student]] = Student.kinds
assert {"linear": LinearStudent, "mlp": MLPStudent, "aug_linear": AugLinearStudent, "token_linear": TokenLinearStudent,
        "token_mlp": TokenMLPStudent}.items() <= STUDENT_CLASSES.items()
assert set(STUDENT_KINDS) <= set(STUDENT_CLASSES)
# The kinds read as one weight per feature and class (``weights()``); the others through
# their global importances.
WEIGHT_TABLE_KINDS = tuple(kind for kind, cls in STUDENT_CLASSES.items() if hasattr(cls, "weights"))


def make_student(config: StudentConfig) -> Student:
    """An unfitted student of the kind ``config.kind`` (e.g. ``LinearStudent(config)``)."""
    if not isinstance(config, StudentConfig):
        raise ValueError(f"make_student needs a StudentConfig, got {type(config).__name__}.")
    return STUDENT_CLASSES[config.kind](config)


def load_student(directory: str | os.PathLike) -> Student:
    """Load any saved student, dispatching on the ``kind`` in its config.json."""
    return Student.load(directory)
