"""A large text collection on disk (CSV / TSV / JSONL / Parquet, one file or a folder of shards),
planned into fixed-size slices and read one slice at a time, so no process ever holds it whole.

A slice is ``(file, start, stop)`` in records of that file; the same files always give the same
plan. Each kept text gets an id (the ``id_column`` value, or ``<file>:<record number>``, 1-based
as in the readers' reports) and a hash (:func:`text_hash`), by which precomputed teacher logits
are found again. Missing or empty texts are skipped and counted, never labelled as "".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from ..data import DataError
from ..readers import select_columns

__all__ = ["COLLECTION_SUFFIXES", "Collection", "Slice", "SliceTexts", "text_hash"]

COLLECTION_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def text_hash(text: str) -> str:
    """sha256 (hex) of a text's UTF-8 bytes: the key of precomputed teacher logits."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Slice:
    """Records ``[start, stop)`` of one file of the collection; ``index`` is its place in the plan."""

    index: int
    file: str  # relative to the collection root
    start: int
    stop: int
    step: int  # the plan's slice size: slices of a file start at its multiples

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}.parquet"


@dataclass
class SliceTexts:
    """The kept texts of one slice with their ids and record numbers; ``skipped`` counts the
    records without a text (missing or blank)."""

    ids: list[str]
    texts: list[str]
    records: list[int]
    skipped: int


@dataclass
class Collection:
    """The files of a collection and the columns to read (``text_column`` detected as the readers do)."""

    root: str
    files: list[str]
    text_column: str | None = None
    id_column: str | None = None

    @classmethod
    def open(cls, source, text_column: str | None = None, id_column: str | None = None) -> "Collection":
        """One file, or every file with a supported suffix in a folder (recursively, sorted)."""
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path} does not exist; give a file or a folder of .csv / .tsv / .jsonl / .parquet files.")
        if path.is_file():
            if path.suffix.lower() not in COLLECTION_SUFFIXES:
                raise DataError(f"{path.name}: {path.suffix or 'no suffix'} is not supported for labelling; use one of "
                                f"{', '.join(COLLECTION_SUFFIXES)}.")
            root, files = path.parent, [path.name]
        else:
            root = path
            files = sorted(str(p.relative_to(path)) for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in COLLECTION_SUFFIXES and not p.name.startswith("."))
            if not files:
                raise DataError(f"{path} holds no {', '.join(COLLECTION_SUFFIXES)} file; point at the folder of the shards.")
        collection = cls(str(root.resolve()), files, text_column, id_column)
        collection._resolve_columns()
        return collection

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> list[dict]:
        """Name and size of each file: a plan is only reused over the same files."""
        return [{"file": f, "bytes": (Path(self.root) / f).stat().st_size} for f in self.files]

    # -- columns ------------------------------------------------------------------------

    def _columns(self, file: str) -> list[str]:
        path = Path(self.root) / file
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if suffix == ".jsonl":
            for record in _jsonl_records(path):
                return list(record) if isinstance(record, dict) else []
            return []
        import pandas as pd

        return list(pd.read_csv(path, sep=_separator(path), nrows=0, encoding="utf-8").columns)

    def _resolve_columns(self) -> None:
        """Settle the text column on the first file and check every file has it (and the id column)."""
        first = self._columns(self.files[0])
        text_col, _ = select_columns(first, self.text_column, False, self.files[0])
        self.text_column = str(text_col)
        for file in self.files:
            columns = self._columns(file)
            for wanted in filter(None, (self.text_column, self.id_column)):
                if wanted not in columns:
                    raise DataError(f"{file} has no column {wanted!r} (its columns: {', '.join(map(str, columns))}); "
                                    "every file of a collection needs the same columns.")

    # -- plan ---------------------------------------------------------------------------

    def count_records(self, file: str) -> int:
        path = Path(self.root) / file
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if suffix == ".jsonl":
            return sum(1 for _ in _jsonl_records(path))
        return sum(len(chunk) for chunk in self._csv_chunks(path, 100_000))

    def plan(self, slice_size: int) -> list[Slice]:
        """Slices of at most ``slice_size`` records, file by file, in file order."""
        if slice_size < 1:
            raise ValueError(f"slice size must be >= 1, got {slice_size}.")
        slices = []
        for file in self.files:
            n = self.count_records(file)
            for start in range(0, n, slice_size):
                slices.append(Slice(len(slices), file, start, min(start + slice_size, n), slice_size))
        return slices

    # -- read ---------------------------------------------------------------------------

    def read(self, piece: Slice) -> SliceTexts:
        """The texts of one slice (kept ones only), with their ids and 1-based record numbers."""
        path = Path(self.root) / piece.file
        values, ids = self._read_columns(path, piece)
        kept = SliceTexts([], [], [], 0)
        for offset, value in enumerate(values):
            record = piece.start + offset + 1
            if value is None or (isinstance(value, float) and value != value):  # None or NaN: missing
                kept.skipped += 1
                continue
            if not isinstance(value, str):
                raise DataError(f"{piece.file} record {record}: the text is a {type(value).__name__}, not a string; "
                                f"fix the column {self.text_column!r}.")
            if not value.strip():
                kept.skipped += 1
                continue
            kept.texts.append(value)
            kept.records.append(record)
            kept.ids.append(str(ids[offset]) if ids is not None else f"{piece.file}:{record}")
        return kept

    def iter_slices(self, slices) -> Iterator[tuple[Slice, SliceTexts]]:
        for piece in slices:
            yield piece, self.read(piece)

    def _read_columns(self, path: Path, piece: Slice):
        suffix = path.suffix.lower()
        wanted = [self.text_column] + ([self.id_column] if self.id_column else [])
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            # Only the row groups that overlap the slice are read.
            parquet = pq.ParquetFile(path)
            groups, first_row, row = [], None, 0
            for group in range(parquet.metadata.num_row_groups):
                rows = parquet.metadata.row_group(group).num_rows
                if row < piece.stop and row + rows > piece.start:
                    groups.append(group)
                    first_row = row if first_row is None else first_row
                row += rows
            table = parquet.read_row_groups(groups, columns=wanted) if groups else pq.read_table(path, columns=wanted)
            table = table.slice(piece.start - (first_row or 0), piece.stop - piece.start)
            columns = [table.column(name).to_pylist() for name in wanted]
        elif suffix == ".jsonl":
            records = []
            for number, record in enumerate(_jsonl_records(path)):
                if number >= piece.stop:
                    break
                if number >= piece.start:
                    if not isinstance(record, dict):
                        raise DataError(f"{path.name} record {number + 1} is not a JSON object; write one object a line.")
                    records.append(record)
            columns = [[r.get(name) for r in records] for name in wanted]
        else:
            import pandas as pd

            # Slices start at multiples of the plan's slice size: read the file in chunks of that size.
            frame = None
            for number, chunk in enumerate(self._csv_chunks(path, piece.step)):
                if number == piece.start // piece.step:
                    frame = chunk
                    break
            if frame is None:
                frame = pd.DataFrame({name: [] for name in wanted})
            columns = [frame[name].tolist() for name in wanted]
        if len(columns[0]) != piece.stop - piece.start:
            raise DataError(f"{path.name} changed since it was planned (records {piece.start}-{piece.stop} are gone); "
                            "label it into a new folder.")
        return columns[0], (columns[1] if self.id_column else None)

    def _csv_chunks(self, path: Path, size: int):
        import pandas as pd

        usecols = [self.text_column] + ([self.id_column] if self.id_column else []) if self.text_column else None
        # keep_default_na=False: the text "NA" is a text; only an empty field is missing.
        return pd.read_csv(path, sep=_separator(path), usecols=usecols, dtype=str, keep_default_na=False,
                           na_values=[""], encoding="utf-8", chunksize=size)


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _jsonl_records(path: Path):
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path.name} line {line_number} is not valid JSON ({err.msg}); fix or remove it.") from None
