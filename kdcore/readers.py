"""Texts and labels in, one `TextDataset` out: the file and frame readers and their checks.

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

The pipeline itself (row checks, report, label ids) is `kdcore.rows.build_dataset`; the
records (`TextDataset`, `DataReport`) and the split live in :mod:`kdcore.data`, the embedded
corpora in :mod:`kdcore.corpora`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .rows import build_dataset
from . import sources
from .data import (
    LABEL_COLUMN_NAMES, MAX_FILE_BYTES, MAX_TEXT_CHARS, SUPPORTED_EXTENSIONS, TEXT_COLUMN_NAMES, DataError,
    DataReport, TextDataset,
)

__all__ = ["read_csv", "read_jsonl", "read_json", "read_txt", "read_any", "from_pandas", "from_hf"]


# --------------------------------------------------------------------------- helpers
def _given(column: Any) -> bool:
    """A column was named (``False`` and ``None`` mean "no" and "find it"; 0 is a name)."""
    return column is not None and column is not False


def _match_column(columns: Sequence[Any], wanted: Any) -> Any | None:
    if wanted in columns:
        return wanted
    folded = {str(c).strip().lower(): c for c in reversed(list(columns))}
    return folded.get(str(wanted).strip().lower())


def select_columns(columns: Sequence[Any], text_column: Any, label_column: Any, name: str) -> tuple[Any, Any | None]:
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


def _default_name(name: str | None, source_name: str) -> str:
    if name is not None:
        return name
    stem = Path(source_name).name
    for ext in SUPPORTED_EXTENSIONS:
        if stem.lower().endswith(ext):
            return stem[: -len(ext)] or stem
    return stem


def _frame_to_dataset(frame: pd.DataFrame, text_column, label_column, report: DataReport, **options) -> TextDataset:
    text_col, label_col = select_columns(list(frame.columns), text_column, label_column, report.source)
    report.text_column = str(text_col)
    report.label_column = None if label_col is None else str(label_col)
    others = [c for c in frame.columns if c != text_col]
    if label_col is None and label_column is None and others:
        report.warnings.append(
            f"No label column found (looked for {', '.join(LABEL_COLUMN_NAMES)}), so the texts are unlabelled; "
            "pass label_column= to use one of " + ", ".join(repr(str(c)) for c in others) + "."
        )
    labels = None if label_col is None else frame[label_col].tolist()
    return build_dataset(
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


def _parse_table(text: str, sep: str | None, source_name: str) -> pd.DataFrame:
    """The rows of a CSV/TSV text under its header row (blank or repeated column names made unique)."""
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
    return frame


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
    source_name = sources.source_name(source, filename)
    raw = sources.read_bytes(source, max_bytes, source_name)
    text, used_encoding = sources.decode(raw, encoding, source_name)
    if not text.strip():
        raise DataError(f"{source_name} is empty. A CSV file needs a header row (e.g. text,label) and one row per text.")
    preferred = "\t" if source_name.lower().endswith(".tsv") else ","
    sep = delimiter or _sniff_delimiter(text, preferred)
    frame = _parse_table(text, sep, source_name)
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
        return build_dataset(records, None, report, unit="record", **options)
    columns: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"{source_name}: record {i + 1} is a {type(record).__name__}; each record must be an object like "
                '{"text": "...", "label": "..."}.'
            )
        columns.update(dict.fromkeys(record))
    text_col, label_col = select_columns(list(columns), text_column, label_column, source_name)
    report.text_column, report.label_column = text_col, label_col
    texts = [r.get(text_col) for r in records]
    labels = None if label_col is None else [r.get(label_col) for r in records]
    return build_dataset(texts, labels, report, unit="record", label_explicit=_given(label_column),
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
    source_name = sources.source_name(source, filename)
    text, used_encoding = sources.decode(sources.read_bytes(source, max_bytes, source_name), encoding, source_name)
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
    source_name = sources.source_name(source, filename)
    text, used_encoding = sources.decode(sources.read_bytes(source, max_bytes, source_name), encoding, source_name)
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
    source_name = sources.source_name(source, filename)
    text, used_encoding = sources.decode(sources.read_bytes(source, max_bytes, source_name), encoding, source_name)
    if not text.strip():
        raise DataError(f"{source_name} is empty. Write one text per line.")
    # Only real line breaks split texts (str.splitlines would also split on form feeds, U+2028...).
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    report = DataReport(source=source_name, format="txt", encoding=used_encoding)
    return build_dataset(lines, None, report, dedupe=dedupe, drop_empty=drop_empty, max_text_chars=max_text_chars,
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
    text_col, label_col = select_columns(list(columns), text_column, label_column, name)
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
    return build_dataset(
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
    source_name = sources.source_name(source, filename)
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

