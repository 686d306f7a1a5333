"""The one table of student kinds: ``config.kind`` -> class, and the constructors built on it."""

from __future__ import annotations

import os

from ..config import StudentConfig
from .base import Student
from .linear import LinearStudent
from .mlp import MLPStudent
from .token import TokenLinearStudent, TokenMLPStudent

__all__ = ["STUDENT_CLASSES", "make_student", "load_student"]

# Filled by Student.__init_subclass__ as linear.py, mlp.py and token.py are imported above.
STUDENT_CLASSES: dict[str, type[Student]] = Student.kinds
assert {"linear": LinearStudent, "mlp": MLPStudent, "token_linear": TokenLinearStudent,
        "token_mlp": TokenMLPStudent}.items() <= STUDENT_CLASSES.items()


def make_student(config: StudentConfig) -> Student:
    """An unfitted student of the kind ``config.kind`` (e.g. ``LinearStudent(config)``)."""
    if not isinstance(config, StudentConfig):
        raise ValueError(f"make_student needs a StudentConfig, got {type(config).__name__}.")
    return STUDENT_CLASSES[config.kind](config)


def load_student(directory: str | os.PathLike) -> Student:
    """Load any saved student, dispatching on the ``kind`` in its config.json."""
    return Student.load(directory)
