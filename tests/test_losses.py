"""Losses against values computed by hand on two-class examples."""

import math

import pytest
import torch

from kdcore.losses import LOSSES, attr_match, compute_loss, feature_align, hard_ce, kd_kl, kd_mse

torch.set_num_threads(1)


def test_kd_kl_hand_value_temperature_one():
    # teacher logits [ln 3, 0] -> p_t = [0.75, 0.25]; student [0, 0] -> p_s = [0.5, 0.5]
    # KL(p_t || p_s) = 0.75 ln(0.75/0.5) + 0.25 ln(0.25/0.5) = 0.130812...
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert expected == pytest.approx(0.1308120, abs=1e-6)
    assert kd_kl(student, teacher, temperature=1.0).item() == pytest.approx(expected, rel=1e-5)


def test_kd_kl_hand_value_temperature_two_and_batch_mean():
    # T = 2: teacher logits / 2 = [ln 3 / 2, 0] -> p_t = [sqrt3 / (sqrt3 + 1), 1 / (sqrt3 + 1)]
    #        = [0.6339746, 0.3660254]; student uniform. Loss = T^2 * KL, the second row (student ==
    # teacher) contributes 0, and the batch mean halves the first row's value.
    p1 = math.sqrt(3) / (math.sqrt(3) + 1)
    kl = p1 * math.log(p1 / 0.5) + (1 - p1) * math.log((1 - p1) / 0.5)
    assert 4 * kl == pytest.approx(0.1453631, abs=1e-6)
    student = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0], [1.0, -1.0]])
    assert kd_kl(student, teacher, temperature=2.0).item() == pytest.approx(4 * kl / 2, rel=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 7.0])
def test_kd_kl_gradient_vanishes_when_student_equals_teacher(temperature):
    teacher = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    student = teacher.clone().requires_grad_(True)
    loss = kd_kl(student, teacher, temperature)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    # float32 rounding of the two softmaxes, scaled by T, stays far below a real gradient
    assert torch.allclose(student.grad, torch.zeros_like(student), atol=1e-6)
    # A student that is off gets a non-zero gradient (so the check above can fail).
    other = (teacher + torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])).requires_grad_(True)
    kd_kl(other, teacher, temperature).backward()
    assert other.grad.abs().max() > 1e-3


def test_kd_kl_is_non_negative_and_shift_invariant():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        student = torch.randn(4, 3, generator=generator) * 3
        teacher = torch.randn(4, 3, generator=generator) * 3
        assert kd_kl(student, teacher, 2.0).item() >= 0.0
    teacher = torch.tensor([[1.0, 2.0]])
    assert kd_kl(teacher + 5.0, teacher).item() == pytest.approx(0.0, abs=1e-6)


def test_kd_kl_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        kd_kl(torch.zeros(1, 2), torch.zeros(1, 2), temperature=0.0)


def test_kd_mse_hand_value():
    # ((1 - 0)^2 + (2 - 4)^2) / 2 = 2.5
    assert kd_mse(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])).item() == pytest.approx(2.5)


def test_hard_ce_hand_value_and_ignores_unlabelled():
    # logits [0, ln 3] -> p = [0.25, 0.75]; label 1 -> -ln 0.75 = 0.2876821
    logits = torch.tensor([[0.0, math.log(3.0)], [5.0, -5.0]])
    assert hard_ce(logits[:1], torch.tensor([1])).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    # The second row is unlabelled (-1): same value as the first row alone.
    assert hard_ce(logits, torch.tensor([1, -1])).item() == pytest.approx(0.2876821, rel=1e-5)
    # Labelled as 1 instead, the second row (p = 4.5e-5) would raise the mean a lot.
    assert hard_ce(logits, torch.tensor([1, 1])).item() > 4.0


def test_hard_ce_with_no_labels_is_zero_and_backpropagates():
    logits = torch.tensor([[1.0, 2.0]], requires_grad=True)
    loss = hard_ce(logits, torch.tensor([-1]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_feature_align_hand_value():
    projection = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        projection.weight.copy_(torch.tensor([[1.0, 1.0]]))
    # projection([1, 2]) = 3, teacher 5 -> (3 - 5)^2 = 4
    assert feature_align(torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0]]), projection).item() == pytest.approx(4.0)
    assert feature_align(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 4.0]])).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="projection"):
        feature_align(torch.zeros(1, 2), torch.zeros(1, 3))


def test_attr_match_hand_value_mask_and_scale_invariance():
    # Masked to the first two words: student [1, 0], teacher [1, 1] -> cos = 1/sqrt(2)
    # -> 1 - 0.7071068 = 0.2928932 (the padded third word is ignored).
    student = torch.tensor([[1.0, 0.0, 9.0]])
    teacher = torch.tensor([[1.0, 1.0, -7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert attr_match(student, teacher, mask).item() == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-6)
    assert attr_match(student * 50, teacher * 0.1, mask).item() == pytest.approx(0.2928932, rel=1e-5)
    # Same pattern -> 0; opposite -> 2; a text with no words is left out of the mean.
    pair = torch.tensor([[1.0, -2.0], [3.0, 1.0]])
    assert attr_match(pair, 2 * pair).item() == pytest.approx(0.0, abs=1e-6)
    assert attr_match(pair, -pair).item() == pytest.approx(2.0, abs=1e-6)
    two = torch.tensor([[1.0, 0.0], [5.0, 5.0]])
    assert attr_match(two, torch.tensor([[0.0, 1.0], [1.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, 0.0]])).item() == pytest.approx(1.0)


def test_attr_match_gradient_moves_student_towards_teacher():
    student = torch.tensor([[1.0, 0.0]], requires_grad=True)
    attr_match(student, torch.tensor([[0.0, 1.0]])).backward()
    assert student.grad[0, 1] < 0  # gradient descent raises the second word's score


def test_compute_loss_weights_and_logs_unweighted_parts():
    parts = {"kd_kl": torch.tensor(2.0, requires_grad=True), "hard_ce": torch.tensor(3.0), "attr_match": torch.tensor(9.0)}
    total, logged = compute_loss(parts, {"kd_kl": 0.5, "hard_ce": 2.0, "attr_match": 0.0})
    assert total.item() == pytest.approx(0.5 * 2 + 2.0 * 3)
    assert logged == {"kd_kl": 2.0, "hard_ce": 3.0, "attr_match": 9.0}
    total.backward()
    assert parts["kd_kl"].grad.item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="weight"):
        compute_loss({"kd_kl": torch.tensor(1.0)}, {})


def test_losses_table():
    assert set(LOSSES) == {"kd_kl", "kd_mse", "hard_ce", "feature_align", "attr_match"}
    assert LOSSES["kd_kl"] is kd_kl


def test_attr_match_gradient_is_bounded_at_all_zero_student_scores():
    # A zero-initialised linear student's word scores are exactly zero; dividing them by
    # their norm clamped at 1e-12 gave a gradient of ~5e11.
    student = torch.zeros(2, 3, requires_grad=True)
    loss = attr_match(student, torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]))
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    assert torch.isfinite(student.grad).all() and 0 < student.grad.abs().max() < 1e3
    assert student.grad[0, 0] < 0 and student.grad[1, 1] < 0  # still towards the teacher's pattern
