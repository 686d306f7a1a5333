"""Token teacher and token students: a tiny token teacher (random weights, config in conftest) fine-tunes,
predicts per word (windowed when long) and is distilled into window-feature students."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_tiny_model_dir, make_toy_token_corpus
from kdcore.tasks.token.bio import is_valid_sequence
from kdcore.config import DistillConfig, StudentConfig, TeacherConfig
from kdcore.labels import LabelMismatch
from kdcore.students import TokenLinearStudent, TokenMLPStudent, load_student
from kdcore.students.window import slot_feature_names, word_shape
from kdcore.teacher import TeacherError
from kdcore.tasks.token.metrics import decode, entity_scores
from kdcore.tasks.token.teacher import TokenTeacher, head_task


def _teacher(model_dir, corpus, **config):
    options = {"max_length": 16, "stride": 4, "epochs": 30, "max_steps": 240, "eval_every": 20,
               "learning_rate": 3e-3, "batch_size": 8, "patience": 4, **config}
    return TokenTeacher.from_pretrained(model_dir, label_names=corpus.label_names, config=TeacherConfig(**options),
                                        device="cpu")


@pytest.fixture(scope="module")
def trained(tiny_token_model_dir):
    corpus = make_toy_token_corpus()
    teacher = _teacher(tiny_token_model_dir, corpus)
    corpus = corpus.with_label_order(teacher.label_names)
    before = entity_scores(corpus.test.gold_entities(),
                           decode(teacher.predict_word_logits(corpus.test.sentences), teacher.label_names))["f1"]
    teacher.fit(corpus.train, dev=corpus.dev)
    return teacher, corpus, before


def test_token_teacher_fine_tunes_and_predicts_per_word(trained):
    teacher, corpus, before = trained
    logits = teacher.predict_word_logits(corpus.test.sentences)
    assert [len(rows) for rows in logits] == [len(s) for s in corpus.test.sentences]
    assert all(rows.shape[1] == len(teacher.label_names) for rows in logits)
    after = entity_scores(corpus.test.gold_entities(), decode(logits, teacher.label_names))["f1"]
    assert after > before + 0.2, (before, after)
    assert teacher.best_dev_score_ is not None and len(teacher.history_) > 0


def test_long_sentences_are_windowed_and_every_word_is_read(trained):
    teacher, corpus, _ = trained
    long = ["the", "film", "was", "good", "and", "the", "actor", "was", "fun"] * 3  # 27 words > 14 pieces
    rows = teacher.predict_word_logits([long], use_cache=False)[0]
    assert teacher.last_predict_info["windowed_texts"] == 1
    assert rows.shape == (len(long), len(teacher.label_names))
    assert np.all(np.abs(rows).sum(axis=1) > 0)  # no word left with an unread (zero) row
    # a word near the middle of a short sentence reads the same with and without windowing
    short = long[:10]
    wide = TokenTeacher(teacher.model, teacher.tokenizer, teacher.label_names,
                        config=TeacherConfig(max_length=64, stride=4), device="cpu")
    np.testing.assert_allclose(wide.predict_word_logits([short])[0], teacher.predict_word_logits([short])[0],
                               atol=1e-5)


def test_token_teacher_refuses_a_sequence_classifier(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "seq")
    assert head_task(folder) == "sequence"
    with pytest.raises(TeacherError, match="sequence classifier"):
        TokenTeacher.from_pretrained(folder)


def test_token_teacher_labels_matched_by_name(tiny_token_model_dir):
    shuffled = ["B-work", "O", "I-per", "B-per", "I-work"]
    teacher = TokenTeacher.from_pretrained(tiny_token_model_dir, label_names=shuffled, device="cpu")
    assert teacher.label_names == ["O", "B-per", "I-per", "B-work", "I-work"]  # the model's own order


def test_window_features_are_readable():
    words = ("Visit", "London", "in", "2016")
    assert word_shape("Rome") == "Xxxx" and word_shape("Kensington") == "Xxxxx" and word_shape("2016") == "dddd" and word_shape("@user") == "@xxxx"
    names = slot_feature_names(words, 1)
    for expected in ("w=london", "shape=Xxxxx", "pre2=lo", "suf3=don", "w[-1]=visit", "w[+2]=2016", "w[-2]=<s>"):
        assert expected in names
    assert "first" in slot_feature_names(words, 0) and "last" in slot_feature_names(words, 3)


@pytest.mark.parametrize("cls", [TokenLinearStudent, TokenMLPStudent])
def test_students_distill_decode_validly_and_round_trip(trained, cls, tmp_path):
    teacher, corpus, _ = trained
    train_logits = teacher.predict_word_logits(corpus.train.sentences)
    student = cls(StudentConfig(kind=cls._kind, min_count=1, max_steps=300, hidden_size=16))
    student.fit_sentences(corpus.train.sentences, teacher_logits=train_logits, label_names=teacher.label_names,
                          distill=DistillConfig())
    teacher_tags = decode(teacher.predict_word_logits(corpus.test.sentences), teacher.label_names)
    student_tags = student.tag(corpus.test.sentences)
    assert all(is_valid_sequence(tags) for tags in student_tags)
    assert entity_scores(teacher_tags, student_tags)["f1"] > 0.6
    loaded = load_student(student.save(tmp_path / "s"))
    assert type(loaded) is cls
    for a, b in zip(loaded.predict_word_logits(corpus.test.sentences), student.predict_word_logits(corpus.test.sentences)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_linear_word_contributions_are_exact(trained):
    teacher, corpus, _ = trained
    student = TokenLinearStudent(StudentConfig(kind="token_linear", min_count=1))
    student.fit_sentences(corpus.train.sentences, tags=corpus.train.tags, label_names=teacher.label_names)
    words = corpus.test.sentences[0]
    logits = student.predict_word_logits([words])[0]
    for position in range(len(words)):
        for target in range(len(teacher.label_names)):
            scores = student.word_contributions(words, position, target)
            assert scores.sum() + student.bias_[target] == pytest.approx(float(logits[position, target]), abs=1e-5)
            far = [j for j in range(len(words)) if abs(j - position) > 2]
            assert np.all(scores[far] == 0)


def test_token_students_reject_texts():
    student = TokenLinearStudent(StudentConfig(kind="token_linear"))
    with pytest.raises(ValueError, match="word_slots"):
        student.fit(["a plain text"], labels=[0], label_names=["O", "B-x"])


def test_word_explanations_share_words_and_teacher_ig_is_complete(trained):
    from kdcore.tasks.token.explain import entity_agreement_records, word_explanations

    teacher, corpus, _ = trained
    student = TokenLinearStudent(StudentConfig(kind="token_linear", min_count=1))
    student.fit_sentences(corpus.train.sentences, teacher_logits=teacher.predict_word_logits(corpus.train.sentences),
                          label_names=teacher.label_names)
    words = ["the", "great", "film", "was", "very", "fun"]
    explained = word_explanations(teacher, {"linear": student}, words, 2, n_steps=64)
    t, s = explained["teacher"], explained["linear"]
    assert t.spans == s.spans and t.text == "the great film was very fun" and t.target == s.target
    # completeness: word scores sum to f(x) - f(baseline) for the explained tag at that word
    assert abs(t.convergence_delta) < 0.05
    assert s.scores[5] == 0 and s.scores[0] != 0  # "fun" is 3 words after "film": outside the student's window
    tags = decode(teacher.predict_word_logits(corpus.test.sentences), teacher.label_names)
    rows = entity_agreement_records(teacher, {"linear": student}, corpus.test.sentences, tags, max_entities=5)
    assert 0 < len(rows) <= 5 and all(-1 <= r["spearman"] <= 1 for r in rows if r["spearman"] == r["spearman"])


def test_sequence_teacher_refuses_a_token_classifier(tiny_token_model_dir):
    from kdcore.teacher import Teacher

    assert head_task(tiny_token_model_dir) == "token"
    with pytest.raises(TeacherError, match="token classifier"):
        Teacher.from_pretrained(tiny_token_model_dir)


def test_a_label_map_of_entity_types_maps_both_tags(tiny_token_model_dir):
    from kdcore.tasks.token.teacher import tag_label_map

    assert tag_label_map("per=person,B-work=B-title") == {"B-per": "B-person", "I-per": "I-person",
                                                          "B-work": "B-title"}
    assert tag_label_map("per=person", ["O", "B-per", "I-per", "B-x"]) == {"O": "O", "B-x": "B-x", "B-per": "B-person",
                                                                          "I-per": "I-person"}
    assert tag_label_map("") == {}
    data_tags = ["O", "B-person", "I-person", "B-work", "I-work"]
    teacher = TokenTeacher.from_pretrained(tiny_token_model_dir, label_names=data_tags, label_map="per=person")
    assert teacher.label_names == data_tags  # the teacher's order, its per tags renamed to the data's
    with pytest.raises(LabelMismatch):
        TokenTeacher.from_pretrained(tiny_token_model_dir, label_names=data_tags)  # person is not per
