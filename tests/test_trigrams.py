"""Word triples (``ngram_max=3``): vocabulary, the fast lookup, attribution shares, save / load,
and aug_linear scoring a three-word phrase it never saw through its teacher features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kdcore.attribution import explain
from kdcore.config import StudentConfig
from kdcore.students import AugLinearStudent, Featurizer, LinearStudent, load_student
from kdcore.words import split_words


def _by_name(featurizer, text):
    _, ids, values, word_index = featurizer.occurrences(text)
    return {featurizer.features_[i]: (v, idx) for i, v, idx in zip(ids.tolist(), values.tolist(), word_index)}


# -- the featurizer ---------------------------------------------------------------------------

def test_triples_enter_the_vocabulary_by_document_frequency_then_name():
    texts = ["not very good", "not very good film", "not very bad", "very good film"]
    featurizer = Featurizer(min_count=2, ngram_max=3).fit(texts)
    # df: very 4; good, not, "not very", "very good" 3; film, "good film", "not very good",
    # "very good film" 2; the rest 1 (dropped). Ties alphabetical.
    assert featurizer.features_ == ["very", "good", "not", "not very", "very good",
                                    "film", "good film", "not very good", "very good film"]
    assert Featurizer(min_count=2, ngram_max=3, max_features=7).fit(texts).features_ == featurizer.features_[:7]
    assert not any(n.count(" ") == 2 for n in Featurizer(min_count=1).fit(texts).features_)  # default 2
    # A triple repeated inside one text counts once for min_count.
    assert Featurizer(min_count=2, ngram_max=3).fit(["a b c a b c", "x"]).features_ == []
    with pytest.raises(ValueError, match="1, 2 or 3"):
        Featurizer(ngram_max=4).fit(texts)


def test_occurrences_of_a_triple_cover_its_three_words_once_per_occurrence():
    featurizer = Featurizer(min_count=1, ngram_max=3, weighting="count").fit(["very very very", "not very good"])
    by_name = _by_name(featurizer, "very very very very")
    assert by_name["very very very"] == (2.0, (0, 1, 2, 1, 2, 3))
    assert by_name["very very"] == (3.0, (0, 1, 1, 2, 2, 3))
    assert by_name["very"] == (4.0, (0, 1, 2, 3))
    by_name = _by_name(featurizer, "not very good")
    assert by_name["not very good"] == (1.0, (0, 1, 2))
    # Occurrences match the batch transform feature for feature, value for value.
    for text in ["very very very very", "not very good", "good very not", "not very good not very good", ""]:
        _, ids, values, _ = featurizer.occurrences(text)
        batch = featurizer.transform([text])
        order = torch.argsort(ids)
        assert torch.equal(batch.indices, ids[order]) and torch.equal(batch.values, values[order]), text


def test_streaming_vocabulary_equals_fit_with_triples():
    from kdcore.students.train_stream import fit_vocabulary_stream

    texts = ["not very good at all", "not very good", "very good film", "not a very good film",
             "a very bad film", "not very bad at all"] * 3
    fitted = Featurizer(min_count=2, ngram_max=3, weighting="tfidf").fit(texts)
    streamed = Featurizer(min_count=2, ngram_max=3, weighting="tfidf")
    assert fit_vocabulary_stream(streamed, [texts[i:i + 4] for i in range(0, len(texts), 4)]) == 0
    assert streamed.features_ == fitted.features_ and "not very good" in streamed.features_
    np.testing.assert_array_equal(streamed.idf_, fitted.idf_)


def test_save_and_load_keep_the_triples():
    texts = ["not very good", "not very good film", "very bad film", "not very bad"]
    featurizer = Featurizer(min_count=1, ngram_max=3, weighting="tfidf").fit(texts)
    again = Featurizer.from_dict(json.loads(json.dumps(featurizer.to_dict())))
    assert again.ngram_max == 3 and again.features_ == featurizer.features_
    probe = texts + ["so not very good", "film very bad not very"]
    assert all(torch.equal(x, y) for x, y in zip(featurizer.transform(probe), again.transform(probe)))


def test_add_features_takes_triples_only_where_the_featurizer_uses_them():
    featurizer = Featurizer(min_count=1, ngram_max=3).fit(["good film", "bad film"])
    featurizer.transform(["great film ever"])  # builds the lookup; adding must rebuild it
    assert featurizer.unknown_features(["great film ever"]) == ["ever", "film ever", "great", "great film",
                                                                "great film ever"]
    featurizer.add_features(featurizer.unknown_features(["great film ever"]))
    names = {featurizer.features_[i] for i in featurizer.transform(["great film ever"]).indices.tolist()}
    assert "great film ever" in names
    assert featurizer.unknown_features(["great film ever"]) == []
    with pytest.raises(ValueError, match="already in the vocabulary"):
        featurizer.add_features(["great film ever"])
    pairs = Featurizer(min_count=1).fit(["good film", "bad film"])
    with pytest.raises(ValueError, match="ngram_max=2"):
        pairs.add_features(["good bad film"])
    assert pairs.unknown_features(["good bad film"]) == ["good bad"]  # no triples asked for


def test_triple_keys_refuse_a_vocabulary_too_large_for_int64(monkeypatch):
    from kdcore.students import word_ids

    limit = word_ids.MAX_TRIGRAM_TOKENS
    largest = np.iinfo(np.int64).max
    assert limit**3 - 1 <= largest < (limit + 1) ** 3 - 1  # the largest key fits; one more word would not
    monkeypatch.setattr(word_ids, "MAX_TRIGRAM_TOKENS", 3)
    texts = ["a b c d"]
    with pytest.raises(ValueError, match="lower max_features or use ngram_max=2"):
        Featurizer(min_count=1, ngram_max=3).fit(texts).transform(texts)
    assert Featurizer(min_count=1).fit(texts).transform(texts).indices.numel() == 7  # pairs need no triple keys


# -- students ---------------------------------------------------------------------------------

TEXTS = ["good fun film", "not very good film", "not very good", "very good and fun",
         "bad boring film", "not very fun", "a very bad plot", "boring and bad"]
LABELS = np.array([1, 0, 0, 1, 0, 0, 0, 0])


def _expected_word_scores(student, text, target):
    """Each occurrence of a known n-gram of n words gives each of its words weight / n (count values)."""
    ids = {name: i for i, name in enumerate(student.featurizer_.features_)}
    words = [w.text for w in split_words(text)]
    scores = np.zeros(len(words))
    for n in (1, 2, 3):
        for i in range(len(words) - n + 1):
            fid = ids.get(" ".join(words[i:i + n]))
            if fid is not None:
                scores[i:i + n] += student.coef_[fid, target] / n
    return scores


def test_linear_student_splits_each_triple_in_thirds_and_stays_complete():
    student = LinearStudent(ngram_max=3, weighting="count", min_count=1, max_steps=1).fit(
        TEXTS, labels=LABELS, label_names=["neg", "pos"])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # hand-set weights, so every feature matters
        student.module_.bag.weight.copy_(torch.randn(student.module_.bag.weight.shape, generator=generator))
    assert "not very good" in student.featurizer_.features_
    for text in ["not very good film", "not very good not very good", "very very good fun"]:
        logits = student.predict_logits([text])[0]
        for method in ("integrated_gradients", "gradient_x_input"):
            for target in (0, 1):
                expl = explain(student, text, method, target=target)[0]
                np.testing.assert_allclose(expl.scores, _expected_word_scores(student, text, target), atol=1e-5)
                assert abs(expl.scores.sum() - (logits[target] - student.bias_[target])) < 1e-5


def test_linear_student_with_triples_saves_and_loads_identically(tmp_path):
    student = LinearStudent(ngram_max=3, min_count=1, l2=1e-2).fit(TEXTS, labels=LABELS, label_names=["neg", "pos"])
    loaded = load_student(student.save(tmp_path / "tri"))
    assert loaded.config.ngram_max == 3 and loaded.featurizer_.features_ == student.featurizer_.features_
    probe = TEXTS + ["so not very good at all"]
    np.testing.assert_array_equal(loaded.predict_logits(probe), student.predict_logits(probe))


def _fit_aug(teacher):
    student = AugLinearStudent(StudentConfig(kind="aug_linear", min_count=1, ngram_max=3))
    student.use_teacher(teacher)
    logits = np.where(LABELS[:, None] == 1, [[-2.0, 2.0]], [[2.0, -2.0]]).astype(np.float32)
    return student.fit(TEXTS, teacher_logits=logits, label_names=["neg", "pos"])


def test_aug_linear_scores_an_unseen_triple_through_its_teacher_features(tiny_teacher):
    student = _fit_aug(tiny_teacher)
    assert "not very good" in student.featurizer_.features_  # triples were trained on
    text = "not very boring"  # known words; the pair "very boring" and the triple are new
    n_before = student.featurizer_.n_features
    logits = student.predict_logits([text])[0]
    added = student.featurizer_.features_[n_before:]
    assert set(added) == {"very boring", "not very boring"}
    # The triple's row is the projection of its own standardised teacher features.
    embeddings, teacher_logits = student.ngram_cache_.features(added)
    module = student.module_
    raw = torch.from_numpy(np.concatenate([embeddings, teacher_logits], axis=1))
    expected = (module.standardize(raw) @ module.projection).detach().numpy()
    np.testing.assert_allclose(student.coef_[n_before:], expected, rtol=1e-5, atol=1e-7)
    triple = n_before + added.index("not very boring")
    assert np.abs(student.coef_[triple]).max() > 0
    # Additive: the logits are the bias plus the rows of the text's n-grams (log values) ...
    batch = student.featurizer_.transform([text])
    assert triple in batch.indices.tolist()
    bag = student.bias_ + (batch.values.numpy()[:, None] * student.coef_[batch.indices.numpy()]).sum(axis=0)
    np.testing.assert_allclose(logits, bag, rtol=1e-5, atol=1e-6)
    # ... and the word scores sum to the logit minus the bias.
    for target in (0, 1):
        expl = explain(student, text, "integrated_gradients", target=target)[0]
        np.testing.assert_allclose(expl.scores.sum(), logits[target] - student.bias_[target], rtol=1e-5, atol=1e-6)
