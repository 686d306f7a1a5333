"""What keeps a run whole while processes share it: its lock (one file beside the run folder, held by
its builder for the whole build and by every read-modify-write of a finished run), and what a resumed
build is compared with (the spec and the data that started it). :mod:`kdcore.runs` re-exports these.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

__all__ = ["RunError", "run_lock", "new_lock", "split_hashes", "spec_differences", "PARTIAL_SUFFIX", "LOCK_SUFFIX",
           "LOCK_TIMEOUT_S"]

PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
# How long a change to a finished run waits for another process's change to the same run.
LOCK_TIMEOUT_S = 600.0


class RunError(ValueError):
    """A run folder is missing, incomplete, tampered with, busy, or its name is not allowed."""


# One FileLock object per path and process, with a context per thread: re-entrant within a thread,
# exclusive between threads and processes.
_LOCKS: dict[str, FileLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_path(run_path: Path) -> str:
    return str(run_path.with_name(run_path.name.removesuffix(PARTIAL_SUFFIX) + LOCK_SUFFIX))


def new_lock(run_path: Path) -> FileLock:
    """A lock object of its own on the run at ``run_path`` (not re-entrant with :func:`run_lock`'s): a
    builder holds one, so a second builder refuses even in the same thread."""
    return FileLock(_lock_path(Path(run_path)))


def _lock_of(run_path: Path) -> FileLock:
    path = _lock_path(Path(run_path))
    key = f"{os.getpid()}:{path}"  # a forked child makes its own (a lock object does not cross a fork)
    with _LOCKS_GUARD:
        if key not in _LOCKS:
            _LOCKS[key] = FileLock(path, thread_local=True)
        return _LOCKS[key]


@contextmanager
def run_lock(run_path: str | os.PathLike, timeout: float = LOCK_TIMEOUT_S, required: bool = True) -> Iterator[None]:
    """Hold the lock of the run at ``run_path`` (its builder's lock too) for a read-modify-write.

    Waits up to ``timeout`` seconds for another process, then raises RunError. With ``required=False``
    (a read) a runs folder where no lock file can be made (read-only) is read without one."""
    lock = _lock_of(Path(run_path))
    held = False
    try:
        lock.acquire(timeout=timeout)
        held = True
    except Timeout:
        raise RunError(f"Run {Path(run_path).name!r} is being changed by another process (lock {lock.lock_file}); "
                       "wait for it to finish and try again.") from None
    except OSError:
        if required:
            raise
    try:
        yield
    finally:
        if held:
            lock.release()


def split_hashes(corpus) -> dict[str, str]:
    """The content hash of each split of ``corpus`` (train, dev, test, unlabelled where present): what a
    build's data is, for :meth:`kdcore.runs.RunWriter.claim`."""
    hashes = {}
    for split in ("train", "dev", "test", "unlabelled"):
        data = getattr(corpus, split, None)
        if data is not None and hasattr(data, "content_hash"):
            hashes[split] = data.content_hash()
    return hashes


def spec_differences(started: Any, now: Any, prefix: str = "") -> list[str]:
    """Each field where ``now`` differs from ``started`` (nested dicts and lists, dotted names), as
    ``"name: STARTED -> NOW"``."""
    def shown(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=True, default=str)
        return text if len(text) <= 60 else text[:57] + "..."

    if isinstance(started, dict) and isinstance(now, dict):
        out = []
        for key in list(started) + [k for k in now if k not in started]:
            out += spec_differences(started.get(key), now.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(started, list) and isinstance(now, list) and len(started) == len(now):
        return [d for i, (a, b) in enumerate(zip(started, now)) for d in spec_differences(a, b, f"{prefix}[{i}]")]
    same = started == now or (isinstance(started, float) and isinstance(now, float) and started != started and now != now)
    return [] if same else [f"{prefix or 'value'}: {shown(started)} -> {shown(now)}"]
