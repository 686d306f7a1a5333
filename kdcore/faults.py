"""Fault injection for the run store's tests: a process that meets the point named in the environment
variable ``KDLENS_FAULT`` kills itself (SIGKILL, as a power cut or the OOM killer would), so a test can
show that a build killed there resumes into the same run.

``KDLENS_FAULT=stage:labels`` kills before the stage ``labels`` starts (``stage:publish`` before the run
is published); ``KDLENS_FAULT=write:npy:2`` kills inside the second ``.npy`` write, after its temporary
file is on disk and before it is renamed into place. Kinds of write: ``json``, ``jsonl``, ``npy``,
``dir`` (a folder of files: the teacher, a student, a fine-tuning checkpoint), ``manifest`` and
``commit`` (the manifest is written, the folder not yet renamed). Unset, every point is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["FAULT_ENV", "fault_point"]

FAULT_ENV = "KDLENS_FAULT"
_seen: Counter = Counter()


def _target(value: str) -> tuple[str, int]:
    name, _, count = value.rpartition(":")
    return (name, int(count)) if name and count.isdigit() else (value, 1)


def fault_point(name: str) -> None:
    """Kill this process when ``name`` (e.g. ``"write:npy"``, ``"stage:labels"``) is the point
    ``KDLENS_FAULT`` names and this is the time it counts; otherwise return at once."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    _seen[name] += 1
    target, count = _target(wanted.strip())
    if name == target and _seen[name] == count:
        os.kill(os.getpid(), signal.SIGKILL)
