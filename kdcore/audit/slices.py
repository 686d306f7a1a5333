"""Slices of an evaluation split: per group of texts, how the teacher does and how far each student stands in.

A *slice* is a named set of texts of one split (a boolean mask over it). For each slice:

- ``n``: its texts;
- ``accuracy``: the teacher's agreement with the gold labels there (when the split has them);
- per student, ``fidelity`` (agreement with the teacher's class), ``accuracy`` (with the gold class) and
  ``coverage``: the share of the slice whose stand-in score is at or above the run's dev threshold
  (:meth:`kdcore.trust.StudentTrust.likely`). Every share comes with its Wilson 95% interval
  (:func:`kdcore.intervals.wilson`).

Automatic slices are built from what every run has (gold and teacher class, text length, teacher confidence,
negation and contrast words, texts longer than one teacher window) and from any extra column the uploaded file
kept; the user's own are a keyword, a regular expression or a column value. :func:`worst_slices` searches the
slices and their pairwise conjunctions (SliceLine-style, minimum support) for those where a student stands in
worst, ranked by the lower bound of the fidelity gap: the student's fidelity on the whole split minus the upper
Wilson bound of its fidelity on the slice (a gap that is there even at the slice's best plausible fidelity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..intervals import wilson
from ..words import split_words

__all__ = ["AuditData", "Slice", "NEGATION_PATTERN", "CONTRAST_PATTERN", "automatic_slices", "user_slice",
           "slice_metrics", "slice_table", "text_mask", "worst_slices", "MIN_SUPPORT", "MAX_COLUMN_VALUES",
           "MAX_PATTERN"]

NEGATION_PATTERN = re.compile(r"\b(?:not|no|never|nothing|nobody|none|neither|nor|without|hardly|cannot)\b|n't\b",
                              re.IGNORECASE)
CONTRAST_PATTERN = re.compile(r"\b(?:but|however|although|though|yet|despite|whereas|nevertheless|nonetheless)\b",
                              re.IGNORECASE)
MIN_SUPPORT = 20          # texts a slice (or a conjunction of two) needs to be ranked among the worst
MAX_COLUMN_VALUES = 20    # an extra column with more distinct values is not a grouping column
MAX_PATTERN = 500         # characters of a user's regular expression
CONFIDENCE_BINS = (0.6, 0.8, 0.95)


@dataclass
class AuditData:
    """What slices are measured on, one entry per text of a split.

    ``students`` maps a student's name to its predicted classes; ``stand_in`` to whether each text is at or
    above its dev threshold (absent for a run without a trust record). ``windows`` is the number of teacher
    windows of each text (None when unknown); ``columns`` any extra column of the uploaded file."""

    texts: list
    label_names: list
    gold: np.ndarray | None
    teacher_proba: np.ndarray
    students: dict
    stand_in: dict = field(default_factory=dict)
    windows: np.ndarray | None = None
    columns: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.texts)
        self.teacher_proba = np.asarray(self.teacher_proba, dtype=np.float64)
        if self.teacher_proba.shape[0] != n:
            raise ValueError(f"{self.teacher_proba.shape[0]} teacher rows for {n} texts.")
        for name, values in [*self.students.items(), *self.stand_in.items(), *self.columns.items()]:
            if len(values) != n:
                raise ValueError(f"{name!r} has {len(values)} values for {n} texts.")

    @property
    def teacher_pred(self) -> np.ndarray:
        return self.teacher_proba.argmax(axis=1)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Slice:
    """A named set of texts: ``group`` is the feature it comes from (two slices of one group never combine)."""

    name: str
    group: str
    mask: np.ndarray


def _share(mask: np.ndarray, hits: np.ndarray) -> dict:
    n, k = int(mask.sum()), int((hits & mask).sum())
    low, high = wilson(k, n)
    return {"value": k / n if n else None, "ci": [low, high] if n else [None, None], "k": k, "n": n}


def slice_metrics(data: AuditData, mask) -> dict:
    """n, the teacher's accuracy, and per student fidelity, accuracy and coverage on the texts of ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    teacher = data.teacher_pred
    out = {"n": int(mask.sum()), "share": float(mask.mean()) if len(mask) else 0.0,
           "accuracy": _share(mask, teacher == data.gold) if data.gold is not None else None, "students": {}}
    for name, pred in data.students.items():
        pred = np.asarray(pred)
        entry = {"fidelity": _share(mask, pred == teacher),
                 "accuracy": _share(mask, pred == data.gold) if data.gold is not None else None,
                 "coverage": _share(mask, np.asarray(data.stand_in[name], bool)) if name in data.stand_in else None}
        out["students"][name] = entry
    return out


def _bins(values: np.ndarray, edges: Sequence[float], what: str, fmt: str) -> list[tuple[str, np.ndarray]]:
    out, low = [], None
    for high in [*edges, None]:
        mask = np.ones(values.shape, bool) if low is None else values >= low
        if high is not None:
            mask &= values < high
        lo, hi = ("" if low is None else format(low, fmt)), ("" if high is None else format(high, fmt))
        label = f"{what} < {hi}" if low is None else (f"{what} ≥ {lo}" if high is None else f"{what} {lo}–{hi}")
        out.append((label, mask))
        low = high
    return out


def _length_edges(lengths: np.ndarray) -> list[float]:
    """Tertile edges of the word counts (distinct, so every bin can hold texts)."""
    if lengths.size == 0:
        return []
    return sorted({float(np.ceil(q)) for q in np.quantile(lengths, [1 / 3, 2 / 3])} - {float(lengths.min())})


def automatic_slices(data: AuditData) -> list[Slice]:
    """The slices every run can be cut into (see the module docstring); empty slices are left out."""
    names, teacher = data.label_names, data.teacher_pred
    out: list[Slice] = []
    if data.gold is not None:
        out += [Slice(f"gold class = {c}", "gold class", data.gold == i) for i, c in enumerate(names)]
        out.append(Slice("teacher disagrees with gold", "gold vs teacher", teacher != data.gold))
    out += [Slice(f"teacher class = {c}", "teacher class", teacher == i) for i, c in enumerate(names)]
    lengths = np.array([len(split_words(t)) for t in data.texts], dtype=np.float64)
    out += [Slice(label, "length", m) for label, m in _bins(lengths, _length_edges(lengths), "words", ".0f")]
    confidence = data.teacher_proba.max(axis=1)
    out += [Slice(label, "teacher confidence", m)
            for label, m in _bins(confidence, CONFIDENCE_BINS, "teacher p(class)", ".2f")]
    out.append(Slice("has a negation word", "negation", text_mask(data.texts, "negation", "")))
    out.append(Slice("has a contrast word", "contrast", text_mask(data.texts, "contrast", "")))
    if data.windows is not None:
        out.append(Slice("longer than one teacher window", "long text", np.asarray(data.windows) > 1))
    for column, values in data.columns.items():
        distinct = sorted({str(v) for v in values if v is not None})
        if 1 < len(distinct) <= MAX_COLUMN_VALUES:
            out += [Slice(f"{column} = {v}", f"column {column}",
                          np.array([x is not None and str(x) == v for x in values], bool)) for v in distinct]
    return [s for s in out if s.mask.any()]


def text_mask(texts: Sequence[str], kind: str, value: str) -> np.ndarray:
    """Which ``texts`` hold ``value`` as a whole word (``kind="keyword"``, any case) or match the regular
    expression ``value`` (``"regex"``); also the negation and contrast slices (``"negation"``, ``"contrast"``,
    no value)."""
    if kind in ("negation", "contrast"):
        pattern = NEGATION_PATTERN if kind == "negation" else CONTRAST_PATTERN
        return np.array([bool(pattern.search(t)) for t in texts], bool)
    value = str(value)
    if not value.strip():
        raise ValueError("A slice needs a keyword, a regular expression or a column value; the value is empty.")
    if kind == "keyword":
        pattern = re.compile(rf"(?<!\w){re.escape(value.strip())}(?!\w)", re.IGNORECASE)
    elif kind == "regex":
        if len(value) > MAX_PATTERN:
            raise ValueError(f"The regular expression is {len(value)} characters long; keep it under {MAX_PATTERN}.")
        try:
            pattern = re.compile(value)
        except re.error as err:
            raise ValueError(f"{value!r} is not a valid regular expression ({err}); fix it and try again.") from err
    else:
        raise ValueError(f"Unknown slice kind {kind!r}; use 'keyword', 'regex' or 'column'.")
    return np.array([bool(pattern.search(t)) for t in texts], bool)


def user_slice(data: AuditData, kind: str, value: str, column: str | None = None, name: str | None = None) -> Slice:
    """The user's own slice: the texts containing ``value`` as a whole word (``kind="keyword"``, any case), matching
    the regular expression ``value`` (``"regex"``), or whose ``column`` equals ``value`` (``"column"``)."""
    if kind == "column":
        if not str(value).strip():
            raise ValueError("A slice needs a keyword, a regular expression or a column value; the value is empty.")
        if column not in data.columns:
            known = ", ".join(map(repr, data.columns)) or "none"
            raise ValueError(f"The split has no column {column!r}; its extra columns: {known}.")
        mask = np.array([v is not None and str(v) == str(value) for v in data.columns[column]], bool)
        return Slice(name or f"{column} = {value}", f"column {column}", mask)
    return Slice(name or f"{kind}: {value}", f"user {kind}", text_mask(data.texts, kind, value))


def slice_table(data: AuditData, slices: Sequence[Slice]) -> list[dict]:
    """One record per slice: its name, group and :func:`slice_metrics`."""
    return [{"name": s.name, "group": s.group, **slice_metrics(data, s.mask)} for s in slices]


def _gap_rows(data: AuditData, student: str, masks: np.ndarray, names: list, groups: list) -> list[dict]:
    agree = np.asarray(data.students[student]) == data.teacher_pred
    overall = float(agree.mean())
    n = masks.sum(axis=1)
    k = (masks & agree).sum(axis=1)
    rows = []
    for i in range(len(names)):
        low, high = wilson(int(k[i]), int(n[i]))
        rows.append({"slice": names[i], "groups": groups[i], "n": int(n[i]), "fidelity": float(k[i] / n[i]),
                     "ci": [low, high], "overall": overall, "gap": overall - float(k[i] / n[i]),
                     "gap_lower": overall - high})
    return rows


def _distinct(masks: list, names: list, groups: list) -> tuple[list, list, list]:
    """One slice per set of texts: of the slices naming the identical texts, the simplest name is kept (fewest
    parts, then the shortest, then the first in alphabetical order), in the order the kept ones came."""
    best: dict[bytes, int] = {}
    for i, mask in enumerate(masks):
        key = np.packbits(np.asarray(mask, bool)).tobytes()
        j = best.get(key)
        if j is None or (len(groups[i]), len(names[i]), names[i]) < (len(groups[j]), len(names[j]), names[j]):
            best[key] = i
    kept = sorted(best.values())
    return [masks[i] for i in kept], [names[i] for i in kept], [groups[i] for i in kept]


def worst_slices(data: AuditData, student: str, slices: Sequence[Slice], min_support: int = MIN_SUPPORT,
                 top: int = 10) -> list[dict]:
    """The slices and conjunctions of two slices of different groups (each with at least ``min_support``
    texts, and a conjunction only where it differs from both its parts) where ``student`` agrees with the
    teacher least, ranked by the lower bound of the fidelity gap (largest first); only positive ones. Slices
    that name the identical texts are listed once, under the simplest name."""
    if student not in data.students:
        raise ValueError(f"No student {student!r}; the run has {', '.join(data.students)}.")
    base = [s for s in slices if s.mask.sum() >= min_support]
    masks, names, groups = [s.mask for s in base], [s.name for s in base], [[s.group] for s in base]
    counts = {i: int(s.mask.sum()) for i, s in enumerate(base)}
    for i in range(len(base)):
        for j in range(i + 1, len(base)):
            if base[i].group == base[j].group:
                continue
            both = base[i].mask & base[j].mask
            size = int(both.sum())
            if size >= min_support and size not in (counts[i], counts[j]):
                masks.append(both)
                names.append(f"{base[i].name} & {base[j].name}")
                groups.append([base[i].group, base[j].group])
    if not masks:
        return []
    masks, names, groups = _distinct(masks, names, groups)
    rows = _gap_rows(data, student, np.stack(masks), names, groups)
    rows = [r for r in rows if r["gap_lower"] > 0]
    return sorted(rows, key=lambda r: (-r["gap_lower"], r["slice"]))[:top]
