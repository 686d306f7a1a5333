"""kd-lens engine: distill a text classifier into readable students and compare explanations.

Public names are re-exported here and imported on first use, so ``import kdcore`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# What a user of the library calls: configure, load a teacher, distill, explain, measure, store,
# report. Internals (the featurizer, the loss table, the word splitter) stay in their modules.
_EXPORTS = {
    # configuration
    "TeacherConfig": "config", "StudentConfig": "config", "DistillConfig": "config", "RunSpec": "config",
    "DataSource": "config",
    # data
    "TextDataset": "data", "DataError": "data", "read_any": "readers", "from_pandas": "readers", "from_hf": "readers",
    "split_dataset": "data", "load_corpus": "corpora",
    # teacher and students
    "Teacher": "teacher", "TeacherError": "teacher", "LabelMismatch": "labels",
    "LinearStudent": "students", "MLPStudent": "students", "AugLinearStudent": "students", "make_student": "students",
    "load_student": "students", "NgramCache": "ngram_cache",
    # distillation
    "distill": "tasks.sequence.fit", "build_run": "pipeline",
    # explanations and the numbers that say how far a student stands in for the teacher
    "explain": "attribution", "explain_many": "attribution", "METHODS": "attribution", "Explanation": "explanation",
    "agreement": "explain_metrics", "faithfulness": "explain_metrics", "evaluate_explanations": "explain_metrics",
    "fidelity": "metrics", "task_metrics": "metrics", "load_trust": "trust", "evaluate_trust": "trust",
    # runs and reports
    "Run": "runs", "RunError": "runs", "RunManifest": "records", "load_run": "runs", "list_runs": "runs",
    "build_report": "report", "write_report": "report",
    # token classification (one BIO tag a word): data, teacher, students, metrics
    "TokenDataset": "tasks.token.data", "read_tokens": "tasks.token.data", "load_wnut16_corpus": "tasks.token.data",
    "TokenTeacher": "tasks.token.teacher", "TokenLinearStudent": "students", "TokenMLPStudent": "students",
    "TokenCRFStudent": "students",
    "viterbi_bio": "tasks.token.bio", "per_type_report": "tasks.token.metrics", "entity_scores": "tasks.token.metrics",
}

__all__ = list(sorted(_EXPORTS))  # noqa: C414 (a list literal for linters)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kdcore' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
