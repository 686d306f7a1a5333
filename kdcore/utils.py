"""Small shared helpers: hashing, atomic writes, threads, devices, progress events."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .faults import fault_point

ProgressFn = Callable[[dict], None]
_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = [
    "ProgressFn", "atomic_write_bytes", "atomic_write_json", "atomic_save_npy", "atomic_directory",
    "remove_temporaries", "canonical_safetensors", "sha256_file", "sha256_texts", "configure_threads",
    "default_device", "emit", "json_default", "strict_json", "stage_events", "relabel",
]


def emit(progress: ProgressFn | None, **event: Any) -> None:
    """Send one progress event (a dict with at least ``stage``) when a callback is given."""
    if progress is not None:
        progress(event)


@contextlib.contextmanager
def stage_events(progress: ProgressFn | None, stage: str, **extra: Any) -> Iterator[None]:
    """Bracket a stage (or a sub-step of one) with a ``phase="start"`` and a ``phase="end"`` event, so that a
    reader knows a silent stretch is still that stage; the end is sent only when the stage finished."""
    emit(progress, stage=stage, phase="start", **extra)
    yield
    emit(progress, stage=stage, phase="end", **extra)


def relabel(progress: ProgressFn | None, stage: str, **extra: Any) -> ProgressFn | None:
    """A callback that passes another step's events on as ``stage``'s (their counts kept; the teacher labelling
    the dev split inside the trust step is the trust step's progress, not a return to labelling)."""
    if progress is None:
        return None
    counted = ("done", "total", "step")
    return lambda event: progress({"stage": stage, **extra, **{k: v for k, v in event.items() if k in counted}})


def atomic_write_bytes(path: str | os.PathLike, data: bytes, kind: str | None = None) -> None:
    """Write to a temporary file in the same folder, fsync, then rename into place. ``kind`` names the
    write for fault injection (:mod:`kdcore.faults`; default: the file's suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        fault_point(f"write:{kind or path.suffix.lstrip('.')}")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder`` and give it the permissions a plain open() would (some writers
    make 0600 files)."""
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(file, 0o666 & ~_UMASK)
    _fsync_dir(folder)


TEMP_DIR_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, kind: str = "dir") -> Iterator[Path]:
    """A folder replaced as a whole: write its files into the yielded temporary folder (beside
    ``path``); on leaving the block they are fsynced and the folder renamed into place (an old one
    is moved aside first and removed after). On an error, or a kill, ``path`` is left as it was;
    a leftover temporary folder is named ``.<name>.tmp-*``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_DIR_MARK}", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        _fsync_tree(tmp)
        fault_point(f"write:{kind}")
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}{TEMP_DIR_MARK}old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_temporaries(folder: str | os.PathLike) -> None:
    """Delete what an interrupted atomic write left under ``folder``: ``*.tmp`` files and
    ``.<name>.tmp-*`` folders (never read by anything)."""
    for entry in sorted(Path(folder).rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if entry.is_dir() and TEMP_DIR_MARK in entry.name and entry.name.startswith("."):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` (safetensors bytes) with its JSON header's keys in sorted order: the serializer writes the
    metadata in hash-map order, which differs from one process to the next, so the same weights would
    give different files (and hashes). The header keeps its length (padded with spaces, as the format allows)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    ordered = {key: header[key] for key in sorted(header)}
    if "__metadata__" in ordered:
        ordered["__metadata__"] = dict(sorted(ordered["__metadata__"].items()))
    text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
    if len(text) > size:  # pragma: no cover - a header written with spaces we cannot fit into
        return data
    return data[:8] + text + b" " * (size - len(text)) + data[8 + size:]


def json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def atomic_write_json(path: str | os.PathLike, obj: Any, kind: str | None = None) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, default=json_default, allow_nan=True).encode("utf-8"), kind)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_texts(texts: Iterable[str], *extra: str) -> str:
    digest = hashlib.sha256()
    for part in extra:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count explicitly (default: every core, at least 1).

    Two torch jobs sharing two cores slow each other many-fold, so long jobs set this once.
    """
    import torch

    if threads is None:
        env = os.environ.get("KDLENS_THREADS")
        threads = int(env) if env else (os.cpu_count() or 1)
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    return threads


def default_device(device: str | None = None):
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def strict_json(value: Any) -> Any:
    """A strict-JSON copy: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    try:
        return strict_json(json_default(value))
    except TypeError:
        return str(value)
