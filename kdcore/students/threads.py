"""Students run torch single-threaded (see :func:`single_threaded`)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch

__all__ = ["single_threaded"]

_THREADS_LOCK = threading.Lock()
_threads_state = {"depth": 0, "saved": 1}


@contextmanager
def single_threaded():
    """Run torch single-threaded for the duration, then restore the caller's setting.

    A student's torch work is a stream of tiny ops (batches of 64 texts in training, one
    EmbeddingBag per 4096 texts in prediction, next to Python featurizing). Intra-op
    threads cannot speed these up, and each parallel region waits for every thread, so on
    a machine whose cores are busy they make training 4-9x and prediction 2-3x slower
    (measured on 2 shared cores). The setting is process-wide: other threads' torch work
    also runs single-threaded while a student call is in progress. Nested and concurrent
    student calls share one save/restore.
    """
    with _THREADS_LOCK:
        if _threads_state["depth"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_state["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_state["depth"] -= 1
            if _threads_state["depth"] == 0:
                torch.set_num_threads(_threads_state["saved"])
