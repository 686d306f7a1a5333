"""The structured token student: the CRF's partition function and loss against brute force, BIO-valid
decoding, save / load, and the teacher word-feature cache keyed by the teacher's weights and tokenizer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conftest import make_tiny_token_model_dir, make_toy_token_corpus
from kdcore.tasks.token.bio import is_valid_sequence
from kdcore.students.crf import bio_masks, log_partition, structural_kd_loss, viterbi
from kdcore.students.token_crf import TokenCRFConfig, TokenCRFStudent
from kdcore.students.token_teacher_features import (TeacherWordFeatures, TokenTeacherCache, token_cache_key,
                                                    tokenizer_identity, window_key, word_key)
from kdcore.tasks.token.teacher import TokenTeacher

TAGS = ["O", "B-x", "I-x", "B-y", "I-y"]


def _chain(seed=0):
    g = torch.Generator().manual_seed(seed)
    C = len(TAGS)
    start, transition, end = (torch.randn(C, generator=g), torch.randn(C, C, generator=g), torch.randn(C, generator=g))
    return start, transition, end, *bio_masks(TAGS)


def _path_score(emissions, path, start, transition, end):
    score = start[path[0]] + end[path[-1]] + sum(emissions[i, t] for i, t in enumerate(path))
    return score + sum(transition[a, b] for a, b in zip(path, path[1:]))


def _valid_paths(n):
    return [p for p in itertools.product(range(len(TAGS)), repeat=n) if is_valid_sequence([TAGS[k] for k in p])]


def test_log_partition_sums_exactly_the_valid_paths():
    chain = _chain()
    emissions = torch.randn(2, 4, len(TAGS), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    got = log_partition(emissions, mask, *chain)
    for b, n in enumerate((4, 3)):
        scores = torch.stack([_path_score(emissions[b], p, *chain[:3]) for p in _valid_paths(n)])
        assert torch.allclose(got[b], torch.logsumexp(scores, 0), atol=1e-4)


def test_structural_loss_on_one_hot_targets_is_the_gold_path_nll():
    chain = _chain(2)
    emissions = torch.randn(1, 3, len(TAGS), generator=torch.Generator().manual_seed(3))
    gold = [1, 2, 0]  # B-x I-x O
    targets = torch.nn.functional.one_hot(torch.tensor([gold]), len(TAGS)).float()
    loss = structural_kd_loss(emissions, torch.ones(1, 3, dtype=torch.bool), targets, *chain)
    log_z = torch.logsumexp(torch.stack([_path_score(emissions[0], p, *chain[:3]) for p in _valid_paths(3)]), 0)
    assert torch.allclose(loss, log_z - _path_score(emissions[0], gold, *chain[:3]), atol=1e-4)


def test_viterbi_never_puts_i_after_o_even_when_the_emissions_want_it():
    start, transition, end, allowed_start, allowed_transition = _chain(4)
    emissions = torch.full((3, len(TAGS)), -5.0)
    emissions[0, 0] = 5.0   # O
    emissions[1, 2] = 50.0  # I-x wanted right after O
    emissions[2, 4] = 50.0  # I-y after I-x: another type
    path = [TAGS[k] for k in viterbi(emissions, start, transition * 0, end, allowed_start, allowed_transition)]
    assert is_valid_sequence(path)
    assert path[0] == "O" and path[1] != "I-x"
    # Without the BIO masks the same scores would decode the invalid path: the masks do the work.
    everything = torch.ones_like(allowed_transition)
    free = viterbi(emissions, start * 0, transition * 0, end * 0, torch.ones_like(allowed_start), everything)
    assert [TAGS[k] for k in free] == ["O", "I-x", "I-y"]


@pytest.fixture(scope="module")
def toy():
    model_dir = make_tiny_token_model_dir(__import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "teacher")
    corpus = make_toy_token_corpus(n_sentences=60)
    teacher = TokenTeacher.from_pretrained(model_dir, label_names=corpus.label_names, device="cpu")
    corpus = corpus.with_label_order(teacher.label_names)
    return teacher, corpus, model_dir


def _fit(teacher, corpus, **config):
    student = TokenCRFStudent(TokenCRFConfig(min_count=1, max_iter=30, **config))
    logits = teacher.predict_word_logits(corpus.train.sentences)
    return student.fit_sentences(corpus.train.sentences, teacher_logits=logits, label_names=teacher.label_names,
                                 teacher=teacher)


def test_crf_student_decodes_valid_bio_and_round_trips_identically(toy, tmp_path):
    teacher, corpus, _ = toy
    student = _fit(teacher, corpus)
    sentences = corpus.test.sentences
    tags = student.tag(sentences)
    assert all(is_valid_sequence(t) for t in tags) and [len(t) for t in tags] == [len(s) for s in sentences]
    probs = student.predict_proba(sentences)
    assert all(np.allclose(p.sum(axis=1), 1.0, atol=1e-4) for p in probs)
    loaded = TokenCRFStudent.load(student.save(tmp_path / "crf"))  # no teacher: reads its saved word table
    assert loaded.tag(sentences) == tags
    for a, b in zip(loaded.predict_word_logits(sentences), student.predict_word_logits(sentences)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="use_teacher"):
        loaded.tag([["an", "unseenword"]])
    assert loaded.use_teacher(teacher).tag([["an", "unseenword"]])[0][0] in teacher.label_names


def test_transitions_table_forbids_i_after_o_and_emission_terms_sum_up(toy):
    teacher, corpus, _ = toy
    student = _fit(teacher, corpus)
    table = student.transitions()
    assert table.loc["O", "I-per"] == -np.inf and table.loc["<start>", "I-work"] == -np.inf
    assert np.isfinite(table.loc["B-per", "I-per"])
    words = corpus.test.sentences[0]
    terms = student.emission_terms(words, 0, "B-work")
    emission = student._emissions([words])[0][0, student.label_names.index("B-work")]
    assert terms["contribution"].sum() == pytest.approx(float(emission), abs=1e-4)
    assert any(t.startswith("teacher(window)[") for t in terms["term"])


def test_independent_variant_reads_the_same_emissions(toy):
    teacher, corpus, _ = toy
    student = _fit(teacher, corpus, crf=False, teacher_terms="word")
    assert all(is_valid_sequence(t) for t in student.tag(corpus.test.sentences))


def test_word_features_are_the_teacher_on_the_word_and_window_alone(toy):
    teacher, _, _ = toy
    features = TeacherWordFeatures(["word", "window"], teacher.label_names, source=teacher)
    sentence = ["the", "actor", "is", "good"]
    columns = features.transform([sentence])[0]
    C = len(teacher.label_names)
    alone = teacher.predict_word_logits([["actor"]])[0][0]
    window = teacher.predict_word_logits([["the", "actor", "is"]])[0][1]
    log_softmax = lambda x: x - np.log(np.exp(x - x.max()).sum()) - x.max()  # noqa: E731
    assert np.allclose(columns[1, :C], log_softmax(alone), atol=1e-5)
    assert np.allclose(columns[1, C:], log_softmax(window), atol=1e-5)
    assert window_key(sentence, 0) != window_key(sentence, 1) and word_key("actor") in features.table


def test_word_cache_is_keyed_by_the_teacher_weights_and_tokenizer(toy, tmp_path):
    teacher, _, model_dir = toy
    keys = [word_key("actor"), window_key(["a", "film", "."], 1)]
    first = TokenTeacherCache(teacher, tmp_path)
    values = first.log_probs(keys)
    assert first.computed == 2
    again = TokenTeacherCache(teacher, tmp_path)  # a new process: read from disk
    assert np.array_equal(again.log_probs(keys), values) and again.computed == 0
    other = TokenTeacher.from_pretrained(make_tiny_token_model_dir(tmp_path / "other", seed=1),
                                         label_names=teacher.label_names, device="cpu")
    assert other.fingerprint() != teacher.fingerprint() and token_cache_key(other) != token_cache_key(teacher)
    changed = TokenTeacherCache(other, tmp_path)
    assert not np.allclose(changed.log_probs(keys), values) and changed.computed == 2
    # The same weights with another tokenizer (no lower-casing) is another key too.
    from transformers import BertTokenizerFast

    cased = BertTokenizerFast(vocab=str(model_dir / "vocab.txt"), do_lower_case=False)
    assert tokenizer_identity(cased) != tokenizer_identity(teacher.tokenizer)


def test_student_refuses_without_a_teacher_or_with_both_targets(toy):
    teacher, corpus, _ = toy
    with pytest.raises(ValueError, match="teacher"):
        TokenCRFStudent(TokenCRFConfig(min_count=1)).fit_sentences(
            corpus.train.sentences, tags=corpus.train.tags, label_names=teacher.label_names)
    with pytest.raises(ValueError, match="not both"):
        TokenCRFStudent().fit_sentences(corpus.train.sentences, tags=corpus.train.tags, teacher_logits=[],
                                        label_names=teacher.label_names)


def test_a_cache_folder_given_before_fitting_is_the_one_the_fit_reads_and_fills(toy, tmp_path):
    """use_teacher(teacher, cache_dir) before fit_sentences: the fit's teacher features go to that folder, so
    a second student fitted the same way computes nothing."""
    teacher, corpus, _ = toy
    logits = teacher.predict_word_logits(corpus.train.sentences)

    def fit():
        student = TokenCRFStudent(TokenCRFConfig(min_count=1, max_iter=5)).use_teacher(teacher, tmp_path)
        return student.fit_sentences(corpus.train.sentences, teacher_logits=logits, label_names=teacher.label_names)

    first = fit()
    assert first.teacher_features_.cache.computed > 0 and any(tmp_path.rglob("*"))
    assert fit().teacher_features_.cache.computed == 0
