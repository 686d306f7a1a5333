"""The one pipeline every reader ends in: row checks, the `DataReport`, label ids.

`build_dataset` takes raw texts and raw label values from any reader (files, frames, the
embedded corpora) and applies the same rules everywhere; see :mod:`kdcore.readers` for them.
The checks run in a fixed order, each on the rows the ones before it kept: missing labels,
empty texts, long texts, duplicates. Row numbers in the warnings are 1-based.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .data import MAX_TEXT_CHARS, DataError, DataReport, TextDataset, normal_text

_INTEGER_LIKE = re.compile(r"[+-]?\d+(?:\.0*)?")
_SHOW_ROWS = 10


def _row_list(rows: Sequence[int], unit: str) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOW_ROWS])
    more = f" and {len(rows) - _SHOW_ROWS} more" if len(rows) > _SHOW_ROWS else ""
    return f"{unit}{'s' if len(rows) > 1 else ''} {shown}{more}"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


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


def _label_keys(raw_labels: Sequence[Any] | None, n_texts: int, report: DataReport, source: str,
                class_names: Sequence[str] | None, label_explicit: bool) -> list[str | None] | None:
    """Canonical label key of every row (None: no label); None when the texts are read unlabelled."""
    if raw_labels is None:
        return None
    if len(raw_labels) != n_texts:
        raise DataError(f"{source}: {n_texts} texts but {len(raw_labels)} labels.")
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
    return keys


def _drop_missing_labels(keys: list[str | None] | None, keep: np.ndarray, report: DataReport, unit: str) -> None:
    if keys is None:
        return
    report.missing_label_rows = [i + 1 for i, k in enumerate(keys) if k is None]
    if report.missing_label_rows:
        keep[[r - 1 for r in report.missing_label_rows]] = False
        report.dropped["missing label"] = len(report.missing_label_rows)
        report.warnings.append(
            f"{_plural(len(report.missing_label_rows), unit)} without a label ({_row_list(report.missing_label_rows, unit)}): "
            "dropped. Fill in their labels, or pass label_column=False to read every text unlabelled."
        )


# A label cell this long, or with this many spaces, holds text (an export that shifted its columns).
_TEXT_LIKE_LABEL_CHARS = 40


def _looks_like_text(key: str | None) -> bool:
    return key is not None and (len(key) > _TEXT_LIKE_LABEL_CHARS or key.count(" ") >= 4)


def _check_empty_and_long(texts: list[str], keys: list[str | None] | None, keep: np.ndarray, report: DataReport,
                          drop_empty: bool, max_text_chars: int, unit: str) -> None:
    empty = [i for i, t in enumerate(texts) if keep[i] and not t.strip()]
    report.empty_rows = [i + 1 for i in empty]
    if empty:
        if drop_empty:
            keep[empty] = False
            report.dropped["empty text"] = len(empty)
        action = "dropped" if drop_empty else "kept (drop_empty=False)"
        report.warnings.append(f"{_plural(len(empty), 'empty text')} ({_row_list(report.empty_rows, unit)}): {action}.")
    report.spilled_label_rows = [i + 1 for i in empty if keys is not None and _looks_like_text(keys[i])]
    if report.spilled_label_rows:
        report.warnings.append(
            f"{len(report.spilled_label_rows)} of the empty texts have text in their label cell "
            f"({_row_list(report.spilled_label_rows, unit)}): the export probably shifted those rows' columns (a "
            "delimiter or quote inside the text). Fix the quoting in the file to keep them.")

    report.long_rows = [i + 1 for i, t in enumerate(texts) if keep[i] and len(t) > max_text_chars]
    if report.long_rows:
        report.warnings.append(
            f"{len(report.long_rows)} texts are longer than {max_text_chars:,} characters "
            f"({_row_list(report.long_rows, unit)}); they are kept whole and explained window by window, "
            "which is slow. Split them if you want faster results."
        )


def _check_duplicates(texts: list[str], keys: list[str | None] | None, keep: np.ndarray, report: DataReport,
                      dedupe: bool, unit: str) -> None:
    first_seen: dict[str, int] = {}
    first_form: dict[str, int] = {}
    duplicates, conflicting, near = [], [], []
    for i, text in enumerate(texts):
        if not keep[i]:
            continue
        j = first_seen.setdefault(text, i)
        k = first_form.setdefault(normal_text(text), i)
        if j != i:
            duplicates.append(i)
            if keys is not None and keys[i] != keys[j]:
                conflicting.append(i)
        elif k != i:
            near.append(i)
    report.near_duplicate_rows = [i + 1 for i in near]
    if near:
        report.warnings.append(
            f"{_plural(len(near), unit)} repeat an earlier text except for case or spacing "
            f"({_row_list(report.near_duplicate_rows, unit)}): kept, and always put in the same split as it.")
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


def _label_ids(kept_keys: list[str], label_names: Sequence[Any] | None, class_names: Sequence[str] | None,
               report: DataReport, source: str) -> tuple[list[str], np.ndarray]:
    """(label names, label id of every kept row); warns when the column looks like no class label."""
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
    return names, ids


def build_dataset(
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
    (a Hugging Face ClassLabel); negative ids there mean "no label". The checks run in
    this order, each on the rows the ones before it kept: missing labels, empty texts,
    long texts, duplicates.
    """
    source = report.source or name or "data"
    texts = [_as_text(t, i + 1, source) for i, t in enumerate(texts)]
    report.rows_read = len(texts)
    if not texts:
        raise DataError(f"{source} holds no rows. Add one row per text (with a header row for CSV files).")
    keys = _label_keys(raw_labels, len(texts), report, source, class_names, label_explicit)

    keep = np.ones(len(texts), dtype=bool)
    _drop_missing_labels(keys, keep, report, unit)
    _check_empty_and_long(texts, keys, keep, report, drop_empty, max_text_chars, unit)
    _check_duplicates(texts, keys, keep, report, dedupe, unit)

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
    names, ids = _label_ids([keys[i] for i in kept], label_names, class_names, report, source)
    return TextDataset(final_texts, ids, names, name=name, report=report)
