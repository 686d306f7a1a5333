"""What the screens and the report show of a token run, computed here (the dashboard only displays):
every model's tags on a split, per-sentence disagreements with the teacher, the top window features per
entity type, and entity highlights as escaped HTML."""

from __future__ import annotations

import html
from typing import Sequence

from .bio import entities
from .metrics import model_decode

__all__ = ["model_tags", "disagreement_table", "top_features_by_type", "transition_table", "entity_html", "entity_choices",
           "entity_legend_html", "TYPE_COLOURS"]

# One colour per entity type, in the order of the run's types (cycled past ten).
TYPE_COLOURS = ("#f4a261", "#8ecae6", "#b5e48c", "#ffafcc", "#cdb4db", "#ffd166", "#90e0ef", "#e9c46a",
                "#a8dadc", "#f7b267")


def model_tags(models: dict, sentences: Sequence[Sequence[str]]) -> dict[str, list[list[str]]]:
    """``{name: BIO tags of each sentence}`` for the teacher and every student (one decoding for all; a CRF
    student through its own, :func:`~kdcore.tasks.token.metrics.model_decode`)."""
    return {name: model_decode(model, sentences) for name, model in models.items()}


def disagreement_table(sentences: Sequence[Sequence[str]], tags: dict[str, list[list[str]]], gold=None):
    """One row per sentence: its text, and per student the words whose tag differs from the teacher's and the
    entities (exact span and type) the student misses or adds; ``total`` sums the entity mismatches over the
    students. Sorted by ``total``, most disagreement first."""
    import pandas as pd

    teacher = tags["teacher"]
    rows = []
    for i, words in enumerate(sentences):
        reference = set(entities(teacher[i]))
        row = {"sentence": i, "text": " ".join(words), "teacher entities": _describe(words, sorted(reference, key=lambda e: e[1]))}
        if gold is not None:
            row["gold entities"] = _describe(words, entities(gold[i]))
        total = 0
        for name, model_tags_ in tags.items():
            if name == "teacher":
                continue
            spans = set(entities(model_tags_[i]))
            mismatched = len(reference ^ spans)
            row[f"{name}: words differing"] = sum(a != b for a, b in zip(model_tags_[i], teacher[i]))
            row[f"{name}: entity mismatches"] = mismatched
            total += mismatched
        row["total"] = total
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["total", "sentence"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _describe(words, spans) -> str:
    return "; ".join(f"{' '.join(words[a:b])} [{kind}]" for kind, a, b in spans)


def top_features_by_type(student, sentences: Sequence[Sequence[str]], kind: str, top: int = 15,
                         max_words: int = 5000):
    """The window features that push a word most towards ``B-kind`` and ``I-kind``: the student's global
    importance (mean gradient x value over the words that have the feature; for the linear student exactly
    its weight; for a CRF student its emission terms, teacher readings as their mean value x weight) on the
    words of ``sentences``. Columns ``tag, feature, importance, words``."""
    import pandas as pd

    from ...students.window import word_slots

    table = student.global_importance(word_slots(sentences), max_texts=max_words)
    out = []
    for prefix in ("B", "I"):
        tag = f"{prefix}-{kind}"
        rows = table[table["class"] == tag].nlargest(top, "importance")
        out.append(pd.DataFrame({"tag": tag, "feature": rows["feature"], "importance": rows["importance"],
                                 "words": rows["n_texts"]}))
    return pd.concat(out, ignore_index=True)


def transition_table(student):
    """A structured student's tag-transition scores (rows: the previous tag or ``<start>``, columns: the next tag
    or ``<end>``; forbidden steps ``-inf``, a DataFrame), or None for a student that tags each word alone."""
    transitions = getattr(student, "transitions", None)
    return transitions() if callable(transitions) else None


def _colour(kind: str, types: Sequence[str]) -> str:
    return TYPE_COLOURS[list(types).index(kind) % len(TYPE_COLOURS)] if kind in types else "#dddddd"


def _badge(p: float | None) -> str:
    """The p(agrees with the teacher) of one entity, as a small badge (green when likely, orange else)."""
    if p is None:
        return ""
    colour = "#1b7f3b" if p >= 0.9 else "#b35c00" if p >= 0.5 else "#b00020"
    return (f' <small style="border:1px solid {colour};color:{colour};border-radius:8px;padding:0 4px" '
            f'title="calibrated p(the teacher has this entity)">p {p:.2f}</small>')


def entity_html(words: Sequence[str], tags: Sequence[str], types: Sequence[str],
                badges: dict[int, float] | None = None) -> str:
    """The sentence with each entity in its type's colour and its type after it (escaped HTML); with
    ``badges`` ({first word of an entity: p(agrees)}), each such entity's calibrated p(agrees) after it."""
    spans = {start: (kind, end) for kind, start, end in entities(list(tags))}
    parts, i = [], 0
    while i < len(words):
        if i in spans:
            kind, end = spans[i]
            text = html.escape(" ".join(words[i:end]))
            parts.append(f'<span style="background:{_colour(kind, types)};border-radius:4px;padding:1px 4px" '
                         f'title="{html.escape(kind)}">{text} <small><b>{html.escape(kind)}</b></small>'
                         f'{_badge((badges or {}).get(i))}</span>')
            i = end
        else:
            parts.append(html.escape(words[i]))
            i += 1
    return '<div style="line-height:2">' + " ".join(parts) + "</div>"


def entity_legend_html(types: Sequence[str]) -> str:
    return " ".join(f'<span style="background:{_colour(t, types)};border-radius:4px;padding:1px 6px">'
                    f"{html.escape(t)}</span>" for t in types)


def entity_choices(words: Sequence[str], tags: dict[str, list[str]]) -> list[tuple[int, str]]:
    """``(first word, label)`` of every entity any model finds in the sentence, in word order, each once:
    what a reviewer can pick to see every model's word attributions for it."""
    seen: dict[int, str] = {}
    for model_tags_ in tags.values():
        for kind, start, end in entities(model_tags_):
            seen.setdefault(start, f"{' '.join(words[start:end])} [{kind}] (word {start + 1})")
    return sorted(seen.items())

