"""n_steps="auto": nested Clenshaw–Curtis rules, each gradient evaluated once, no padding evaluated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdcore.attribution import explain
from kdcore.attribution.gradients import teacher_tensors
from kdcore.attribution.ig_auto import AUTO_LEVELS, clenshaw_curtis, nested_integrated_gradients
from test_attribution import TRICKY, _linear_student, lively_teacher  # noqa: F401 (fixture)


@pytest.mark.parametrize("n_points", (9,) + AUTO_LEVELS)
def test_clenshaw_curtis_rules_are_exact_for_polynomials_and_nested(n_points):
    points, weights = clenshaw_curtis(n_points)
    assert points[0] == 0 and points[-1] == pytest.approx(1) and np.all(np.diff(points) > 0)
    assert np.all(weights > 0)
    for degree in range(n_points):  # exact up to degree n_points - 1
        assert weights @ points ** degree == pytest.approx(1 / (degree + 1), rel=1e-11, abs=1e-13)
    if n_points > 9:
        coarser = clenshaw_curtis((n_points - 1) // 2 + 1)[0]
        np.testing.assert_allclose(points[::2], coarser, atol=1e-15)


def _teacher_problem(teacher, text):
    windows = teacher.encode_windows(text)
    ids, base, attention = teacher_tensors(teacher, windows, "pad")
    embeddings = teacher.model.get_input_embeddings()
    token_types = torch.zeros_like(ids)
    calls = []

    def forward(inputs_embeds, attention_mask, token_type_ids):
        calls.append(tuple(inputs_embeds.shape))
        return teacher.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).logits.float()

    with torch.no_grad():
        x, x0 = embeddings(ids), embeddings(base)
        logits = forward(torch.cat([x, x0]), torch.cat([attention, attention]), torch.cat([token_types, token_types]))
    calls.clear()
    n = len(windows)
    return forward, x, x0, (attention, token_types), logits[:n], logits[n:], calls


def test_one_level_equals_captum_with_the_same_points_and_weights(lively_teacher):
    from captum.attr import IntegratedGradients

    forward, x, x0, extra, logits, base_logits, _ = _teacher_problem(lively_teacher, TRICKY)
    target = 1
    gap = (logits[:, target] - base_logits[:, target]).double()
    points, weights = clenshaw_curtis(17)
    with torch.enable_grad():
        ours, delta, used = nested_integrated_gradients(forward, x, x0, target, extra, gap, torch.zeros(1), 64,
                                                        levels=(17,))
        (captum,) = IntegratedGradients(forward)._attribute(
            (x,), (x0,), target=target, additional_forward_args=extra, n_steps=17,
            step_sizes_and_alphas=(weights.tolist(), points.tolist()))
    assert used == 17
    np.testing.assert_allclose(ours.numpy(), captum.detach().double().numpy(), atol=1e-6)
    assert float(delta[0]) == pytest.approx(float(captum.sum()) - float(gap[0]), abs=1e-5)


def test_auto_evaluates_each_point_once_and_no_padding(lively_teacher):
    teacher = lively_teacher  # 30 wordpieces a window: this text takes two windows of different lengths
    text = " ".join(["good bad film plot fun dull story actor"] * 5)
    forward, x, x0, extra, logits, base_logits, calls = _teacher_problem(teacher, text)
    lengths = extra[0].sum(1).tolist()
    assert len(lengths) == 2 and lengths[0] != lengths[1]
    target = 0
    gap = (logits[:, target] - base_logits[:, target]).double()
    with torch.enable_grad():
        _, delta, used = nested_integrated_gradients(forward, x, x0, target, extra, gap,
                                                     torch.full((2,), 1e-12), 8, lengths=lengths)
    assert used == AUTO_LEVELS[-1]  # an unreachable tolerance climbs every level
    rows = {}
    for shape in calls:
        assert shape[1] in lengths  # each window at its own length, never padded to the longer one
        rows[shape[1]] = rows.get(shape[1], 0) + shape[0]
    assert rows == {lengths[0]: AUTO_LEVELS[-1], lengths[1]: AUTO_LEVELS[-1]}  # 129 points each, not 9+17+...


def test_auto_stops_at_the_first_level_within_tolerance(lively_teacher):
    forward, x, x0, extra, logits, base_logits, calls = _teacher_problem(lively_teacher, TRICKY)
    target = 1
    gap = (logits[:, target] - base_logits[:, target]).double()
    deltas = {}
    with torch.enable_grad():
        for level in AUTO_LEVELS[:3]:
            deltas[level] = float(nested_integrated_gradients(forward, x, x0, target, extra, gap, torch.zeros(1), 64,
                                                              levels=(level,))[1][0])
        # a tolerance just above the 33-point delta, below the 17-point one: stops at 33
        assert abs(deltas[33]) < abs(deltas[17])
        tolerance = torch.tensor([(abs(deltas[33]) + abs(deltas[17])) / 2])
        calls.clear()
        _, delta, used = nested_integrated_gradients(forward, x, x0, target, extra, gap, tolerance, 64)
    assert used == 33 and float(delta[0]) == pytest.approx(deltas[33], abs=1e-9)
    assert [shape[0] for shape in calls] == [17, 16]  # 17 points in one batch, then the 16 new ones


def test_each_window_stops_at_its_own_level(lively_teacher):
    """Two windows, one within its tolerance at 17 points and one never: the first stops at 17 (its attributions
    and delta are those of the 17-point rule alone), the second alone goes on, each level's new points only."""
    teacher = lively_teacher
    text = " ".join(["good bad film plot fun dull story actor"] * 5)
    forward, x, x0, extra, logits, base_logits, calls = _teacher_problem(teacher, text)
    lengths = extra[0].sum(1).tolist()
    target = 0
    gap = (logits[:, target] - base_logits[:, target]).double()
    with torch.enable_grad():
        alone17, delta17, _ = nested_integrated_gradients(forward, x, x0, target, extra, gap, torch.zeros(2), 64,
                                                          lengths=lengths, levels=(17,))
        alone129, delta129, _ = nested_integrated_gradients(forward, x, x0, target, extra, gap,
                                                            torch.full((2,), 1e-12), 64, lengths=lengths)
        calls.clear()
        tolerance = torch.tensor([abs(float(delta17[0])) + 1e-9, 1e-12])  # window 0 is within it at 17 points
        ours, delta, used = nested_integrated_gradients(forward, x, x0, target, extra, gap, tolerance, 64,
                                                        lengths=lengths)
    assert used == AUTO_LEVELS[-1]
    np.testing.assert_allclose(ours[0].numpy(), alone17[0].numpy(), atol=1e-9)
    np.testing.assert_allclose(ours[1].numpy(), alone129[1].numpy(), atol=1e-6)
    assert float(delta[0]) == pytest.approx(float(delta17[0]), abs=1e-9)
    assert float(delta[1]) == pytest.approx(float(delta129[1]), abs=1e-6)
    rows = {}
    for shape in calls:
        rows[shape[1]] = rows.get(shape[1], 0) + shape[0]
    assert rows == {lengths[0]: 17, lengths[1]: AUTO_LEVELS[-1]}  # window 0: 17 points; window 1: 129, once each


def test_explain_auto_keeps_completeness_and_says_how_many_points(lively_teacher):
    expl = explain(lively_teacher, TRICKY, "integrated_gradients", target=1, n_steps="auto")[0]
    note = next(w for w in expl.warnings if "chosen automatically" in w)
    assert "Clenshaw" in note
    with torch.no_grad():
        forward, x, x0, extra, logits, base_logits, _ = _teacher_problem(lively_teacher, TRICKY)
    gap = float(logits[0, 1] - base_logits[0, 1])
    assert expl.scores.sum() - gap == pytest.approx(expl.convergence_delta, abs=1e-5)
    assert abs(expl.convergence_delta) <= max(0.01, 0.05 * abs(gap))
    # the same scores as a fixed 50-step Gauss–Legendre run, to the accuracy both claim
    fixed = explain(lively_teacher, TRICKY, "integrated_gradients", target=1, n_steps=50)[0]
    assert np.abs(expl.scores - fixed.scores).max() < 0.05 * np.abs(fixed.scores).max()


def test_student_auto_is_exact_for_the_linear_student():
    student = _linear_student(ngram_max=2)
    expl = explain(student, "good fun plot", "integrated_gradients", target=1, n_steps="auto")[0]
    fixed = explain(student, "good fun plot", "integrated_gradients", target=1, n_steps=50)[0]
    np.testing.assert_allclose(expl.scores, fixed.scores, atol=1e-6)
    assert any("n_steps=17" in w for w in expl.warnings)  # linear along the path: the first level is exact
