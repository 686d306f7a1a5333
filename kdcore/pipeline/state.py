"""What the stages of one build hand to each other, for every task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..utils import ProgressFn

__all__ = ["BuildState"]


@dataclass
class BuildState:
    """One build's state. ``task`` answers what differs between tasks; the transfer set and the logits are
    what the task makes of them (texts and one row a text, or sentences and one row a word)."""

    corpus: Any
    device: str
    task: Any = None
    progress: ProgressFn | None = None
    finished: dict = field(default_factory=dict)   # stage name -> seconds, read back on resume
    timings: dict = field(default_factory=dict)    # the numbers metrics.json reports under "timings"
    teacher: Any = None
    transfer: Any = None
    transfer_logits: Any = None
    transfer_hidden: Any = None
    test_logits: Any = None
    teacher_attributions: list | None = None
    students: dict = field(default_factory=dict)   # name -> trained student
    entries: dict = field(default_factory=dict)    # name -> ModelEntry (kind, role, twin_of, config)
    dirs: dict = field(default_factory=dict)       # name -> folder
    histories: dict = field(default_factory=dict)  # name -> {"history", "seconds", "distilled"}
    metrics: dict | None = None
    findings: list = field(default_factory=list)   # what the task's checks found
    caches: dict = field(default_factory=dict)     # what the task computes once a build (the teacher's word features)
