"""The tasks kd-lens distills, and the one place that asks which task a run, a spec or a file is.

``TASKS`` names each task's class by its import path; :func:`get_task` imports it on first use. The
registry imports no implementation at module level: the configuration and the run store import it, and
the implementations import them (a real cycle, broken here as a plugin table is).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from .base import VIEWS, DistillResult, Task

__all__ = ["TASKS", "DEFAULT_TASK", "ALIASES", "Task", "DistillResult", "VIEWS", "get_task", "detect_task",
           "task_of", "task_names", "head_task"]

TASKS = {"sequence": "kdcore.tasks.sequence.task:SequenceTask", "token": "kdcore.tasks.token.task:TokenTask"}
DEFAULT_TASK = "sequence"  # every run written before tasks existed
ALIASES = {"ner": "token"}
_LOADED: dict[str, Task] = {}


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: str | None = None) -> Task:
    """The task registered as ``name`` (or an alias such as ``ner``; None is the default task)."""
    name = ALIASES.get(name, name) if name is not None else DEFAULT_TASK
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose from {', '.join([*TASKS, *ALIASES])}.")
    if name not in _LOADED:
        module, _, cls = TASKS[name].partition(":")
        _LOADED[name] = getattr(importlib.import_module(module), cls)()
    return _LOADED[name]


def task_of(thing) -> Task:
    """The task of a run, a RunSpec, a manifest or a metrics.json dict."""
    name = thing.get("task") if isinstance(thing, dict) else getattr(thing, "task", None)
    return get_task(name or DEFAULT_TASK)


def detect_task(data: str | None = None, teacher: str | None = None, corpus: str | None = None,
                named: str | None = None) -> Task:
    """The task ``named`` (when not None or ``"auto"``), else the one a data file, a teacher (its head, for a
    local folder) or an embedded corpus shows; the default task when nothing says otherwise. The data file
    is asked first, then the teacher."""
    if named not in (None, "auto"):
        return get_task(named)
    others = [get_task(name) for name in TASKS if name != DEFAULT_TASK]
    head = head_task(teacher) if teacher else None
    for task in others:
        if data and task.recognises(data=data):
            return task
    for task in others:
        if head and task.recognises(teacher_head=head):
            return task
    for task in others:
        if not data and corpus and task.recognises(corpus=corpus):
            return task
    return get_task(DEFAULT_TASK)


def head_task(folder) -> str | None:
    """The task whose head a local model folder's config.json names (its ``architectures``); None when
    unknown (a bare encoder, a hub id, no such folder)."""
    config = Path(str(folder)) / "config.json"
    if not config.is_file():
        return None
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return None
    for name in TASKS:
        suffix = get_task(name).architecture_suffix
        if any(str(a).endswith(suffix) for a in architectures):
            return name
    return None
