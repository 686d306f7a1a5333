"""How a teacher's classes line up with the data's: matched by name, mapped, or refused.

A pretrained classifier stores its class names in ``config.id2label``; the readers name the
data's classes from its label column (sorted). The two orders differ more often than not,
and a silent mismatch scrambles every number kd-lens shows, so the teacher's output order is
always decided here, by name, and anything that cannot be decided is refused with the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = ["LabelMismatch", "GENERIC_LABEL", "is_generic", "parse_label_map", "align_labels", "LabelFinding",
           "check_labels", "label_form", "NA_LIKE_LABELS", "rare_classes", "drop_rare_classes", "drop_classes",
           "majority_accuracy"]

# transformers names the classes of a config without id2label LABEL_0, LABEL_1, ...
GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


class LabelMismatch(ValueError):
    """The teacher's classes and the data's classes cannot be matched; the message says how to fix it."""


def is_generic(names: Sequence[str]) -> bool:
    """True when every name is a transformers placeholder (LABEL_0, LABEL_1, ...)."""
    return bool(names) and all(GENERIC_LABEL.match(str(n)) for n in names)


def parse_label_map(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"fresh=great,rotten=other"`` (teacher class = data class) as a dict; a dict passes through."""
    if not text:
        return {}
    if isinstance(text, Mapping):
        return {str(k): str(v) for k, v in text.items()}
    mapping: dict[str, str] = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        if part.count("=") != 1:
            raise LabelMismatch(f"Label map entry {part.strip()!r} is not TEACHER_CLASS=DATA_CLASS "
                                "(example: --label-map fresh=great,rotten=other).")
        teacher_name, data_name = (s.strip() for s in part.split("="))
        if not teacher_name or not data_name:
            raise LabelMismatch(f"Label map entry {part.strip()!r} has an empty side; write TEACHER_CLASS=DATA_CLASS.")
        if teacher_name in mapping:
            raise LabelMismatch(f"Label map names the teacher class {teacher_name!r} twice.")
        mapping[teacher_name] = data_name
    return mapping


def _names(names: Sequence[str]) -> str:
    return "[" + ", ".join(map(str, names)) + "]"


def align_labels(model_names: Sequence[str], data_names: Sequence[str] | None,
                 label_map: Mapping[str, str] | str | None = None, by_index: bool = False) -> list[str]:
    """The teacher's classes, in the teacher's output order, named as the data names them.

    - ``data_names`` None (no labelled data): the model's own names.
    - ``label_map`` {teacher class: data class}: applied first; every teacher class must be mapped
      and the mapped names must be the data's classes.
    - names equal as sets (in any order): the model's order, so the data must then be re-indexed
      to it (``TextDataset.with_label_order``).
    - generic names (LABEL_0, ...): matched by position only when ``by_index`` is set.
    - anything else: :class:`LabelMismatch` naming both sets and the ways out.
    """
    model_names = [str(n) for n in model_names]
    if len(set(model_names)) != len(model_names):
        raise LabelMismatch(f"The teacher's id2label repeats a class name: {_names(model_names)}; fix its config.json.")
    if data_names is None:
        return model_names
    data_names = [str(n) for n in data_names]
    mapping = parse_label_map(label_map)
    if mapping:
        unknown = [k for k in mapping if k not in model_names]
        missing = [n for n in model_names if n not in mapping]
        if unknown or missing:
            raise LabelMismatch(
                f"The label map must name each teacher class once: teacher classes {_names(model_names)}"
                + (f", not in the teacher: {_names(unknown)}" if unknown else "")
                + (f", not mapped: {_names(missing)}" if missing else "") + "."
            )
        model_names = [mapping[n] for n in model_names]
        if len(set(model_names)) != len(model_names):
            raise LabelMismatch(f"The label map sends two teacher classes to one data class: {mapping}.")
    elif by_index:
        if not is_generic(model_names):
            same = set(model_names) == set(data_names)
            raise LabelMismatch(
                f"--labels-by-index matches placeholder classes (LABEL_0, LABEL_1, ...) by position, but this teacher "
                f"names its classes {_names(model_names)}"
                + (" and they match the data's by name: drop --labels-by-index (matching by position would put "
                   "them in another order)." if same else
                   f", which are not the data's {_names(data_names)}: map them by name instead "
                   f"(--label-map {model_names[0]}=DATA_CLASS,...)."))
        if len(model_names) != len(data_names):
            raise LabelMismatch(f"The teacher has {len(model_names)} classes {_names(model_names)} but the data has "
                                f"{len(data_names)} {_names(data_names)}; matching by position needs equal counts.")
        return list(data_names)
    if set(model_names) == set(data_names):
        return model_names
    hint = ("Its classes are unnamed placeholders: say how they match the data with a label map "
            f"(--label-map {model_names[0]}={data_names[0]},...) or match them by position (--labels-by-index) "
            "if you know the order." if is_generic(model_names) and not mapping else
            "Map the teacher's classes onto the data's (--label-map TEACHER_CLASS=DATA_CLASS,...), or fine-tune "
            "the teacher on this data (--encoder: a fresh head trained on these labels).")
    raise LabelMismatch(
        f"The teacher's classes {_names(model_names)} do not match the data's classes {_names(data_names)}. {hint}"
    )


# ----------------------------------------------------------------------------- label column checks
# A label column with more distinct values than this (or than half its rows) is most likely text
# that a broken export spilled into it; the numbers are generous for real multi-class data.
MAX_CLASSES = 100
MIN_ROWS_PER_CLASS = 5
_TEXT_LIKE_LABEL_CHARS = 40


@dataclass(frozen=True)
class LabelFinding:
    """One finding of :func:`check_labels`: ``level`` is "error" (refuse to train) or "warning"."""

    level: str
    message: str

    def to_dict(self) -> dict:
        return {"level": self.level, "message": self.message}


# Label values that mean "no label" in some export or other; as a class they would be a silent wrong class.
NA_LIKE_LABELS = frozenset({"", "na", "n/a", "n.a.", "nan", "null", "none", "nil", "<na>", "#n/a"})


def label_form(name: str) -> str:
    """A label as compared for variants: case folded, spaces collapsed (``" Very  Positive"`` -> ``"very positive"``)."""
    return " ".join(str(name).casefold().split())


def _variant_findings(present: dict[str, int]) -> list[LabelFinding]:
    """Errors for label values that differ only in case or spacing, and for values that mean a missing label."""
    findings = []
    groups: dict[str, list[str]] = {}
    for name in present:
        groups.setdefault(label_form(name), []).append(name)
    for spellings in groups.values():
        if len(spellings) > 1:
            spellings.sort(key=lambda n: -present[n])
            listed = ", ".join(f"{n!r} ({present[n]} rows)" for n in spellings)
            findings.append(LabelFinding("error", (
                f"The label values {listed} differ only in case or spacing, so they would be separate classes. "
                f"Write each class one way in the file (e.g. replace {spellings[1]!r} with {spellings[0]!r}).")))
    na_like = [n for n in present if label_form(n) in NA_LIKE_LABELS]
    if na_like:
        listed = ", ".join(f"{n!r} ({present[n]} rows)" for n in na_like)
        findings.append(LabelFinding("error", (
            f"The label value(s) {listed} read as a missing label, not a class. Leave those cells empty (rows "
            "without a label are dropped and counted), or, if it is a real class, give it a name that says what "
            "it is (e.g. 'no_category').")))
    return findings


def check_labels(dataset, min_rows_per_class: int = MIN_ROWS_PER_CLASS, max_classes: int = MAX_CLASSES
                 ) -> list[LabelFinding]:
    """What is wrong with a dataset's label column before anything trains on it.

    Errors: too many distinct values, label values that read like text, fewer than two classes,
    values that differ only in case or spacing (``positive`` / ``Positive``), values that mean a
    missing label (``NA``, ``N/A``, ``null``, ``none``, ``nan``).
    Warnings: classes with fewer than ``min_rows_per_class`` rows (:func:`drop_rare_classes`
    removes them, saying so). An unlabelled dataset has no findings.
    """
    if dataset.labels is None:
        return []
    counts = dataset.label_counts()
    present = {name: n for name, n in counts.items() if n > 0}
    rows = int(sum(present.values()))
    findings: list[LabelFinding] = []
    if len(present) > max_classes or (len(present) > 20 and len(present) > rows / 2):
        findings.append(LabelFinding("error", (
            f"The label column has {len(present)} distinct values over {rows} rows: that is not a class label "
            "(text spilled into it by a broken export?). Check the file, or choose the right column with "
            "--label-column.")))
    long_names = [n for n in present if len(n) > _TEXT_LIKE_LABEL_CHARS or n.count(" ") >= 4]
    if long_names and len(long_names) * 2 >= len(present):
        findings.append(LabelFinding("error", (
            f"The label column reads like text (e.g. {long_names[0][:60]!r}); choose the column that holds the "
            "class with --label-column, or pass --label-column none to use these texts unlabelled (with a trained teacher).")))
    if not findings:
        findings += _variant_findings(present)
    if len(present) < 2:
        findings.append(LabelFinding("error", (
            f"The labels hold {len(present)} class(es) ({', '.join(present) or 'none'}); a classifier needs at "
            "least two. Check the label column, or pass --label-column none to distill from a trained teacher only.")))
    rare = {name: n for name, n in present.items() if n < min_rows_per_class}
    if rare and not any(f.level == "error" for f in findings):
        listed = ", ".join(f"{name} ({n})" for name, n in sorted(rare.items(), key=lambda kv: kv[1]))
        findings.append(LabelFinding("warning", (
            f"{len(rare)} class(es) have fewer than {min_rows_per_class} rows: {listed}. Too few to learn or to "
            "score; they are dropped (merge them into another class in the file to keep them).")))
    return findings


def rare_classes(dataset, min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> list[str]:
    """The classes of a labelled dataset with fewer than ``min_rows_per_class`` rows (absent ones included)."""
    counts = dataset.label_counts()
    return [name for name in dataset.label_names if counts.get(name, 0) < min_rows_per_class] if counts else []


def drop_rare_classes(dataset, min_rows_per_class: int = MIN_ROWS_PER_CLASS):
    """The rows of classes with at least ``min_rows_per_class`` rows, those classes' names only."""
    return drop_classes(dataset, rare_classes(dataset, min_rows_per_class))


def drop_classes(dataset, names: Sequence[str]):
    """``dataset`` without the rows (and the names) of the classes ``names``; ids re-indexed."""
    import numpy as np

    from .data import TextDataset

    kept = [name for name in dataset.label_names if name not in set(names)]
    if dataset.labels is None or len(kept) == len(dataset.label_names):
        return dataset
    new_id = np.asarray([kept.index(n) if n in kept else -2 for n in dataset.label_names] + [-1], dtype=np.int64)
    labels = new_id[dataset.labels]
    keep = labels != -2
    return TextDataset([t for t, k in zip(dataset.texts, keep) if k], labels[keep], kept, name=dataset.name,
                       report=dataset.report)


def majority_accuracy(labels) -> float:
    """Accuracy of always answering the most frequent gold class (``-1`` rows ignored)."""
    import numpy as np

    labels = np.asarray(labels)
    labels = labels[labels >= 0]
    return float(np.bincount(labels).max() / labels.size) if labels.size else float("nan")
