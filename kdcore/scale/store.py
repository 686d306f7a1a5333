"""Precomputed teacher outputs on disk: a folder of Parquet shards and the manifest that says
which teacher, settings and collection made them. No Ray here: reading needs pyarrow only.

Layout of a label folder::

    labels.json               format, teacher (source, fingerprint, classes, max_length, stride),
                              pooled, the collection (root, files, columns) and its slice plan
    shards/part-00000.parquet text_id, text_hash, logits (float32 x classes)[, pooled (float32 x hidden)]

A shard is written to a temporary name and renamed into place, so a shard file that exists is
complete; its Parquet metadata also records the records it covers and how many it skipped, and
a shard whose metadata does not add up is treated as missing and recomputed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils import atomic_write_bytes, atomic_write_json
from .collection import Collection, Slice

__all__ = ["LABELS_FILE", "LabelStoreError", "LabelFolder", "PrecomputedLogits", "write_shard", "shard_is_complete"]

LABELS_FILE = "labels.json"
LABELS_FORMAT = 1
_META_KEY = b"kdlens_shard"


class LabelStoreError(ValueError):
    """A label folder that cannot be used as asked; the message says what to do."""


def write_shard(path: Path, piece: Slice, ids: Sequence[str], hashes: Sequence[str], logits: np.ndarray,
                pooled: np.ndarray | None, skipped: int) -> None:
    """Write one shard atomically (temporary file, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    logits = np.ascontiguousarray(logits, dtype=np.float32)
    columns = {
        "text_id": pa.array(list(ids), pa.string()),
        "text_hash": pa.array(list(hashes), pa.string()),
        "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1)), logits.shape[1]),
    }
    if pooled is not None:
        pooled = np.ascontiguousarray(pooled, dtype=np.float32)
        columns["pooled"] = pa.FixedSizeListArray.from_arrays(pa.array(pooled.reshape(-1)), pooled.shape[1])
    meta = {"index": piece.index, "file": piece.file, "start": piece.start, "stop": piece.stop, "skipped": int(skipped)}
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def shard_is_complete(path: Path, piece: Slice) -> bool:
    """The shard exists, its footer reads, and it covers exactly the records of ``piece``."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return False
    try:
        metadata = pq.read_metadata(path)
        meta = json.loads((metadata.metadata or {}).get(_META_KEY, b"{}"))
    except Exception:  # a truncated or foreign file: recompute it
        return False
    return (meta.get("index") == piece.index and meta.get("file") == piece.file and meta.get("start") == piece.start
            and meta.get("stop") == piece.stop and metadata.num_rows + meta.get("skipped", -1) == piece.stop - piece.start)


@dataclass
class LabelFolder:
    """One label folder: its manifest and shards."""

    path: Path
    manifest: dict

    @classmethod
    def create_or_resume(cls, path, manifest: dict) -> "LabelFolder":
        """Start a folder, or resume one made by the same teacher, settings and collection; refuse
        a folder that holds other labels (its shards would be mixed with these)."""
        path = Path(path)
        existing = path / LABELS_FILE
        if existing.is_file():
            saved = json.loads(existing.read_text(encoding="utf-8"))
            for key in ("format", "teacher", "pooled", "collection", "plan"):
                if _comparable(key, saved.get(key)) != _comparable(key, manifest.get(key)):
                    raise LabelStoreError(
                        f"{path} holds labels made with another {key} ({_short(saved.get(key))} there, "
                        f"{_short(manifest.get(key))} now); label into a new folder, or remove that one to start again.")
            return cls(path, saved)
        if path.exists() and any(path.iterdir()):
            raise LabelStoreError(f"{path} is not empty and is not a label folder; choose a new or empty folder.")
        (path / "shards").mkdir(parents=True, exist_ok=True)
        atomic_write_json(existing, manifest)
        return cls(path, manifest)

    @classmethod
    def open(cls, path) -> "LabelFolder":
        path = Path(path)
        manifest_path = path / LABELS_FILE
        if not manifest_path.is_file():
            raise LabelStoreError(f"{path} is not a label folder (no {LABELS_FILE}); make one with "
                                  "`python -m kdcore label DATA --teacher TEACHER --out DIR`.")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != LABELS_FORMAT:
            raise LabelStoreError(f"{path} has label format {manifest.get('format')!r}; this kd-lens reads {LABELS_FORMAT}.")
        return cls(path, manifest)

    @property
    def slices(self) -> list[Slice]:
        return [Slice(**entry) for entry in self.manifest["plan"]]

    @property
    def collection(self) -> Collection:
        data = self.manifest["collection"]
        return Collection(data["root"], [f["file"] for f in data["files"]], data["text_column"], data["id_column"])

    def shard_path(self, piece: Slice) -> Path:
        return self.path / "shards" / piece.name

    def missing(self) -> list[Slice]:
        """Slices whose shard is absent or incomplete."""
        return [piece for piece in self.slices if not shard_is_complete(self.shard_path(piece), piece)]

    def read_shard(self, piece: Slice, columns=("text_id", "text_hash", "logits")) -> dict:
        """One shard as numpy: ``text_id`` / ``text_hash`` lists, ``logits`` [n, C] (and ``pooled``)."""
        import pyarrow.parquet as pq

        table = pq.read_table(self.shard_path(piece), columns=list(columns))
        out = {}
        for name in columns:
            column = table.column(name).combine_chunks()
            if name in ("logits", "pooled"):
                width = column.type.list_size
                out[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width).astype(np.float32)
            else:
                out[name] = column.to_pylist()
        return out

    def texts_and_logits(self):
        """``(texts, logits)`` shard by shard: the collection's slice read again beside its shard
        (refused when the collection changed since labelling). A chunk source for
        :func:`kdcore.students.train_stream.fit_linear_stream`."""
        from .collection import text_hash

        collection = self.collection
        for piece in self.slices:
            kept = collection.read(piece)
            shard = self.read_shard(piece, ("text_hash", "logits"))
            if shard["text_hash"] != [text_hash(t) for t in kept.texts]:
                raise LabelStoreError(f"{piece.file} records {piece.start + 1}-{piece.stop} changed since they were "
                                      f"labelled into {self.path}; label the collection again.")
            yield kept.texts, shard["logits"]


class PrecomputedLogits:
    """Teacher logits (and pooled vectors) of one or more label folders, found by text hash.

    All folders must come from the same teacher (fingerprint), classes and window settings.
    """

    def __init__(self, folders: Sequence[str | Path], need_pooled: bool = False):
        if not folders:
            raise LabelStoreError("No label folder given.")
        opened = [LabelFolder.open(f) for f in folders]
        first = opened[0].manifest["teacher"]
        for folder in opened[1:]:
            if _comparable("teacher", folder.manifest["teacher"]) != _comparable("teacher", first):
                raise LabelStoreError(f"{folder.path} was labelled by another teacher or settings than {opened[0].path}; "
                                      "give label folders of one teacher.")
        for folder in opened:
            missing = folder.missing()
            if missing:
                raise LabelStoreError(f"{folder.path} is unfinished: {len(missing)} of {len(folder.slices)} shards are "
                                      "missing; run the same `python -m kdcore label` command again to finish it.")
            if need_pooled and not folder.manifest.get("pooled"):
                raise LabelStoreError(f"{folder.path} has no pooled vectors, which feature_align needs; label again "
                                      "with --pooled, or set feature_align to 0.")
        self.teacher = first
        self.folders = opened
        self.need_pooled = need_pooled
        columns = ("text_hash", "logits") + (("pooled",) if need_pooled else ())
        hashes, logits, pooled = [], [], []
        for folder in opened:
            for piece in folder.slices:
                shard = folder.read_shard(piece, columns)
                hashes.extend(shard["text_hash"])
                logits.append(shard["logits"])
                if need_pooled:
                    pooled.append(shard["pooled"])
        import pandas as pd

        n_classes = len(first["label_names"])
        self.logits = np.concatenate(logits) if logits else np.zeros((0, n_classes), np.float32)
        self.pooled = np.concatenate(pooled) if pooled else None
        # The same text may appear twice (duplicates in the collection): its logits are equal, keep the first.
        rows = pd.Series(np.arange(len(hashes), dtype=np.int64), index=pd.Index(hashes, dtype=object))
        self._rows = rows[~rows.index.duplicated()]

    @property
    def label_names(self) -> list[str]:
        return list(self.teacher["label_names"])

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(logits [n, C], pooled [n, H] or None, found [n] bool)`` for ``texts``; rows of texts
        not found are zeros (check ``found``)."""
        from .collection import text_hash

        positions = self._rows.index.get_indexer([text_hash(t) for t in texts])
        found = positions >= 0
        rows = self._rows.to_numpy()[positions[found]]
        logits = np.zeros((len(texts), self.logits.shape[1]), np.float32)
        logits[found] = self.logits[rows]
        pooled = None
        if self.need_pooled:
            pooled = np.zeros((len(texts), self.pooled.shape[1]), np.float32)
            pooled[found] = self.pooled[rows]
        return logits, pooled, found


def _comparable(key: str, value):
    # The teacher is known by its weights and settings; the path it was loaded from may be spelled otherwise.
    if key == "teacher" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "source"}
    return value


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
