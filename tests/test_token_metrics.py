"""Token metrics on hand-made cases with known answers (and against seqeval directly)."""

from __future__ import annotations

import numpy as np
import pytest

from kdcore.tasks.token.metrics import (bootstrap_f1_difference, decode, entity_counts, entity_scores, f1_interval,
                                  per_type_report, per_type_text, share_interval, word_fidelity)

GOLD = [["B-per", "I-per", "O", "B-loc"], ["O", "B-org", "O"], ["B-loc", "O"]]
PRED = [["B-per", "I-per", "O", "B-org"], ["O", "B-org", "O"], ["B-loc", "B-per"]]


def test_per_type_report_by_hand_and_as_seqeval():
    rows = {r["type"]: r for r in per_type_report(GOLD, PRED)}
    # per: gold 1, predicted 2 (one right) -> P 0.5 R 1; loc: gold 2, predicted 1 right -> P 1 R 0.5;
    # org: gold 1, predicted 2, one right -> P 0.5 R 1.
    assert (rows["per"]["precision"], rows["per"]["recall"], rows["per"]["support"]) == (0.5, 1.0, 1)
    assert (rows["loc"]["precision"], rows["loc"]["recall"], rows["loc"]["support"]) == (1.0, 0.5, 2)
    assert rows["org"]["f1"] == pytest.approx(2 / 3)
    assert rows["micro avg"]["precision"] == pytest.approx(3 / 5) and rows["micro avg"]["recall"] == pytest.approx(3 / 4)
    from seqeval.metrics import f1_score

    assert rows["micro avg"]["f1"] == pytest.approx(f1_score(GOLD, PRED))
    text = per_type_text(per_type_report(GOLD, PRED))
    assert "precision" in text.splitlines()[0] and "micro avg" in text and "0.500" in text


def test_entity_agreement_uses_exact_span_and_type():
    scores = entity_scores(GOLD, PRED)
    assert (scores["shared"], scores["predicted"], scores["reference"]) == (3, 5, 4)
    assert scores["f1"] == pytest.approx(2 * 3 / 9)
    # a span one word short is no match
    assert entity_scores([["B-per", "I-per"]], [["B-per", "O"]])["shared"] == 0
    assert entity_counts(GOLD, PRED).tolist() == [[1, 2, 2], [1, 1, 1], [1, 2, 1]]


def test_word_fidelity_and_decode():
    assert word_fidelity(PRED, GOLD)["word_fidelity"] == pytest.approx(7 / 9)
    names = ["O", "B-x", "I-x"]
    logits = [np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]])]  # argmax I-x I-x is invalid
    assert decode(logits, names) == [["B-x", "I-x"]]


def test_bootstrap_difference_brackets_the_estimate():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 3, size=200)
    a = np.stack([np.minimum(reference, rng.integers(0, 3, 200)), reference, reference], axis=1)
    b = np.stack([np.zeros(200, int), reference, reference], axis=1)
    result = bootstrap_f1_difference(a, b, n_boot=500)
    assert result["low"] <= result["difference"] <= result["high"]
    assert result["low"] > 0 and result["se"] > 0
    same = bootstrap_f1_difference(a, a, n_boot=100)
    assert same["difference"] == 0 and same["low"] == same["high"] == 0


def test_intervals_resample_sentences():
    counts = entity_counts(GOLD * 20, PRED * 20)
    low, high = f1_interval(counts, n_boot=500)
    assert low < entity_scores(GOLD, PRED)["f1"] < high and high - low < 0.4
    assert f1_interval(entity_counts(GOLD, GOLD)) == [1.0, 1.0]
    low, high = share_interval([3, 4, 1] * 10, [4, 4, 2] * 10, n_boot=500)
    assert low < 0.8 < high


def test_sentence_trust_units_agree_on_entities_and_take_the_weakest_word():
    from kdcore.tasks.token.trust import same_entities, sentence_candidates

    names = ["O", "B-per", "I-per"]
    sure = lambda k: np.eye(3)[k] * 6.0  # noqa: E731 - a confident row for tag k
    teacher = [np.stack([sure(1), sure(2), sure(0)]), np.stack([sure(0), sure(1)])]
    student = [np.stack([sure(1), sure(2), sure(0)]), np.stack([sure(0), sure(0)])]  # misses the second entity
    np.testing.assert_array_equal(same_entities(decode(student, names), decode(teacher, names)), [True, False])
    unsure = [np.stack([sure(1), np.array([0.0, 0.1, 0.0]), sure(0)])]
    scores = sentence_candidates(unsure)["max_probability"]
    assert scores.shape == (1,) and scores[0] < 0.4  # the unsure middle word decides the sentence
