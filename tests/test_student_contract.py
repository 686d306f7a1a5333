"""One contract over every student kind (as scikit-learn's check_estimator): whatever a kind
adds, it fits, predicts, saves and explains the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdcore.attribution import explain
from kdcore.config import StudentConfig
from kdcore.students import STUDENT_CLASSES, load_student, make_student
from kdcore.students.token import TOKEN_KINDS
from kdcore.students.window import word_slots

torch.set_num_threads(1)

TEXTS = ["good fun film", "a great good plot", "fun and great", "loved the good cast",
         "bad boring film", "an awful bad plot", "boring and awful", "hated the bad cast"]
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])
PROBE = TEXTS[:3] + ["unknown words only", "good but boring"]
# The token students read words in context (slots) and label each word: the same texts as words,
# each word labelled with its text's class.
TEXT_KINDS = sorted(set(STUDENT_CLASSES) - set(TOKEN_KINDS))


def _inputs(kind: str, texts):
    return word_slots([t.split() for t in texts]) if kind in TOKEN_KINDS else texts


def _fit(kind: str, teacher):
    student = make_student(StudentConfig(kind=kind, min_count=1, hidden_size=8, max_steps=30, batch_size=4))
    assert type(student) is STUDENT_CLASSES[kind]
    if hasattr(student, "use_teacher"):  # a kind that reads the teacher's view of its n-grams
        student.use_teacher(teacher)
    labels = np.repeat(LABELS, [len(t.split()) for t in TEXTS]) if kind in TOKEN_KINDS else LABELS
    fitted = student.fit(_inputs(kind, TEXTS), labels=labels, label_names=["neg", "pos"])
    assert fitted is student  # fit returns self
    return student


@pytest.mark.parametrize("kind", sorted(STUDENT_CLASSES))
def test_fit_predict_proba_and_learned_state(kind, tiny_teacher):
    student = _fit(kind, tiny_teacher)
    probe = _inputs(kind, PROBE)
    proba = student.predict_proba(probe)
    assert proba.shape == (len(probe), 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(student.predict(probe), student.predict_logits(probe).argmax(axis=1))
    for name in ("featurizer_", "module_", "history_", "n_nonzero_", "converged_"):
        assert hasattr(student, name), name


@pytest.mark.parametrize("kind", sorted(STUDENT_CLASSES))
def test_save_load_gives_identical_outputs(kind, tmp_path, tiny_teacher):
    student = _fit(kind, tiny_teacher)
    loaded = load_student(student.save(tmp_path / kind))
    if hasattr(loaded, "use_teacher"):
        loaded.use_teacher(tiny_teacher)
    assert type(loaded) is type(student) and loaded.config == student.config
    probe = _inputs(kind, PROBE)
    np.testing.assert_array_equal(loaded.predict_logits(probe), student.predict_logits(probe))
    assert loaded.converged_ == student.converged_


@pytest.mark.parametrize("kind", sorted(STUDENT_CLASSES))
def test_training_is_deterministic_under_a_seed(kind, tiny_teacher):
    first, second = _fit(kind, tiny_teacher), _fit(kind, tiny_teacher)
    for (name, a), (_, b) in zip(first.module_.state_dict().items(), second.module_.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("kind", TEXT_KINDS)  # token students: exact word contributions, tests/test_token_models.py
def test_integrated_gradients_explanations_are_complete(kind, tiny_teacher):
    student = _fit(kind, tiny_teacher)
    text = "good fun but boring plot"
    expl = explain(student, text, "integrated_gradients", target=1, n_steps=64)[0]
    gap = student.predict_logits([text])[0, 1] - student.predict_logits([""])[0, 1]
    if hasattr(student, "bias_"):  # linear kinds, exact: word scores sum to the target logit minus the bias
        np.testing.assert_allclose(expl.scores.sum(), student.predict_logits([text])[0, 1] - student.bias_[1],
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expl.scores.sum(), gap, rtol=1e-2, atol=1e-3)
