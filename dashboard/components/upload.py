"""Uploaded files: size limit, column choices, and reading through kdcore's readers.

All parsing rules (encodings, binary files, missing columns, labels) are kdcore.data's;
this module only enforces the server's upload limit up front and lists a file's columns
so the user can pick the text and label columns.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import streamlit as st

__all__ = ["UPLOAD_TYPES", "DETECT", "NO_LABELS", "upload_limit_mb", "check_size", "peek_columns", "read_upload"]

UPLOAD_TYPES = ["csv", "tsv", "jsonl", "json", "txt"]
DETECT = "(detect)"
NO_LABELS = "(no labels)"
_DEFAULT_LIMIT_MB = 50


def upload_limit_mb() -> int:
    """The server's upload limit (``server.maxUploadSize`` in .streamlit/config.toml), in MB."""
    try:
        return int(st.get_option("server.maxUploadSize"))
    except (RuntimeError, ValueError, TypeError):
        return _DEFAULT_LIMIT_MB


def check_size(size: int, limit_mb: int | None = None) -> str | None:
    """An error message when ``size`` bytes exceed the limit, else None."""
    limit_mb = upload_limit_mb() if limit_mb is None else limit_mb
    if size > limit_mb * 1024 * 1024:
        return (f"The file is {size / 1024 / 1024:.1f} MB, over the {limit_mb} MB upload limit. Upload a sample of "
                "it, split it, or raise server.maxUploadSize in .streamlit/config.toml.")
    return None


def peek_columns(data: bytes, filename: str) -> list[str]:
    """Column names of a CSV/TSV header or of the first JSON Lines record ([] when unknown).

    Only a hint for the column pickers: the real reading (and every error message) is
    kdcore's.
    """
    suffix = Path(filename).suffix.lower()
    head = data[:65536]
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []
    if "\x00" in text:
        return []
    if suffix in (".csv", ".tsv"):
        first = text.splitlines()[0] if text.splitlines() else ""
        candidates = ["\t"] if suffix == ".tsv" else [",", ";", "\t", "|"]
        best: list[str] = []
        for delimiter in candidates:
            fields = next(csv.reader([first], delimiter=delimiter), [])
            if len(fields) > len(best):
                best = fields
        return [f for f in best if f.strip()]
    if suffix == ".jsonl":
        for line in text.splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    return []
                return [str(k) for k in record] if isinstance(record, dict) else []
    return []


def read_upload(data: bytes, filename: str, text_column: str = DETECT, label_column: str = DETECT,
                limit_mb: int | None = None):
    """A kdcore TextDataset from uploaded bytes; raises kdcore.data.DataError (a ValueError)
    with a message for the user when the file cannot be used."""
    from kdcore.data import DataError
    from kdcore.readers import read_any

    too_big = check_size(len(data), limit_mb)
    if too_big:
        raise DataError(too_big)
    options: dict = {}
    if Path(filename).suffix.lower() != ".txt":
        if text_column and text_column != DETECT:
            options["text_column"] = text_column
        if label_column == NO_LABELS:
            options["label_column"] = False
        elif label_column and label_column != DETECT:
            options["label_column"] = label_column
    dataset = read_any(data, filename=filename, **options)
    if len(dataset) == 0:
        raise DataError(f"{filename} holds no text after reading; check the text column and that rows are not empty.")
    return dataset
