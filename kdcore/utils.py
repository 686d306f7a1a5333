"""Small shared helpers: hashing, atomic writes, threads, devices, progress events."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

ProgressFn = Callable[[dict], None]
_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = [
    "ProgressFn", "atomic_write_bytes", "atomic_write_json", "atomic_save_npy", "sha256_file",
    "sha256_texts", "configure_threads", "default_device", "emit", "json_default", "strict_json",
]


def emit(progress: ProgressFn | None, **event: Any) -> None:
    """Send one progress event (a dict with at least ``stage``) when a callback is given."""
    if progress is not None:
        progress(event)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename into place."""
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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, default=json_default, allow_nan=True).encode("utf-8"))


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
