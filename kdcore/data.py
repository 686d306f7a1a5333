"""Texts and labels as one `TextDataset`: the records, their report, and the train/dev/test split.

The readers that build datasets from files and frames live in :mod:`kdcore.readers` (the
row checks they all end in, in :mod:`kdcore.rows`); the embedded example corpora in
:mod:`kdcore.corpora`. Their public names (``read_any``,
``read_csv``..., ``load_default_corpus``, ``default_corpus_path``, ``DEFAULT_LABEL_NAMES``)
are still importable from here: they are re-exported on first use, so this module
imports neither of them (no import cycle).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DataError", "DataReport", "TextDataset", "Corpus", "split_dataset", "normal_text", "reader_findings",
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
    near_duplicate_rows: list[int] = field(default_factory=list)
    spilled_label_rows: list[int] = field(default_factory=list)
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

    def counts(self) -> dict[str, int]:
        """What the reader found, by kind (rows read and kept, then each finding's number of rows)."""
        return {"rows read": self.rows_read, "rows kept": self.rows_kept, "empty texts": self.empty_texts,
                "empty texts with text in the label cell": len(self.spilled_label_rows),
                "rows without a label": self.missing_labels, "exact duplicates": self.duplicate_texts,
                "duplicates with another label": len(self.conflicting_duplicate_rows),
                "copies differing in case or spacing": len(self.near_duplicate_rows),
                "very long texts": self.long_texts}

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



# --------------------------------------------------------------------------- splitting
def normal_text(text: str) -> str:
    """A text as compared for copies: case folded, runs of white space made one space, ends stripped.
    Texts with the same normal form are copies of each other: they land in one split."""
    return " ".join(text.casefold().split())


def _split_codes(texts: Sequence[str], labels: np.ndarray | None, seed: int, dev_fraction: float,
                 test_fraction: float) -> np.ndarray:
    """Split of every row: 0 train, 1 dev, 2 test.

    Each distinct text is placed by the rank of a seeded hash of its content among the
    texts of its class (stratified; the class of its first occurrence), so the split
    never depends on row order and copies of a text never straddle two splits.
    Per class, round(fraction * n) distinct texts go to test and to dev. Near-copies (texts
    that differ only in case or spacing, :func:`normal_text`) then all follow the split of
    their group's representative, its smallest text; a text without near-copies keeps its own.
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
    representative: dict[str, str] = {}
    for text in first:
        form = normal_text(text)
        representative[form] = min(representative.get(form, text), text)
    return np.fromiter((code_of[representative[normal_text(t)]] for t in texts), dtype=np.int8, count=len(texts))


def check_fractions(dev_fraction: float, test_fraction: float) -> None:
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
    check_fractions(dev_fraction, test_fraction)
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


def reader_findings(report: DataReport | None) -> list[dict]:
    """The reader's warnings as findings (``{"level": "warning", "check": "reader", "message"}``), for the
    checks before a run and its report."""
    return [{"level": "warning", "check": "reader", "message": message} for message in (report.warnings if report else [])]


# --------------------------------------------------------------------------- re-exports
# Names that moved out of this module, importable from here as before. Imported on first
# use (by name, as kdcore/__init__.py does), so kdcore.data imports no reader or corpus.
_MOVED = {
    "read_any": "readers", "read_csv": "readers", "read_jsonl": "readers", "read_json": "readers",
    "read_txt": "readers", "from_pandas": "readers", "from_hf": "readers",
    "load_default_corpus": "corpora", "default_corpus_path": "corpora", "DEFAULT_LABEL_NAMES": "corpora",
}


def __getattr__(name: str):
    if name in _MOVED:
        value = getattr(importlib.import_module(f".{_MOVED[name]}", __package__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
