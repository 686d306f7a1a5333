"""Explanation metrics against hand-worked examples and toy models with known probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdcore import explain_metrics as em
from kdcore.explanation import Explanation
from kdcore.words import split_words

torch.set_num_threads(1)


def _expl(text, scores, target=1, name="m"):
    words = split_words(text)
    return Explanation(text=text, words=[w.text for w in words], spans=[(w.start, w.end) for w in words],
                       scores=np.asarray(scores, dtype=float), target=target, probs=[0.5, 0.5],
                       method="integrated_gradients", model_name=name, label_names=["neg", "pos"])


class AdditiveModel:
    """p(pos) = 0.2 + 0.4 [good] + 0.3 [fun] + 0.05 [film] - 0.1 [bad] (words present)."""

    name = "additive"
    label_names = ["neg", "pos"]
    effects = {"good": 0.4, "fun": 0.3, "film": 0.05, "bad": -0.1}

    def __init__(self):
        self.calls = 0
        self.texts_seen = 0

    def predict_proba(self, texts):
        self.calls += 1
        self.texts_seen += len(texts)
        pos = np.array([0.2 + sum(self.effects.get(w.text, 0.0) for w in set(split_words(t))) for t in texts])
        return np.stack([1 - pos, pos], axis=1)


# ---------------------------------------------------------------------------------- agreement

def test_rank_correlations_by_hand():
    # ranks differ by d = (0, 1, 1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert em.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # 6 pairs, one discordant (positions 1, 2): tau = (5 - 1) / 6
    assert em.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # ties: ranks of a = (1.5, 1.5, 3, 4); centred (-1, -1, .5, 1.5) vs (-1.5, -.5, .5, 1.5):
    # sum of products 4.5, sums of squares 4.5 and 5 -> rho = 4.5 / sqrt(22.5)
    assert em.spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    # tau-b: 5 concordant, 0 discordant, 1 pair tied in a: 5 / sqrt((6 - 1) * 6)
    assert em.kendall_tau([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    assert em.spearman([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)


def test_top_k_and_sign_by_hand():
    # 10 words -> k = 2; top-2 of a = {0, 1}, of b = {0, 5}: overlap 1 / 2
    a = [9, 8, 1, 1, 1, 1, 1, 1, 1, 1]
    b = [9, 1, 1, 1, 1, 8, 1, 1, 1, 1]
    assert em.top_k_overlap(a, b) == 0.5
    # signed ranking: 3 words -> k = 1; a's top is word 2 (score 2), b's is word 0 (score 5)
    assert em.top_k_overlap([-5, 1, 2], [5, 1, 2]) == 0.0
    # word 2 is 0 in both (ignored); agree on words 0 and 4, disagree on 1 and 3 -> 0.5
    assert em.sign_agreement([1, -1, 0, 0, 2], [2, 1, 0, -1, 3]) == 0.5


def test_agreement_record_and_degenerate_cases():
    text = "good fun film bad"
    a, b = _expl(text, [4, 3, 2, 1]), _expl(text, [1, 2, 3, 4])
    result = em.agreement(a, b)
    assert result["spearman"] == pytest.approx(-1) and result["kendall"] == pytest.approx(-1)
    assert result["top_k_overlap"] == 0.0 and result["k"] == 1 and result["sign_agreement"] == 1.0
    assert result["reason"] == ""
    one = em.agreement(_expl("good", [1.0]), _expl("good", [2.0]))
    assert math.isnan(one["spearman"]) and math.isnan(one["kendall"]) and "at least 2" in one["reason"]
    assert one["top_k_overlap"] == 1.0
    flat = em.agreement(_expl(text, [1, 1, 1, 1]), b)
    assert math.isnan(flat["spearman"]) and "constant" in flat["reason"]
    zeros = em.agreement(_expl(text, [0, 0, 0, 0]), _expl(text, [0, 0, 0, 0]))
    assert math.isnan(zeros["sign_agreement"])
    empty = em.agreement(_expl("", []), _expl("", []))
    assert math.isnan(empty["spearman"]) and empty["reason"]
    with pytest.raises(ValueError, match="same words"):
        em.agreement(a, _expl("good fun", [1, 2]))


# ---------------------------------------------------------------------------------- faithfulness

def test_faithfulness_by_hand():
    model = AdditiveModel()
    # p(full) = 0.2 + 0.4 + 0.3 + 0.05 - 0.1 = 0.85; positive words by score: good, fun, bad
    expl = _expl("good fun film bad", [3, 2, -1, 0.5])
    out = em.faithfulness(model, expl, k_fraction=0.5)
    assert model.calls == 1  # everything in one batched predict call
    assert out["p_full"] == pytest.approx(0.85)
    # k = 2: rationale {good, fun}; without it p = 0.15, alone p = 0.9
    assert out["k"] == 2 and out["n_positive"] == 3
    assert out["comprehensiveness"] == pytest.approx(0.70)
    assert out["sufficiency"] == pytest.approx(-0.05)
    # AOPC bins 1, 5, 10, 20, 50% of 4 words -> k = 1, 1, 1, 1, 2
    # comp(1) = 0.85 - 0.45 = 0.40, suff(1) = 0.85 - 0.6 = 0.25
    assert out["aopc_comprehensiveness"] == pytest.approx((4 * 0.40 + 0.70) / 5)
    assert out["aopc_sufficiency"] == pytest.approx((4 * 0.25 - 0.05) / 5)
    # log-odds at k_fraction 0.5 (k = 2): logit(0.15) - logit(0.85)
    assert out["log_odds"] == pytest.approx(math.log(0.15 / 0.85) - math.log(0.85 / 0.15))
    # LOO drops (good .4, fun .3, film .05, bad -.1) vs scores (3, 2, -1, .5): only the
    # (film, bad) pair is discordant -> tau = (5 - 1) / 6
    assert out["tau_loo"] == pytest.approx(4 / 6)
    assert out["reason"] == ""
    # the single-metric helpers agree; log-odds at the default 20% (k = 1): logit(.45) - logit(.85)
    assert em.comprehensiveness(model, expl, 0.5) == pytest.approx(0.70)
    assert em.sufficiency(model, expl, 0.5) == pytest.approx(-0.05)
    assert em.log_odds(model, expl) == pytest.approx(math.log(0.45 / 0.55) - math.log(0.85 / 0.15))
    assert em.aopc_comprehensiveness(model, expl) == pytest.approx(0.46)
    assert em.aopc_sufficiency(model, expl) == pytest.approx(0.19)
    assert em.tau_loo(model, expl) == pytest.approx(4 / 6)


def test_faithfulness_caps_and_nans():
    model = AdditiveModel()
    capped = em.faithfulness(model, _expl("good fun film bad", [-1, -1, -1, 2]), k_fraction=0.5)
    assert capped["k"] == 1 and "capped" in capped["reason"]
    assert capped["comprehensiveness"] == pytest.approx(0.85 - 0.95)  # deleting "bad" raises p
    none = em.faithfulness(model, _expl("good fun", [-1, -2]))
    assert math.isnan(none["comprehensiveness"]) and math.isnan(none["aopc_sufficiency"])
    assert "no word has a positive score" in none["reason"]
    assert none["tau_loo"] == pytest.approx(1.0)  # drops (.4, .3) and scores (-1, -2): same order
    empty = em.faithfulness(model, _expl("", []))
    assert math.isnan(empty["tau_loo"]) and empty["reason"] == "the text has no words"
    with pytest.raises(ValueError, match="k_fraction"):
        em.faithfulness(model, _expl("good", [1]), k_fraction=0)


def test_deletion_curve_by_hand():
    model = AdditiveModel()
    fractions, probs = em.deletion_curve(model, _expl("good fun film bad", [3, 2, -1, 0.5]), [0, 0.5, 1])
    # delete nothing (0.85), the top 2 {good, fun} (0.15), everything (0.2)
    np.testing.assert_allclose(probs, [0.85, 0.15, 0.2])
    assert model.calls == 1 and list(fractions) == [0, 0.5, 1]


# ---------------------------------------------------------------------------------- summaries

def test_summarize_by_hand():
    records = [{"comprehensiveness": 0.5, "sufficiency": 0.1}, {"comprehensiveness": 0.1, "sufficiency": 0.4},
               {"comprehensiveness": float("nan"), "sufficiency": 0.0}, {"comprehensiveness": 0.3, "sufficiency": 0.2}]
    comp = em.summarize(records, "comprehensiveness", worst_k=2)
    assert comp["n"] == 3 and comp["mean"] == pytest.approx(0.3) and comp["median"] == pytest.approx(0.3)
    assert comp["std"] == pytest.approx(0.2)  # sample std of (.5, .1, .3)
    assert comp["worst"] == [(1, 0.1), (3, 0.3)]  # higher is better -> lowest first
    everything = em.summarize(records)
    assert everything["sufficiency"]["worst"][0] == (1, 0.4)  # lower is better -> highest first
    assert set(em.DEFINITIONS) >= set(em.FAITHFULNESS_METRICS) | set(em.AGREEMENT_METRICS)


def test_evaluate_explanations_and_summary_table(tiny_teacher):
    from kdcore.students import LinearStudent

    texts = ["good fun film", "bad boring plot", "a good plot", "boring film"]
    student = LinearStudent(weighting="count", min_count=1, max_steps=2, name="lin").fit(
        texts, labels=np.array([1, 0, 1, 0]), label_names=["neg", "pos"])
    frame = em.evaluate_explanations(tiny_teacher, [student], texts[:2], methods=("integrated_gradients", "occlusion"),
                                     n_steps=8)
    assert len(frame) == 2 * 2 * 2
    teacher_rows = frame[frame["model"] == tiny_teacher.name]
    assert teacher_rows["spearman"].isna().all()
    student_rows = frame[frame["model"] == "lin"]
    assert student_rows["sign_agreement"].notna().any()
    for index in (0, 1):  # the same target for both models on each text
        assert frame[frame["text_index"] == index]["target"].nunique() == 1
    table = em.summary_table(frame)
    assert len(table) == 4 and {"comprehensiveness_mean", "spearman_std", "n_texts"} <= set(table.columns)
    assert (table["n_texts"] == 2).all()


def test_global_word_attribution_and_weights(tiny_teacher):
    from kdcore.students import LinearStudent

    model = AdditiveModel()
    table = em.global_word_attribution(model, ["good film", "good fun", "bad film"], method="occlusion", target="pos")
    assert list(table.columns) == ["word", "mean_attribution", "count"]
    assert table.iloc[0]["word"] == "good" and table.iloc[0]["count"] == 2
    assert table.set_index("word").loc["bad", "mean_attribution"] < 0

    student = LinearStudent(ngram_max=1, weighting="count", min_count=1, max_steps=1).fit(
        ["good film", "bad film", "fun"], labels=np.array([1, 0, 1]), label_names=["neg", "pos"])
    ids = {name: i for i, name in enumerate(student.featurizer_.features_)}
    with torch.no_grad():
        weight = student.module_.bag.weight
        weight.zero_()
        for word, value in {"good": 2.0, "fun": 1.0, "film": 0.5, "bad": -1.0}.items():
            weight[ids[word], 1] = value
    frame, rho = em.weights_vs_attribution(student, table, class_index=1)
    assert set(frame["word"]) == {"good", "fun", "film", "bad"}
    assert frame.set_index("word").loc["good", "student_weight"] == 2.0
    assert rho == pytest.approx(1.0)  # same order: good > fun > film > bad


def _brute_force_ranks(values):
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    values = list(values)
    return [sum(v < w for v in values) + (sum(v == w for v in values) + 1) / 2 for w in values]


def _brute_force_spearman(x, y):
    rx, ry = np.array(_brute_force_ranks(x)), np.array(_brute_force_ranks(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / math.sqrt((rx ** 2).sum() * (ry ** 2).sum()))


def _brute_force_tau_b(x, y):
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
    s = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in pairs)
    untied_x = sum(x[i] != x[j] for i, j in pairs)
    untied_y = sum(y[i] != y[j] for i, j in pairs)
    return float(s / math.sqrt(untied_x * untied_y))


def test_rank_correlations_match_brute_force_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 25):
        for _ in range(20):
            # few distinct values, so ties are common in both vectors
            x, y = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, n).astype(float)
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                assert math.isnan(em.spearman(x, y)) and math.isnan(em.kendall_tau(x, y))
                continue
            assert em.spearman(x, y) == pytest.approx(_brute_force_spearman(x, y), abs=1e-12)
            assert em.kendall_tau(x, y) == pytest.approx(_brute_force_tau_b(x, y), abs=1e-12)


def test_rank_correlations_of_degenerate_input_are_nan_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy would warn on constant input; kd-lens checks first
        for x, y in (([1.0], [2.0]), ([], []), ([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [0, 0, 0])):
            assert math.isnan(em.spearman(x, y)) and math.isnan(em.kendall_tau(x, y))
    with pytest.raises(ValueError, match="one length"):
        em.spearman([1, 2, 3], [1, 2])
