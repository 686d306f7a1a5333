"""Transfer-set augmentation after Tang et al. (2019), "Distilling Task-Specific Knowledge
from BERT into Simple Neural Networks", section 3.3.

A small student learns the teacher's function only where it sees the teacher's outputs;
augmented texts (labelled by the teacher, never by gold labels) show it more of the input
space. For each text and copy, every word independently is, with ``X ~ U[0, 1]``:

- replaced by the mask token if ``X < mask_prob``,
- replaced by a random corpus word if ``mask_prob <= X < mask_prob + swap_prob``,
- kept otherwise;

then, with probability ``ngram_prob``, only a random n-gram of the result is kept, ``n``
uniform in 1..``ngram_max_words`` (5 in the paper and by default). Differences from the paper, stated:

- Tang et al. swap a word for one *with the same part of speech*. kd-lens has no POS tagger,
  so the swap draws a word from the corpus by frequency (a random word *occurrence* of the
  given texts, or of ``vocabulary``), which keeps the word statistics of the corpus: common
  words are swapped in often, typos and names rarely.
- Texts are rebuilt from words joined by single spaces. Words are those of
  :func:`kdcore.words.split_words` (surface forms, case kept), which the teacher's
  pre-tokenizer splits back into the same words, so teacher and students see the same
  word sequence; only the spacing differs ("Great!" -> "Great !").
- The mask token ``[MASK]`` is a special token for a BERT teacher; the students' featurizer
  sees it as the words ``[``, ``mask``, ``]`` (a feature that means "a word was here").
"""

from __future__ import annotations

import random
import re
from typing import Sequence

from .words import split_words

__all__ = ["augment_texts", "clause_texts"]

_NGRAM_MAX = 5


def augment_texts(
    texts: Sequence[str],
    copies: int = 2,
    mask_prob: float = 0.1,
    swap_prob: float = 0.1,
    ngram_prob: float = 0.25,
    vocabulary: Sequence[str] | None = None,
    seed: int = 0,
    mask_token: str = "[MASK]",
    ngram_max_words: int = _NGRAM_MAX,
) -> list[str]:
    """Up to ``copies`` augmented versions of every text (see the module docstring).

    ``vocabulary``: words to swap in, drawn uniformly from the list (so repeats weight a
    word); default: every word occurrence of ``texts``. Deterministic given ``seed``.

    Duplicates are dropped: an augmented text whose word sequence equals an original's
    (or an earlier augmented text's) is not returned, nor is an empty one. So with all three
    probabilities 0 every copy equals its original and the result is ``[]``. The order is
    text by text, copy by copy.
    """
    if isinstance(texts, str):
        raise ValueError("Pass a list of texts, not a single string (wrap it: [text]).")
    if not isinstance(copies, int) or copies < 0:
        raise ValueError(f"copies must be an integer >= 0, got {copies!r}.")
    for name, value in (("mask_prob", mask_prob), ("swap_prob", swap_prob), ("ngram_prob", ngram_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value}.")
    if mask_prob + swap_prob > 1.0:
        raise ValueError(f"mask_prob + swap_prob must be <= 1 (one draw decides mask, swap or keep); got {mask_prob + swap_prob}.")

    if not isinstance(ngram_max_words, int) or ngram_max_words < 1:
        raise ValueError(f"ngram_max_words must be an integer >= 1, got {ngram_max_words!r}.")

    word_lists = [[text[w.start:w.end] for w in split_words(text, lowercase=False)] for text in texts]
    if vocabulary is None:
        pool = [word for words in word_lists for word in words]
    else:
        if isinstance(vocabulary, str):
            raise ValueError("vocabulary must be a list of words, not one string.")
        pool = [str(word) for word in vocabulary]
    if swap_prob > 0 and copies > 0 and not pool:
        raise ValueError("swap_prob > 0 needs words to swap in; pass a non-empty vocabulary or texts with words.")

    rng = random.Random(seed)
    # Dedup on word sequences: the rebuilt text differs from the original in spacing only.
    seen = {tuple(words) for words in word_lists}
    augmented: list[str] = []
    swap_limit = mask_prob + swap_prob
    for words in word_lists:
        if not words:
            continue
        for _ in range(copies):
            new_words = []
            for word in words:
                draw = rng.random()
                if draw < mask_prob:
                    new_words.append(mask_token)
                elif draw < swap_limit:
                    new_words.append(pool[rng.randrange(len(pool))])
                else:
                    new_words.append(word)
            if ngram_prob > 0 and rng.random() < ngram_prob:
                n = rng.randint(1, ngram_max_words)
                if n < len(new_words):
                    start = rng.randrange(len(new_words) - n + 1)
                    new_words = new_words[start:start + n]
            key = tuple(new_words)
            if key in seen:
                continue
            seen.add(key)
            augmented.append(" ".join(new_words))
    return augmented


# Clause boundaries: a comma, semicolon or colon, a spaced dash, or the word "but".
_CLAUSE_BREAK = re.compile(r"\s*(?:[,;:]|\s--?\s|\bbut\b)\s*", re.IGNORECASE)


def clause_texts(texts: Sequence[str], min_words: int = 2) -> list[str]:
    """The clauses of every text as texts of their own, for the transfer set.

    A review such as "slick and well acted, but the plot is thin" holds two judgements; the
    teacher's output on each clause shows a bag-of-words student which words carry which
    side, natural text where augmented copies are not. Texts are cut at commas, semicolons,
    colons, spaced dashes and "but"; a clause is kept when it has at least ``min_words``
    whitespace-separated words and differs from every original and earlier clause.
    On the default corpus this adds about 16,000 texts (the README gives what they change).
    """
    if isinstance(texts, str):
        raise ValueError("Pass a list of texts, not a single string (wrap it: [text]).")
    if min_words < 1:
        raise ValueError(f"min_words must be >= 1, got {min_words}.")
    seen = set(texts)
    clauses: list[str] = []
    for text in texts:
        parts = _CLAUSE_BREAK.split(text)
        if len(parts) < 2:
            continue
        for part in parts:
            part = part.strip()
            if len(part.split()) >= min_words and part not in seen:
                seen.add(part)
                clauses.append(part)
    return clauses
