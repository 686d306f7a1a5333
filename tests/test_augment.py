"""Transfer-set augmentation (Tang et al. 2019 style)."""

import random

import pytest

from kdcore.augment import augment_texts, clause_texts
from kdcore.words import split_words


def _long_texts(n=2000, length=20, seed=0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(500)]
    return [" ".join(rng.choice(vocab) for _ in range(length)) for _ in range(n)]


def test_deterministic_by_seed():
    texts = _long_texts(50)
    assert augment_texts(texts, seed=3) == augment_texts(texts, seed=3)
    assert augment_texts(texts, seed=3) != augment_texts(texts, seed=4)


def test_copies_count_and_order():
    texts = _long_texts(40)
    for copies in (1, 3):
        out = augment_texts(texts, copies=copies, mask_prob=0.5, swap_prob=0.0, ngram_prob=0.0)
        assert len(out) == copies * len(texts)
        # text by text: the first copies belong to the first text (same unmasked words)
        first = texts[0].split()
        for augmented in out[:copies]:
            assert all(a in ("[MASK]", b) for a, b in zip(augmented.split(), first))
    assert augment_texts(texts, copies=0) == []


def test_probabilities_roughly_respected():
    texts = _long_texts(1000)
    out = augment_texts(texts, copies=2, mask_prob=0.1, swap_prob=0.2, ngram_prob=0.0, vocabulary=["SWAPPED"])
    words = [w for text in out for w in text.split()]
    assert len(words) == 2 * 1000 * 20  # no n-grams, no duplicates: every word is there
    assert words.count("[MASK]") / len(words) == pytest.approx(0.1, abs=0.01)
    assert words.count("SWAPPED") / len(words) == pytest.approx(0.2, abs=0.01)


def test_ngram_sampling():
    texts = _long_texts(1000)
    out = augment_texts(texts, copies=2, mask_prob=0.0, swap_prob=0.0, ngram_prob=0.25)
    # Only the n-grammed copies differ from their originals; the rest are dropped as duplicates.
    assert len(out) / (2 * len(texts)) == pytest.approx(0.25, abs=0.03)
    lengths = [len(text.split()) for text in out]
    assert set(lengths) == {1, 2, 3, 4, 5}
    originals = set(texts)
    assert all(any(text in original for original in originals) for text in out[:50])


def test_longer_ngram_samples():
    texts = _long_texts(1000)
    out = augment_texts(texts, copies=2, mask_prob=0.0, swap_prob=0.0, ngram_prob=0.25, ngram_max_words=9)
    assert set(len(text.split()) for text in out) == set(range(1, 10))
    with pytest.raises(ValueError, match="ngram_max_words"):
        augment_texts(texts, ngram_max_words=0)


def test_zero_probabilities_give_only_duplicates_so_nothing():
    texts = ["Great film!", "Café au lait, très bon.", "電影很好"]
    assert augment_texts(texts, copies=3, mask_prob=0.0, swap_prob=0.0, ngram_prob=0.0) == []


def test_no_duplicates_and_words_kept_as_written():
    texts = ["Great film!", "Great film!", "Café au lait, très bon."] * 5
    out = augment_texts(texts, copies=4, mask_prob=0.3, swap_prob=0.3, ngram_prob=0.2, seed=1)
    assert len(out) == len(set(out)) and out
    keys = {tuple(w.text for w in split_words(t, lowercase=False)) for t in texts}
    assert all(tuple(t.split()) not in keys for t in out)
    assert any("Café" in t for t in out)  # surface forms, not normalised words
    pool = {w for t in texts for w in t.replace("!", " ! ").replace(",", " , ").replace(".", " . ").split()}
    assert {w for t in out for w in t.split()} <= pool | {"[MASK]"}


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mask_prob \\+ swap_prob"):
        augment_texts(["a b"], mask_prob=0.6, swap_prob=0.6)
    with pytest.raises(ValueError, match="probability"):
        augment_texts(["a b"], ngram_prob=1.5)
    with pytest.raises(ValueError, match="list of texts"):
        augment_texts("a b")
    with pytest.raises(ValueError, match="vocabulary"):
        augment_texts(["a b"], vocabulary=[], swap_prob=0.5)


def test_clauses_cut_at_commas_dashes_and_but():
    texts = ["Slick and well acted, but the plot is thin; a pity -- really a pity.", "Short and sweet."]
    assert clause_texts(texts) == ["Slick and well acted", "the plot is thin", "a pity", "really a pity."]


def test_clauses_keep_longer_parts_once_and_never_an_original():
    texts = ["Good, bad, good fun: good fun.", "good fun", "A, B"]
    # "Good" / "bad" / "A" / "B" are single words; "good fun" is an original text; the
    # repeated clause comes back once.
    assert clause_texts(texts) == ["good fun."]
    assert clause_texts(texts, min_words=1) == ["Good", "bad", "good fun.", "A", "B"]
    with pytest.raises(ValueError):
        clause_texts("one text, not a list")
    with pytest.raises(ValueError):
        clause_texts(texts, min_words=0)


def test_transfer_set_holds_clauses_unlabelled_unless_turned_off():
    from kdcore.config import DistillConfig
    from kdcore.data import TextDataset
    from kdcore.tasks.sequence.transfer import build_transfer_set

    train = TextDataset(["fine cast, but a dull script", "a dull script"], [1, 0], ["neg", "pos"])
    with_clauses = build_transfer_set(train, config=DistillConfig(augment_copies=0))
    assert with_clauses.texts == ["fine cast, but a dull script", "a dull script", "fine cast"]
    assert list(with_clauses.labels) == [1, 0, -1]
    without = build_transfer_set(train, config=DistillConfig(augment_copies=0, clauses=False))
    assert without.texts == train.texts
