"""The 95% intervals shown beside every share and agreement (kdcore.intervals)."""

import numpy as np
import pytest

from kdcore import metrics as M
from kdcore.intervals import bootstrap, bootstrap_mean, format_interval, paired_difference, wilson


def test_wilson_known_values():
    # Published values of the Wilson score interval at 95%.
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    low, high = wilson(0, 0)
    assert np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="0..n"):
        wilson(11, 10)


def test_wilson_narrows_with_more_texts():
    small, large = wilson(240, 300), wilson(2400, 3000)
    assert small[0] < large[0] < 0.8 < large[1] < small[1]


def test_bootstrap_mean_matches_the_normal_approximation_on_a_large_sample():
    values = np.array([0.0, 1.0] * 200)  # mean 0.5, standard error 0.025
    low, high = bootstrap_mean(values)
    assert low == pytest.approx(0.5 - 1.96 * 0.025, abs=0.01) and high == pytest.approx(0.5 + 1.96 * 0.025, abs=0.01)
    assert bootstrap_mean(values) == (low, high)  # fixed seed: the same run shows the same interval
    assert bootstrap_mean([0.3] * 20) == pytest.approx((0.3, 0.3))
    # NaN values are left out, not counted as zeros
    assert bootstrap_mean([0.3, float("nan")] * 10) == pytest.approx((0.3, 0.3))


def test_bootstrap_and_bootstrap_mean_make_the_same_draws():
    values = np.random.default_rng(3).random(50)
    assert bootstrap(lambda idx: float(values[idx].mean()), values.size) == pytest.approx(bootstrap_mean(values))


def test_paired_difference_keeps_pairs_together():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.85
    b = a.copy()
    b[:30] = ~b[:30]  # the twin differs on 30 texts
    out = paired_difference(a, b)
    assert out["difference"] == pytest.approx((a[:30].sum() - b[:30].sum()) / 300)
    assert out["ci"][0] <= out["difference"] <= out["ci"][1]
    same = paired_difference(a, a)
    assert same["difference"] == 0 and same["ci"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="length"):
        paired_difference(a, b[:-1])


def test_macro_f1_interval_uses_the_same_definition():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.7, y, rng.integers(0, 3, 200))
    assert M._fast_macro_f1(y, pred, 3) == pytest.approx(M.macro_f1(y, pred, 3))
    low, high = M.macro_f1_interval(y, pred, 3)
    assert low < M.macro_f1(y, pred, 3) < high


def test_format_interval():
    assert format_interval([0.81234, 0.85678]) == "0.812–0.857"
    assert format_interval(None) == "" and format_interval([float("nan"), 1.0]) == ""
