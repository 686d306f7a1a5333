"""attribution.explain: completeness on the linear student, known answers for the perturbation
methods, and word alignment / windows / edge cases on a tiny random BERT teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdcore.attribution import (METHODS, delete_words, explain, explain_many, model_logits)
from kdcore.words import split_words

torch.set_num_threads(1)

TRICKY = "The film was unbelievable, not boringly naïve 😀 café!"


# ---------------------------------------------------------------------------------- fixtures

@pytest.fixture()
def lively_teacher(tiny_teacher):
    """The tiny teacher with larger random weights, so that words change its logits."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in tiny_teacher.model.named_parameters():
            if "LayerNorm" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    tiny_teacher._fingerprint = None
    return tiny_teacher


def _linear_student(ngram_max=1, seed=0):
    from kdcore.students import LinearStudent

    texts = ["good film", "bad film", "good fun film", "bad boring plot", "fun plot", "good good fun",
             "boring bad film", "a good plot"]
    labels = np.array([1, 0, 1, 0, 1, 1, 0, 1])
    student = LinearStudent(ngram_max=ngram_max, weighting="count", min_count=1, max_steps=1).fit(
        texts, labels=labels, label_names=["neg", "pos"])
    # Hand-set weights (random but fixed) so every feature matters.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        student.module_.bag.weight.copy_(torch.randn(student.module_.bag.weight.shape, generator=generator))
        student.module_.bias.copy_(torch.tensor([0.3, -0.2]))
    return student


class GoodModel:
    """A model whose prediction depends only on whether the word "good" is present."""

    name = "good-detector"
    label_names = ["neg", "pos"]

    def __init__(self):
        self.calls = 0

    def predict_proba(self, texts):
        self.calls += 1
        present = np.array([any(w.text == "good" for w in split_words(t)) for t in texts])
        return np.where(present[:, None], [[0.1, 0.9]], [[0.8, 0.2]])


# ---------------------------------------------------------------------------------- delete_words

@pytest.mark.parametrize("text", [TRICKY, "Don't!  stop\tnow", "a  b\nc", "(x)-y"])
def test_delete_words_keeps_exactly_the_kept_words(text):
    words = split_words(text)
    spans = [(w.start, w.end) for w in words]
    rng = np.random.default_rng(0)
    for _ in range(20):
        keep = rng.random(len(words)) < 0.5
        result = delete_words(text, spans, keep)
        assert [w.text for w in split_words(result)] == [w.text for w, k in zip(words, keep) if k]
    assert delete_words(text, spans, [True] * len(words)) == text.strip()
    assert delete_words(text, spans, [False] * len(words)) == ""


def test_delete_words_never_fuses_neighbours():
    text = "Don't"  # don ' t: deleting the apostrophe must not give "dont"
    spans = [(w.start, w.end) for w in split_words(text)]
    assert delete_words(text, spans, [True, False, True]) == "Don t"
    assert delete_words("good,  bad", [(0, 4), (4, 5), (7, 10)], [True, False, True]) == "good  bad"


# ---------------------------------------------------------------------------------- students

def test_linear_student_ig_equals_weight_times_count():
    student = _linear_student(ngram_max=1)
    text = "good good fun film, bad!"  # "good" twice, "," and "!" unknown
    ids = {name: i for i, name in enumerate(student.featurizer_.features_)}
    weights = student.coef_
    words = [w.text for w in split_words(text)]
    for target in (0, 1):
        for method in ("integrated_gradients", "gradient_x_input"):
            expl = explain(student, text, method, target=target, n_steps=7)[0]
            assert expl.words == words and expl.target == target
            for word in set(words):
                positions = [i for i, w in enumerate(words) if w == word]
                expected = weights[ids[word], target] * len(positions) if word in ids else 0.0
                assert abs(expl.scores[positions].sum() - expected) < 1e-5, (method, word)
        ig = explain(student, text, "integrated_gradients", target=target)[0]
        assert abs(ig.convergence_delta) < 1e-5


def test_linear_student_bigrams_split_between_their_words():
    student = _linear_student(ngram_max=2)
    ids = {name: i for i, name in enumerate(student.featurizer_.features_)}
    w = student.coef_[:, 1]
    expl = explain(student, "good fun film", "integrated_gradients", target="pos")[0]
    bigram = lambda a, b: w[ids[f"{a} {b}"]] if f"{a} {b}" in ids else 0.0  # noqa: E731
    expected = [w[ids["good"]] + bigram("good", "fun") / 2,
                w[ids["fun"]] + bigram("good", "fun") / 2 + bigram("fun", "film") / 2,
                w[ids["film"]] + bigram("fun", "film") / 2]
    np.testing.assert_allclose(expl.scores, expected, atol=1e-5)
    logits = student.predict_logits(["good fun film"])[0]
    assert abs(expl.scores.sum() - (logits[1] - student.bias_[1])) < 1e-5
    np.testing.assert_allclose(expl.probs, student.predict_proba(["good fun film"])[0], atol=1e-6)


def test_student_with_no_known_word_gets_zeros_and_a_warning():
    student = _linear_student()
    expl = explain(student, "zebra xylophone", "integrated_gradients")[0]
    assert expl.words == ["zebra", "xylophone"]
    assert np.all(expl.scores == 0) and any("vocabulary" in w for w in expl.warnings)


def test_mlp_student_ig_is_complete():
    from kdcore.students import MLPStudent

    texts = ["good film", "bad film", "good fun film", "bad boring plot", "fun plot", "boring bad"]
    student = MLPStudent(weighting="count", min_count=1, max_steps=3, hidden_size=8).fit(
        texts, labels=np.array([1, 0, 1, 0, 1, 0]), label_names=["neg", "pos"])
    expl = explain(student, "good fun plot", "integrated_gradients", target=1, n_steps=64)[0]
    empty_logit = student.predict_logits([""])[0][1]
    full_logit = student.predict_logits(["good fun plot"])[0][1]
    assert abs(expl.scores.sum() - (full_logit - empty_logit)) <= abs(expl.convergence_delta) + 1e-4


# ---------------------------------------------------------------------------------- perturbation

@pytest.mark.parametrize("method", ["occlusion", "lime", "shapley_sampling"])
def test_perturbation_methods_find_the_only_word_that_matters(method):
    model = GoodModel()
    text = "the plot is good but the film is long"
    expl = explain(model, text, method, target="pos")[0]
    good = expl.words.index("good")
    assert expl.target == 1 and expl.model_name == "good-detector"
    assert int(np.argmax(expl.scores)) == good
    others = np.delete(expl.scores, good)
    jump = np.log(0.9) - np.log(0.2)  # log p is the logit vector of a predict_proba-only model
    if method == "lime":
        assert expl.scores[good] > 0.5 * jump and np.abs(others).max() < 0.1 * expl.scores[good]
    else:  # leave-one-out and Shapley values are exact here
        assert abs(expl.scores[good] - jump) < 1e-6 and np.abs(others).max() < 1e-6


def test_perturbation_batches_predict_calls_and_is_seeded():
    model = GoodModel()
    text = "good " * 30
    a = explain(model, text, "shapley_sampling", n_samples=4)[0]
    # one call for the text, then one per Captum forward (perturbations_per_eval=256 rows)
    assert model.calls <= 1 + 4 * 30 // 256 + 2
    b = explain(model, text, "shapley_sampling", n_samples=4)[0]
    np.testing.assert_array_equal(a.scores, b.scores)


def test_gradient_methods_refuse_foreign_models():
    with pytest.raises(ValueError, match="occlusion"):
        explain(GoodModel(), "good", "integrated_gradients")


# ---------------------------------------------------------------------------------- teacher

def _wordpiece_reference(teacher, text, target, n_steps=50):
    """Captum LayerIntegratedGradients per wordpiece, summed into words with the tokenizer's word_ids."""
    from captum.attr import LayerIntegratedGradients

    encoded = teacher.tokenizer(text, return_tensors="pt")
    ids = encoded["input_ids"]
    baseline = ids.clone()
    baseline[0, 1:-1] = teacher.tokenizer.pad_token_id

    def forward(input_ids):
        return teacher.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits

    lig = LayerIntegratedGradients(forward, teacher.model.get_input_embeddings())
    attributions, delta = lig.attribute(ids, baselines=baseline, target=target, n_steps=n_steps,
                                        return_convergence_delta=True)
    pieces = attributions.sum(-1)[0].detach().numpy()
    words = np.zeros(len(split_words(text)))
    for position, word in enumerate(encoded.word_ids()):
        if word is not None:
            words[word] += pieces[position]
    with torch.no_grad():
        gap = (forward(ids) - forward(baseline))[0, target].item()
    return words, gap


def test_teacher_ig_aligns_words_and_matches_layer_ig(lively_teacher):
    teacher = lively_teacher
    expl = explain(teacher, TRICKY, "integrated_gradients", target=1)[0]
    assert [TRICKY[a:b] for a, b in expl.spans] == ["The", "film", "was", "unbelievable", ",", "not", "boringly",
                                                     "naïve", "😀", "café", "!"]
    assert expl.words == ["the", "film", "was", "unbelievable", ",", "not", "boringly", "naive", "😀", "cafe", "!"]
    # the tiny vocabulary splits these words into several wordpieces
    assert teacher.tokenizer.tokenize("unbelievable boringly") == ["un", "##believable", "boring", "##ly"]
    reference, gap = _wordpiece_reference(teacher, TRICKY, target=1)
    np.testing.assert_allclose(expl.scores, reference, atol=1e-4)
    assert np.isfinite(expl.convergence_delta)
    assert abs(expl.scores.sum() - gap) <= abs(expl.convergence_delta) + 1e-4
    assert np.abs(expl.scores).max() > 1e-3  # the check above is not trivially about zeros
    np.testing.assert_allclose(expl.probs, teacher.predict_proba([TRICKY], use_cache=False)[0], atol=1e-5)
    assert expl.method == "integrated_gradients" and expl.model_name == teacher.name
    assert expl.label_names == ["neg", "pos"] and expl.warnings == []


def test_teacher_gradient_x_input_and_targets(lively_teacher):
    teacher = lively_teacher
    predicted = int(np.argmax(teacher.predict_proba([TRICKY], use_cache=False)[0]))
    default = explain(teacher, TRICKY, "gradient_x_input")[0]
    assert default.target == predicted and len(default.scores) == len(split_words(TRICKY))
    by_name = explain(teacher, TRICKY, "gradient_x_input", target="pos")[0]
    by_index = explain(teacher, TRICKY, "gradient_x_input", target=1)[0]
    np.testing.assert_allclose(by_name.scores, by_index.scores)
    with pytest.raises(ValueError, match="not a label"):
        explain(teacher, TRICKY, target="maybe")
    with pytest.raises(ValueError, match="out of range"):
        explain(teacher, TRICKY, target=5)
    with pytest.raises(ValueError, match="choose one of"):
        explain(teacher, TRICKY, method="saliency")
    with pytest.raises(ValueError, match="Unknown explain option"):
        explain(teacher, TRICKY, nsteps=3)


def test_teacher_auto_steps_reports_the_choice(lively_teacher):
    expl = explain(lively_teacher, TRICKY, "integrated_gradients", n_steps="auto")[0]
    assert any("chosen automatically" in w for w in expl.warnings)
    tight = explain(lively_teacher, TRICKY, "integrated_gradients", n_steps=2, ig_method="riemann_right",
                    delta_rtol=0.0, delta_atol=1e-9)[0]
    assert any("did not converge" in w for w in tight.warnings)


def test_long_text_is_explained_window_by_window(lively_teacher):
    teacher = lively_teacher  # max_length 32 -> 30 wordpieces a window, stride 8
    vocabulary = "good bad film plot fun dull story actor".split()
    words = [vocabulary[i % len(vocabulary)] if i % 3 else "the" for i in range(40)]
    text = " ".join(words)
    expl = explain(teacher, text, "integrated_gradients", target=0)[0]
    assert len(teacher.encode_windows(text)) == 2
    assert expl.words == words and any("explained in 2 windows" in w for w in expl.warnings)
    # Windows cover wordpieces [0, 30) and [22, 40): words 0..25 are most central in the first
    # window, which is exactly the window of the 30-word prefix explained on its own.
    prefix = explain(teacher, " ".join(words[:30]), "integrated_gradients", target=0)[0]
    np.testing.assert_allclose(expl.scores[:26], prefix.scores[:26], atol=1e-5)
    assert np.all(np.isfinite(expl.scores))


@pytest.mark.parametrize("n_steps", [32, "auto"])
def test_long_text_reports_progress_group_by_group_and_scores_the_same(lively_teacher, n_steps):
    """The progress callback sees (0, n), then each group of windows, ending at (n, n); the scores are those of the
    windows explained one by one (each window on its own, the convergence delta the worst window's)."""
    from kdcore.attribution.gradients import window_groups

    teacher = lively_teacher
    vocabulary = "good bad film plot fun dull story actor".split()
    text = " ".join(vocabulary[i % len(vocabulary)] if i % 3 else "the" for i in range(130))
    n_windows = len(teacher.encode_windows(text))
    seen: list[tuple[int, int]] = []
    expl = explain(teacher, text, "integrated_gradients", target=0, n_steps=n_steps, internal_batch_size=64,
                   progress=lambda done, total: seen.append((done, total)))[0]
    groups = window_groups(n_windows, {"n_steps": n_steps, "internal_batch_size": 64})
    assert n_windows >= 4 and len(groups) >= 2
    assert seen[0] == (0, n_windows) and seen[-1] == (n_windows, n_windows)
    assert [done for done, _ in seen] == [0, *np.cumsum([len(g) for g in groups]).tolist()]
    one_by_one = explain(teacher, text, "integrated_gradients", target=0, n_steps=n_steps, internal_batch_size=1)[0]
    assert len(window_groups(n_windows, {"n_steps": n_steps, "internal_batch_size": 1})) == n_windows
    np.testing.assert_allclose(expl.scores, one_by_one.scores, atol=1e-5)
    assert expl.convergence_delta == pytest.approx(one_by_one.convergence_delta, abs=1e-5)
    assert sum("chosen automatically" in w for w in expl.warnings) == (n_steps == "auto")


@pytest.mark.parametrize("method", METHODS)
def test_empty_and_one_word_texts(lively_teacher, method):
    for text in ("", "   \n"):
        expl = explain(lively_teacher, text, method)[0]
        assert expl.words == [] and len(expl.scores) == 0 and expl.warnings
        assert expl.probs.shape == (2,) and abs(expl.probs.sum() - 1) < 1e-6
    one = explain(lively_teacher, "good", method, target=1)[0]
    assert one.words == ["good"] and one.spans == [(0, 4)] and np.isfinite(one.scores).all()
    if method == "occlusion":
        logits = model_logits(lively_teacher, ["good", ""])
        assert abs(one.scores[0] - (logits[0, 1] - logits[1, 1])) < 1e-5


def test_explain_list_and_explain_many_share_the_target(lively_teacher):
    student = _linear_student()
    texts = ["good fun film", "bad boring plot"]
    assert [e.text for e in explain(student, texts, "occlusion")] == texts
    results = explain_many([lively_teacher, student], "good fun film", "integrated_gradients")
    assert list(results) == [lively_teacher.name, student.name]
    teacher_class = int(np.argmax(lively_teacher.predict_proba(["good fun film"], use_cache=False)[0]))
    assert {e.target for e in results.values()} == {teacher_class}
    assert results[lively_teacher.name].spans == results[student.name].spans
    keyed = explain_many({"t": lively_teacher, "s": student}, "good fun film", "occlusion", target="neg")
    assert {e.target for e in keyed.values()} == {0}


def test_teacher_without_token_type_ids(tiny_teacher):
    """A DistilBERT-style encoder (no token_type_ids argument) is explained too."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from kdcore.teacher import Teacher

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=len(tiny_teacher.tokenizer), dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                              max_position_embeddings=64, num_labels=2, initializer_range=0.3)
    teacher = Teacher(DistilBertForSequenceClassification(config).eval(), tiny_teacher.tokenizer, ["neg", "pos"],
                      config=tiny_teacher.config, name="distil", device="cpu")
    expl = explain(teacher, "good fun film", "integrated_gradients", target=1)[0]
    reference, gap = _wordpiece_reference(teacher, "good fun film", target=1)
    np.testing.assert_allclose(expl.scores, reference, atol=1e-4)
    assert abs(expl.scores.sum() - gap) <= abs(expl.convergence_delta) + 1e-4


def test_lime_surrogate_is_sklearn_ridge_with_the_kernel_weights():
    # LIME (the lime package, Captum's SkLearnRidge) fits Ridge(alpha=1) with
    # sample_weight = kernel weights: sum_i w_i (y_i - x_i b - c)^2 + alpha ||b||^2.
    from sklearn.linear_model import Ridge

    from kdcore.attribution import _WeightedRidge

    rng = np.random.default_rng(0)
    x = (rng.random((60, 5)) > 0.5).astype(np.float64)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(0.0, 0.3, 60)
    w = np.exp(-rng.random(60))  # kernel weights in (0, 1], as LIME's exponential kernel gives
    for alpha in (1.0, 5.0):
        reference = Ridge(alpha=alpha).fit(x, y, sample_weight=w)
        batches = [(torch.tensor(x[i:i + 16]), torch.tensor(y[i:i + 16]), torch.tensor(w[i:i + 16]))
                   for i in range(0, 60, 16)]  # Captum hands the samples over in batches
        surrogate = _WeightedRidge(alpha)
        surrogate.fit(batches)
        np.testing.assert_allclose(surrogate.representation()[0].numpy(), reference.coef_, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(surrogate.intercept_), reference.intercept_, rtol=1e-6, atol=1e-8)
