"""Counterfactual probes: edit every text of a split in one way and see whose decision flips.

A probe maps a text to an edited text (or None where it does not apply: no word of a swap list, no verb to
negate). Each model (anything with ``predict_proba(texts)``: the teacher, a student, a test's fake) is run on
the original and the edited texts where the probe applies, and for each model the probe reports:

- ``flip_rate``: the share of edited texts whose top class differs from the original's, with its Wilson 95%
  interval (:func:`kdcore.intervals.wilson`);
- ``mean_change``: the mean change of the probability of the model's original class (edited minus original),
  with a bootstrap 95% interval (:func:`kdcore.intervals.bootstrap_mean`);
- per student, the texts that flip the teacher but not the student (where reading the student would mislead),
  with the words the edit changed.

Probes: :func:`negation_probe` (``not`` after the first auxiliary verb), :func:`swap_probe` (a word-swap list,
both directions at once, whole words, case kept; :data:`DEFAULT_SWAPS` is a small list of identity terms) and
:func:`deletion_probe` (a model's own top word of each text, found by deleting each word in turn).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..intervals import bootstrap_mean, wilson
from ..words import split_words

__all__ = ["Probe", "DEFAULT_SWAPS", "AUXILIARIES", "negate", "swap_words", "read_swap_list", "negation_probe",
           "swap_probe", "deletion_probe", "run_probe", "MAX_EXAMPLES", "MAX_WORDS"]

DEFAULT_SWAPS = (
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("father", "mother"), ("son", "daughter"), ("husband", "wife"), ("brother", "sister"),
    ("john", "mary"), ("james", "maria"), ("michael", "aisha"), ("david", "mei"),
    ("american", "mexican"), ("british", "indian"), ("french", "chinese"), ("german", "nigerian"),
    ("christian", "muslim"),
)
AUXILIARIES = ("is", "was", "are", "were", "am", "be", "been", "does", "do", "did", "has", "have", "had",
               "can", "will", "would", "could", "should", "may", "might", "must")
_AUX = re.compile(r"\b(" + "|".join(AUXILIARIES) + r")\b(?!['’])(?!\s+not\b)", re.IGNORECASE)  # not "can't"
MAX_EXAMPLES = 20   # texts that flip the teacher but not a student, kept per probe and student
MAX_WORDS = 40      # distinct words of a text tried by the deletion probe


@dataclass
class Probe:
    """A named edit: ``edit(text)`` returns (edited text, words changed) or None where it does not apply."""

    name: str
    edit: Callable[[str], "tuple[str, list[str]] | None"]
    description: str = ""


def negate(text: str):
    """``text`` with ``not`` after its first auxiliary verb (None when it has none)."""
    match = _AUX.search(text)
    if match is None:
        return None
    return text[:match.end()] + " not" + text[match.end():], [f"{match.group(0)} → {match.group(0)} not"]


def _keep_case(word: str, replacement: str) -> str:
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    return replacement.capitalize() if word[:1].isupper() else replacement


def swap_words(text: str, pairs: Sequence[tuple[str, str]]):
    """``text`` with every whole word of ``pairs`` replaced by its partner, both ways at once (a word in two
    pairs takes the first); None when no word of the list occurs."""
    table: dict[str, str] = {}
    for a, b in pairs:
        table.setdefault(a.lower(), b.lower())
        table.setdefault(b.lower(), a.lower())
    if not table:
        return None
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(table, key=len, reverse=True))) + r")(?!\w)",
                         re.IGNORECASE)
    changed: list[str] = []

    def replace(match):
        word = match.group(0)
        new = _keep_case(word, table[word.lower()])
        changed.append(f"{word} → {new}")
        return new

    edited = pattern.sub(replace, text)
    return (edited, changed) if changed else None


def read_swap_list(path: str | Path) -> list[tuple[str, str]]:
    """Word pairs from a text file, one pair a line (``he,she`` or ``he she``; ``#`` starts a comment)."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in re.split(r"[,\t]|\s+", line) if p.strip()]
        if len(parts) != 2:
            raise ValueError(f"{path}, line {number}: write two words a line, e.g. 'he,she'; got {line!r}.")
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise ValueError(f"{path} holds no word pairs; write one pair a line, e.g. 'he,she'.")
    return pairs


def negation_probe() -> Probe:
    return Probe("negation", negate, "'not' inserted after the first auxiliary verb")


def swap_probe(pairs: Sequence[tuple[str, str]] = DEFAULT_SWAPS, name: str = "swap") -> Probe:
    pairs = list(pairs)
    return Probe(name, lambda text: swap_words(text, pairs), f"word swaps ({len(pairs)} pairs, both ways)")


def _drop_span(text: str, start: int, end: int) -> str:
    return re.sub(r"\s{2,}", " ", text[:start] + text[end:]).strip()


def deletion_probe(model, texts: Sequence[str], name: str) -> Probe:
    """Deletion of the word of each text whose removal lowers ``model``'s probability of its own class most
    (each distinct word, up to :data:`MAX_WORDS` a text, deleted everywhere in turn; one batch for all texts)."""
    candidates, owners = [], []
    for i, text in enumerate(texts):
        seen: dict[str, list] = {}
        for word in split_words(text):
            if any(ch.isalnum() for ch in word.text):
                seen.setdefault(word.text, []).append(word)
        for word, spans in list(seen.items())[:MAX_WORDS]:
            edited = text
            for span in sorted(spans, key=lambda w: -w.start):
                edited = _drop_span(edited, span.start, span.end)
            candidates.append((word, edited))
            owners.append(i)
    chosen: dict[str, tuple[str, list[str]]] = {}
    if candidates:
        base = np.asarray(model.predict_proba(list(texts)))
        edited = np.asarray(model.predict_proba([c[1] for c in candidates]))
        owners_arr = np.asarray(owners)
        drop = base[owners_arr, base.argmax(axis=1)[owners_arr]] - edited[np.arange(len(owners)),
                                                                          base.argmax(axis=1)[owners_arr]]
        best: dict[int, int] = {}
        for row, owner in enumerate(owners):
            if owner not in best or drop[row] > drop[best[owner]]:
                best[owner] = row
        chosen = {texts[o]: (candidates[r][1], [f"−{candidates[r][0]}"]) for o, r in best.items()}
    return Probe(f"delete top word of {name}", chosen.get, f"{name}'s most decisive word of each text deleted")


def run_probe(probe: Probe, models: Mapping[str, object], texts: Sequence[str], label_names: Sequence[str],
              teacher: str = "teacher") -> dict:
    """Flip rates and mean probability changes of every model of ``models`` under ``probe``, and per other
    model the texts that flip ``teacher`` but not it (see the module docstring)."""
    if teacher not in models:
        raise ValueError(f"The probe compares models with {teacher!r}, which is not among {', '.join(models)}.")
    edits = [(i, probe.edit(t)) for i, t in enumerate(texts)]
    edits = [(i, e) for i, e in edits if e is not None and e[0] != texts[i]]
    out = {"probe": probe.name, "description": probe.description, "n_texts": len(texts), "n_applied": len(edits),
           "models": {}, "teacher_only_flips": {}}
    if not edits:
        return out
    originals = [texts[i] for i, _ in edits]
    edited = [e[0] for _, e in edits]
    flips = {}
    for name, model in models.items():
        before, after = np.asarray(model.predict_proba(originals)), np.asarray(model.predict_proba(edited))
        cls = before.argmax(axis=1)
        flipped = after.argmax(axis=1) != cls
        change = after[np.arange(len(cls)), cls] - before[np.arange(len(cls)), cls]
        low, high = wilson(int(flipped.sum()), len(flipped))
        out["models"][name] = {"flip_rate": float(flipped.mean()), "flip_ci": [low, high],
                               "flips": int(flipped.sum()), "mean_change": float(change.mean()),
                               "change_ci": list(bootstrap_mean(change))}
        flips[name] = (flipped, cls, after.argmax(axis=1))
    t_flip, t_before, t_after = flips[teacher]
    for name in models:
        if name == teacher:
            continue
        s_flip, s_before, s_after = flips[name]
        rows = np.flatnonzero(t_flip & ~s_flip)
        out["teacher_only_flips"][name] = {"count": int(rows.size), "examples": [
            {"text": originals[r], "edited": edited[r], "words": edits[r][1][1],
             "teacher": [label_names[t_before[r]], label_names[t_after[r]]],
             "student": [label_names[s_before[r]], label_names[s_after[r]]]} for r in rows[:MAX_EXAMPLES]]}
    return out
