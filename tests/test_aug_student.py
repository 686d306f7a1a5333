"""The embedding-augmented linear student (aug_linear) and the n-gram cache it reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdcore.attribution import explain
from kdcore.config import StudentConfig
from kdcore.ngram_cache import NgramCache, ngram_cache_key
from kdcore.students import WEIGHT_TABLE_KINDS, AugLinearStudent, load_student
from kdcore.teacher import Teacher

TEXTS = ["good fun film", "a great good plot", "fun and great", "loved the good cast",
         "bad boring film", "an awful bad plot", "boring and awful", "hated the bad cast"]
UNSEEN = "terrible mess"  # neither word occurs in TEXTS


def _fit(teacher, cache_dir=None, **options):
    student = AugLinearStudent(StudentConfig(kind="aug_linear", min_count=1, **options))
    student.use_teacher(teacher, cache_dir=cache_dir)
    # Targets with a clear signal, so the fitted scores are far from zero.
    logits = np.array([[-2.0, 2.0]] * 4 + [[2.0, -2.0]] * 4, dtype=np.float32)
    return student.fit(TEXTS, teacher_logits=logits, label_names=["neg", "pos"])


def _bag_logits(student, text):
    """bias + sum over the text's features of value x the feature's row of the table."""
    batch = student.featurizer_.transform([text])
    table = student.coef_
    return student.bias_ + (batch.values.numpy()[:, None] * table[batch.indices.numpy()]).sum(axis=0)


def test_scores_are_additive_and_explanations_complete(tiny_teacher):
    student = _fit(tiny_teacher)
    text = "good fun but boring plot"
    logits = student.predict_logits([text])[0]
    np.testing.assert_allclose(logits, _bag_logits(student, text), rtol=1e-5, atol=1e-6)
    for method in ("integrated_gradients", "gradient_x_input"):
        for target in (0, 1):
            expl = explain(student, text, method, target=target)[0]
            np.testing.assert_allclose(expl.scores.sum(), logits[target] - student.bias_[target], rtol=1e-5, atol=1e-6)
    # The embedding term is used: the table is not zero where the free weights alone would be.
    assert np.abs(student.module_.projection.detach().numpy()).max() > 0


def test_unseen_ngram_is_scored_from_its_teacher_features(tiny_teacher):
    student = _fit(tiny_teacher)
    assert "terrible" not in student.featurizer_.features_
    n_before = student.featurizer_.n_features
    logits = student.predict_logits([UNSEEN])[0]
    added = student.featurizer_.features_[n_before:]
    assert set(added) == {"terrible", "mess", "terrible mess"}
    # Each new row is the projection of the n-gram's standardised teacher features.
    embeddings, teacher_logits = student.ngram_cache_.features(added)
    module = student.module_
    raw = torch.from_numpy(np.concatenate([embeddings, teacher_logits], axis=1))
    expected = (module.standardize(raw) @ module.projection).detach().numpy()
    np.testing.assert_allclose(student.coef_[n_before:], expected, rtol=1e-5, atol=1e-7)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(logits, _bag_logits(student, UNSEEN), rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits, student.bias_)  # a text of unseen words only still moves the logits
    # Its explanation names the unseen words with their scores.
    expl = explain(student, UNSEEN, "gradient_x_input", target=1)[0]
    np.testing.assert_allclose(expl.scores.sum(), logits[1] - student.bias_[1], rtol=1e-5, atol=1e-6)
    assert np.abs(expl.scores).min() > 0
    # The teacher's own logits on each n-gram sit beside its weight.
    table = student.weights()
    row = table[(table["feature"] == "terrible mess") & (table["class"] == "pos")].iloc[0]
    assert row["teacher_logit"] == pytest.approx(float(teacher_logits[added.index("terrible mess"), 1]), abs=1e-3)


def test_without_embed_unseen_or_without_a_teacher_unseen_ngrams_count_zero(tiny_teacher, tmp_path):
    closed = _fit(tiny_teacher, embed_unseen=False)
    np.testing.assert_allclose(closed.predict_logits([UNSEEN])[0], closed.bias_, atol=1e-7)
    loaded = load_student(_fit(tiny_teacher).save(tmp_path / "aug"))
    with pytest.warns(UserWarning, match="use_teacher"):
        logits = loaded.predict_logits([UNSEEN])[0]
    np.testing.assert_allclose(logits, loaded.bias_, atol=1e-7)


def test_save_load_gives_identical_scores_including_grown_rows(tiny_teacher, tmp_path):
    student = _fit(tiny_teacher)
    probe = TEXTS[:2] + [UNSEEN, "very dull actors"]
    before = student.predict_logits(probe)
    loaded = load_student(student.save(tmp_path / "aug"))
    assert isinstance(loaded, AugLinearStudent) and loaded.config == student.config
    assert loaded.featurizer_.features_ == student.featurizer_.features_  # the rows added for probe were saved
    np.testing.assert_array_equal(loaded.predict_logits(probe), before)  # no teacher needed for them
    loaded.use_teacher(tiny_teacher)
    other = ["the worst story", "charming and brilliant"]
    np.testing.assert_array_equal(loaded.predict_logits(other), student.predict_logits(other))


def test_terms_choose_the_parts_of_each_score(tiny_teacher):
    free_only = _fit(tiny_teacher, aug_terms="free")
    assert free_only.module_.projection.shape[0] == 0
    teacher_only = _fit(tiny_teacher, aug_terms="teacher")
    # Without free weights every n-gram's score is a linear function of the teacher's logits on it.
    names = teacher_only.featurizer_.features_
    _, teacher_logits = teacher_only.ngram_cache_.features(names)
    module = teacher_only.module_
    expected = (module.standardize(torch.from_numpy(teacher_logits)) @ module.projection).detach().numpy()
    np.testing.assert_allclose(teacher_only.coef_, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="aug_terms"):
        StudentConfig(kind="aug_linear", aug_terms="free+words")
    with pytest.raises(ValueError, match="L-BFGS"):
        StudentConfig(kind="aug_linear", l1=0.1)
    assert StudentConfig(kind="aug_linear", aug_terms="teacher+free").aug_terms == "free+teacher"
    assert "aug_linear" in WEIGHT_TABLE_KINDS and "mlp" not in WEIGHT_TABLE_KINDS


def test_fit_without_a_teacher_says_what_to_do():
    student = AugLinearStudent(StudentConfig(kind="aug_linear", min_count=1))
    with pytest.raises(ValueError, match="use_teacher"):
        student.fit(TEXTS, labels=[1, 1, 1, 1, 0, 0, 0, 0], label_names=["neg", "pos"])


def test_cache_is_keyed_by_the_teachers_weights(tiny_teacher, tmp_path):
    ngrams = ["good", "boring plot", "terrible mess"]
    first = NgramCache(tiny_teacher, tmp_path)
    embeddings, logits = first.features(ngrams)
    assert first.computed == 3 and embeddings.shape == (3, tiny_teacher.model.config.hidden_size)
    np.testing.assert_allclose(logits, tiny_teacher.predict_logits(ngrams, use_cache=False), rtol=1e-4, atol=1e-5)
    # The same teacher again: read from disk, nothing recomputed, the same bits.
    again = NgramCache(Teacher(tiny_teacher.model, tiny_teacher.tokenizer, tiny_teacher.label_names), tmp_path)
    e2, l2 = again.features(ngrams)
    assert again.computed == 0
    np.testing.assert_array_equal(e2, embeddings)
    np.testing.assert_array_equal(l2, logits)
    # One weight changed: a new key, and every n-gram computed again with the new weights.
    old_key = ngram_cache_key(tiny_teacher)
    with torch.no_grad():
        tiny_teacher.model.classifier.weight[0, 0] += 1.0
    changed = Teacher(tiny_teacher.model, tiny_teacher.tokenizer, tiny_teacher.label_names)
    assert ngram_cache_key(changed) != old_key
    third = NgramCache(changed, tmp_path)
    _, l3 = third.features(ngrams)
    assert third.computed == 3
    assert not np.allclose(l3, logits)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([old_key, ngram_cache_key(changed)])


def test_cache_follows_a_teacher_that_is_retrained_in_place(tiny_teacher):
    cache = NgramCache(tiny_teacher)
    _, before = cache.features(["good"])
    with torch.no_grad():
        tiny_teacher.model.classifier.bias[1] += 3.0
    tiny_teacher._fingerprint = None  # what Teacher.fit does after changing the weights
    _, after = cache.features(["good"])
    assert cache.computed == 2
    assert after[0, 1] == pytest.approx(before[0, 1] + 3.0, abs=1e-4)


def test_run_builder_trains_and_reloads_an_aug_student(tiny_model_dir, tmp_path):
    from conftest import make_toy_corpus, tiny_spec

    from kdcore.pipeline import build_run
    from kdcore.runs import load_run

    students = (StudentConfig(kind="aug_linear", name="aug", min_count=1),)
    path = build_run(tiny_spec("aug", tiny_model_dir, students), runs_dir=tmp_path, corpus=make_toy_corpus())
    run = load_run(path)
    assert run.info.students["aug"].kind == "aug_linear"
    assert run.info.students["aug-labels"].twin_of == "aug"
    student = run.student("aug")
    n_before = student.featurizer_.n_features
    student.predict_logits(["terrible mess of a cafe"])  # unseen n-grams: the run's teacher is loaded for them
    assert student.featurizer_.n_features > n_before
    assert "aug" in run.metrics["models"] and run.metrics["models"]["aug"]["fidelity"] is not None


def _one_at_a_time(teacher, ngram: str) -> tuple[np.ndarray, np.ndarray]:
    """The n-gram's features the plain way: [CLS] its wordpieces [SEP] alone through the teacher, mean-pooled."""
    ids = teacher.tokenizer(ngram, add_special_tokens=True)["input_ids"]
    with torch.no_grad():
        out = teacher.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return out.hidden_states[-1][0].mean(dim=0).numpy(), out.logits[0].numpy()


def test_the_batched_pass_scores_each_ngram_as_one_at_a_time(tiny_teacher):
    # Lengths from two to seven wordpieces (with [CLS] and [SEP]), repeats, and n-grams that tokenize alike
    # (case, accents and unknown characters fold to the same wordpieces).
    ngrams = ["good", "very good", "not bad at all", "fun", "good", "GOOD", "cafe", "café", "the best movie",
              "unbelievable", "$ 5", "x y < >", "☃ film", "✈ film", ",", "worst story ever told here"]
    cache = NgramCache(tiny_teacher, batch_tokens=4096)
    embeddings, logits = cache.features(ngrams)
    distinct = {tuple(tiny_teacher.tokenizer(g)["input_ids"]) for g in ngrams}
    assert cache.computed == len(distinct) < len(set(ngrams))  # each wordpiece sequence through the teacher once
    for i, ngram in enumerate(ngrams):
        embedding, logit = _one_at_a_time(tiny_teacher, ngram)
        np.testing.assert_allclose(logits[i], logit, rtol=1e-4, atol=1e-5)
        # stored as float16: equal to the plain embedding rounded the same way, within one rounding step
        np.testing.assert_allclose(embeddings[i], embedding.astype(np.float16).astype(np.float32), rtol=2e-3,
                                   atol=2e-3)
    # all in one padded batch above; each alone (no padding, no mask); and batches of one length and mixed ones
    for budget in (1, 12):
        other = NgramCache(tiny_teacher, batch_tokens=budget)
        e1, l1 = other.features(ngrams)
        np.testing.assert_allclose(l1, logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(e1, embeddings, rtol=2e-3, atol=2e-3)
    sequences = [(1, 2, 3), (1, 2), (4, 5), (1, 2, 3, 4)]
    assert cache._batches(sequences) == [[1, 2, 0, 3]]  # a few of each length: one forward pass
    assert NgramCache(tiny_teacher, batch_tokens=8)._batches(sequences) == [[1, 2], [0, 3]]
    assert NgramCache(tiny_teacher, batch_tokens=4)._batches([(1, 2)] * 3 + [(1, 2, 3)]) == [[0, 1], [2], [3]]


def test_many_small_passes_grow_one_table(tiny_teacher):
    cache = NgramCache(tiny_teacher)
    words = ["good", "bad", "fun", "dull", "film", "plot", "story", "actor", "great", "awful"]
    for i, word in enumerate(words):
        embeddings, logits = cache.features([word, *words[:i]])  # one new n-gram a call, the rest known
    assert cache.computed == len(words) and len(cache) == len(words)
    fresh_embeddings, fresh_logits = NgramCache(tiny_teacher).features(list(reversed(words)))
    np.testing.assert_allclose(cache.features(list(reversed(words)))[1], fresh_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cache.features(list(reversed(words)))[0], fresh_embeddings, rtol=2e-3, atol=2e-3)
