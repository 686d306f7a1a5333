"""Raw content in, decoded text out: the bytes of a path, an upload or an open file, read within a size
limit and decoded strictly (UTF-8 with or without BOM, UTF-16 with a BOM, or the encoding the caller
names), with a message that says how to re-save a file that is anything else. Shared by the readers of
texts (:mod:`kdcore.readers`) and of tagged words (:mod:`kdcore.tasks.token.data`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .data import DataError

__all__ = ["human_bytes", "source_name", "read_bytes", "decode"]


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def source_name(source: Any, filename: str | None = None) -> str:
    if filename:
        return str(filename)
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return str(getattr(source, "name", "") or "upload")


def read_bytes(source: Any, max_bytes: int, name: str) -> bytes | str:
    """Raw content of a path, bytes or file-like, refusing anything over ``max_bytes``."""
    too_big = (
        f"{name} is larger than the {human_bytes(max_bytes)} limit. Split it into smaller files, "
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
            raise DataError(too_big.replace(" is larger", f" ({human_bytes(path.stat().st_size)}) is larger"))
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


def decode(data: bytes | str, encoding: str | None, name: str) -> tuple[str, str]:
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
