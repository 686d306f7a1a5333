"""kd-lens engine: distill a text classifier into readable students and compare explanations.

Public names are re-exported here and imported on first use, so ``import kdcore`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "TeacherConfig": "config", "StudentConfig": "config", "DistillConfig": "config", "RunSpec": "config",
    "DataSource": "config", "RunManifest": "records", "ModelEntry": "records", "MetricsRow": "records",
    "ProgressEvent": "records", "STAGES": "records",
    "TextDataset": "data", "DataError": "data", "read_any": "readers", "read_csv": "readers",
    "read_jsonl": "readers", "read_txt": "readers", "from_pandas": "readers", "from_hf": "readers",
    "load_default_corpus": "corpora",
    "split_dataset": "data",
    "Teacher": "teacher", "TeacherError": "teacher",
    "Featurizer": "students", "LinearStudent": "students", "MLPStudent": "students", "load_student": "students",
    "LOSSES": "losses",
    "augment_texts": "augment",
    "distill": "distill", "build_run": "distill", "DistillResult": "distill",
    "explain": "attribution", "explain_many": "attribution", "METHODS": "attribution",
    "Explanation": "explanation",
    "Run": "runs", "RunError": "runs", "load_run": "runs", "list_runs": "runs",
    "write_report": "report", "build_report": "report",
    "split_words": "words",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kdcore' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
