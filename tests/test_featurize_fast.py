"""The vectorised transform gives exactly what the per-word Python loop it replaced gave."""

import itertools
import pickle
import random

import numpy as np
import pytest
import torch

from kdcore.students import Featurizer
from kdcore.students.featurize import _ascii_word_pattern
from kdcore.words import normalize_word, word_pattern


def per_word_transform(featurizer: Featurizer, texts):
    """The transform of the previous version, kept verbatim as the reference: split each text
    with the pattern, normalise every word, drop empty words, look words, adjacent pairs and
    adjacent triples up one by one, then count repeats with np.unique."""
    unigram = {n: i for i, n in enumerate(featurizer.features_) if " " not in n}
    bigram = {tuple(n.split(" ")): i for i, n in enumerate(featurizer.features_) if n.count(" ") == 1}
    trigram = {tuple(n.split(" ")): i for i, n in enumerate(featurizer.features_) if n.count(" ") == 2}
    use_bigrams = featurizer.ngram_max >= 2 and bool(bigram)
    use_trigrams = featurizer.ngram_max >= 3 and bool(trigram)
    flat, lengths = [], []
    for text in texts:
        findall = (_ascii_word_pattern() if text.isascii() else word_pattern()).findall
        words = [w for w in (normalize_word(raw, featurizer.lowercase) for raw in findall(text)) if w]
        ids = [unigram.get(w, -1) for w in words]
        if use_bigrams:
            ids += [bigram.get(pair, -1) for pair in zip(words, words[1:])]
        if use_trigrams:
            ids += [trigram.get(triple, -1) for triple in zip(words, words[1:], words[2:])]
        flat += ids
        lengths.append(len(ids))
    n_features = len(featurizer.features_)
    ids = np.array(flat, dtype=np.int64)
    rows = np.repeat(np.arange(len(texts)), lengths)
    known = ids >= 0
    keys, counts = np.unique(rows[known] * n_features + ids[known], return_counts=True)
    rows = keys // n_features
    ids = keys - rows * n_features
    offsets = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        offsets[1:] = np.cumsum(np.bincount(rows, minlength=len(texts)))[:-1]
    return ids, offsets, featurizer._values_from_counts(ids, counts)


VARIED = [
    "",
    "   ",
    "\t\n",
    "A three-hour cinema master class.",
    "Café naïve 😀 電影很好! Don't $5 a-b x<y> wow...",
    "Zoë's «quoted» text — em dash… and_underscore 1,000.5 ½ ™",
    "tab\there\u200bzero width\u200b \u200b",
    "ﬁne ligature İstanbul ß ΣΊΣΥΦΟΣ",
    "no\x00nul \x00 alone\x00",
    "controls\x01\x1b\x7f and seps\x1c\x1d\x1e\x1fhere \x0b\x0cvt",
    "nbsp\u00a0em\u2003space\u3000ideographic\u0085nel\u2028line",
    "combining e\u0301 a\u0300\u0301 \u0301alone",
    "great great great movie movie",
    "!!!...???,,,;;;",
    "good movie. GOOD MOVIE! good-movie good_movie",
    "\ufffd replacement\ufffdchar",
]


def _random_texts(seed: int, n: int):
    rng = random.Random(seed)
    alphabet = list("abcdeABCDE good movie bad ") + list("é'.,!?-_$ \t\n0😍電\x00\x1cß\u200b\u00a0\u0301İ")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(60))) for _ in range(n)]
    texts += ["".join(chr(rng.randrange(128)) for _ in range(rng.randrange(40))) for _ in range(n)]
    words = ["good", "movie", "bad", "film", "not", "very", "Great", "!", ",", "isn't"]
    texts += [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 30))) for _ in range(n)]
    long_text = " ".join(rng.choice(words) for _ in range(20_000))
    return texts + [long_text]


def _assert_same(featurizer, texts):
    new = featurizer.transform(texts)
    ids, offsets, values = per_word_transform(featurizer, texts)
    assert new.indices.dtype == torch.int64 and new.offsets.dtype == torch.int64
    assert new.values.dtype == torch.float32
    assert np.array_equal(new.indices.numpy(), ids)
    assert np.array_equal(new.offsets.numpy(), offsets)
    assert np.array_equal(new.values.numpy(), values)  # to the bit


@pytest.mark.parametrize("settings", [
    dict(min_count=1),
    dict(min_count=1, weighting="count", lowercase=False),
    dict(min_count=2, weighting="tfidf"),
    dict(min_count=1, ngram_max=1),
    dict(min_count=1, max_features=40),
    dict(min_count=1, ngram_max=3),
    dict(min_count=2, ngram_max=3, weighting="tfidf"),
    dict(min_count=1, ngram_max=3, max_features=60, lowercase=False),
])
def test_transform_equals_the_per_word_loop_on_varied_texts(settings):
    texts = VARIED + _random_texts(0, 150)
    featurizer = Featurizer(**settings).fit(texts)
    if featurizer.ngram_max == 3:  # the triples' lookup is exercised, not skipped for want of triples
        assert any(featurizer.features_[i].count(" ") == 2 for i in featurizer.transform(texts).indices.tolist())
    _assert_same(featurizer, texts)
    # Unseen texts, one at a time and in other batches: the chunk cache must not change results.
    unseen = _random_texts(1, 60) + VARIED
    _assert_same(featurizer, unseen)
    for text in unseen[:40]:
        _assert_same(featurizer, [text])
    _assert_same(featurizer, list(reversed(unseen)))


def test_a_text_holding_the_batch_separator_character_takes_the_per_text_path():
    featurizer = Featurizer(min_count=1).fit(["good movie", "bad film", "good \x00 movie"])
    texts = ["good \x00 movie", "\x00", "good movie", "good\x00movie", ""]
    _assert_same(featurizer, texts)
    # "\x00" normalises to nothing, so the words either side of it are adjacent: a bigram.
    names = [featurizer.features_[i] for i in featurizer.transform(["good \x00 movie"]).indices.tolist()]
    assert sorted(names) == ["good", "good movie", "movie"]


def test_transform_after_pickling_and_from_dict_is_unchanged():
    texts = VARIED + _random_texts(2, 40)
    featurizer = Featurizer(min_count=1).fit(texts)
    featurizer.transform(texts)  # fills the chunk cache
    for other in (pickle.loads(pickle.dumps(featurizer)), Featurizer.from_dict(featurizer.to_dict())):
        assert "_word_ids_" not in other.__dict__ or other.__dict__["_word_ids_"] is None
        _assert_same(other, texts)


def test_chunk_table_starts_afresh_past_its_limit(monkeypatch):
    from kdcore.students import word_ids

    monkeypatch.setattr(word_ids, "_CACHE_LIMIT", 10)
    texts = [" ".join(f"w{i}{j}" for j in range(5)) for i in range(30)]
    featurizer = Featurizer(min_count=1).fit(texts)
    for batch in itertools.islice(itertools.cycle([texts[:10], texts[10:25], texts]), 6):
        _assert_same(featurizer, batch)
    assert len(featurizer._word_ids()._index) <= 10 + sum(len(t.split()) for t in texts) + 2


def test_features_added_after_a_transform_are_found():
    """The vectorised lookup is built once per vocabulary: adding features (aug_linear scores unseen
    n-grams this way) must rebuild it, or new words would silently count as unknown."""
    from kdcore.students.featurize import Featurizer

    featurizer = Featurizer(min_count=1).fit(["good film", "bad film"])
    before = featurizer.transform(["great film"])
    assert "great" not in {featurizer.features_[i] for i in before.indices.tolist()}
    featurizer.add_features(featurizer.unknown_features(["great film"]))
    after = featurizer.transform(["great film"])
    assert {"great", "great film"} <= {featurizer.features_[i] for i in after.indices.tolist()}


@pytest.mark.parametrize("ngram_max", [2, 3])
def test_a_vocabulary_grown_text_by_text_extends_its_lookup_in_place(ngram_max):
    """Each added batch of n-grams is hashed into the existing lookup (no rebuild of the whole vocabulary per
    text), and every transform still equals the per-word loop, cached chunks holding a new word included."""
    texts = VARIED + _random_texts(3, 60)
    featurizer = Featurizer(min_count=2, ngram_max=ngram_max).fit(texts)
    _assert_same(featurizer, texts)  # builds the lookup and fills the chunk cache
    lookup = featurizer._word_ids()
    for text in _random_texts(4, 20) + ["brand new words here", "new words brand here again"]:
        unknown = featurizer.unknown_features([text])
        if unknown:
            featurizer.add_features(unknown)
        _assert_same(featurizer, [text])
        _assert_same(featurizer, texts[:30] + [text])
    assert featurizer._word_ids() is lookup
    assert not featurizer.unknown_features(["brand new words here"])


def test_a_lookup_without_room_for_the_new_words_is_rebuilt():
    featurizer = Featurizer(min_count=1).fit(["good film", "bad film ever"])
    lookup = featurizer._word_ids()
    many = " ".join(f"word{i}" for i in range(3000))  # more new words than the keys' room
    featurizer.add_features(featurizer.unknown_features([many]))
    assert featurizer._word_ids() is not lookup
    _assert_same(featurizer, [many, "good film", "bad word7 film word8 word9"])
