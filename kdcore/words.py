"""Words with character offsets: the unit on which teacher and students are compared.

A *word* is what the teacher tokenizer's pre-tokenizer (BERT's basic tokenizer) makes of
the text: runs of non-space, non-punctuation characters; every punctuation character on
its own; every CJK ideograph on its own. Offsets index the original Python string.

`split_words` reproduces BERT's normaliser + pre-tokenizer with one compiled regular
expression, so students can featurize thousands of texts a second without a tokenizer;
`tests/test_words.py` checks it against the real tokenizer's ``word_ids``.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

__all__ = ["Word", "split_words", "normalize_word", "word_pattern"]

_CJK_RANGES = [
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
]


@dataclass(frozen=True)
class Word:
    """One word of a text: its normalised form and its span [start, end) in the text."""

    text: str
    start: int
    end: int


def _ranges_to_class(codepoints: list[int]) -> str:
    """Turn sorted code points into a regex character class body of ranges."""
    parts, start, prev = [], None, None
    for cp in codepoints:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            parts.append((start, prev))
            start = prev = cp
    if start is not None:
        parts.append((start, prev))
    out = []
    for a, b in parts:
        out.append(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}")
    return "".join(out)


@functools.lru_cache(maxsize=1)
def word_pattern() -> re.Pattern[str]:
    """The compiled pattern for one word (built once; scans Unicode for punctuation)."""
    punct = []
    for cp in range(sys.maxunicode + 1):
        if (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
                or unicodedata.category(chr(cp)).startswith("P")):
            punct.append(cp)
    cjk = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in _CJK_RANGES)
    punct_class = _ranges_to_class(punct)
    return re.compile(rf"[{cjk}]|[{punct_class}]|[^\s{punct_class}{cjk}]+")


def _is_dropped(ch: str) -> bool:
    # BERT's clean_text removes NUL, U+FFFD and control/format characters (but not \t\n\r).
    if ch in "\t\n\r":
        return False
    return ord(ch) == 0 or ord(ch) == 0xFFFD or unicodedata.category(ch) in ("Cc", "Cf")


@functools.lru_cache(maxsize=200_000)
def normalize_word(raw: str, lowercase: bool = True) -> str:
    """Lower-case and strip accents as an uncased BERT tokenizer does."""
    if lowercase:
        raw = raw.lower()
        raw = "".join(c for c in unicodedata.normalize("NFD", raw) if unicodedata.category(c) != "Mn")
    if not raw.isprintable():
        raw = "".join(c for c in raw if not _is_dropped(c))
    return raw


def split_words(text: str, lowercase: bool = True) -> list[Word]:
    """Split ``text`` into words with character offsets, as BERT's pre-tokenizer does.

    >>> [(w.text, w.start, w.end) for w in split_words("Don't!")]
    [('don', 0, 3), ("'", 3, 4), ('t', 4, 5), ('!', 5, 6)]
    """
    words = []
    for match in word_pattern().finditer(text):
        norm = normalize_word(match.group(), lowercase)
        if norm:
            words.append(Word(norm, match.start(), match.end()))
    return words
