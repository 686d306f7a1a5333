"""Config dataclasses reject nonsense with a message that names the fix, and round-trip."""

import pytest

from kdcore.config import DistillConfig, StudentConfig, TeacherConfig, config_from_dict


@pytest.mark.parametrize("make, match", [
    (lambda: StudentConfig(kind="forest"), "choose one of linear, mlp"),
    (lambda: StudentConfig(weighting="bm25"), "choose one of count, log, tfidf"),
    (lambda: StudentConfig(ngram_max=4), "ngram_max must be 1, 2 or 3"),
    (lambda: StudentConfig(dropout=1.0), "dropout"),
    (lambda: DistillConfig(loss="ratio"), "choose one of kd_kl, kd_mse, hard_ce"),
    (lambda: DistillConfig(temperature=0), "temperature must be > 0"),
    (lambda: DistillConfig(alpha=1.5), "alpha must be in"),
    (lambda: DistillConfig(mask_prob=-0.1), "mask_prob"),
    (lambda: TeacherConfig(stride=200), "stride"),
    (lambda: TeacherConfig(batch_size=0), "batch_size must be > 0"),
])
def test_bad_values_say_what_to_do(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_round_trip_and_unknown_fields():
    config = DistillConfig(loss="kd_mse", alpha=0.3)
    assert config_from_dict("distill", config.to_dict()) == config
    assert StudentConfig(kind="mlp").name == "mlp"
    with pytest.raises(ValueError, match="no field"):
        TeacherConfig.from_dict({"epochs": 1, "colour": "red"})


def test_small_data_gets_at_least_min_steps_of_fine_tuning():
    from kdcore.config import MIN_TEACHER_STEPS

    config = TeacherConfig()  # 1.5 epochs of 32, at least MIN_TEACHER_STEPS, at most 450
    assert config.planned_steps(739) == MIN_TEACHER_STEPS  # 1.5 epochs would be 36 steps
    assert config.planned_steps(10_202) == 450  # 479 by epochs, capped
    assert config.planned_steps(8_000) == max(375, MIN_TEACHER_STEPS)
    assert TeacherConfig(min_steps=0).planned_steps(739) == 36
    assert TeacherConfig(max_steps=100).planned_steps(739) == 100  # the cap wins over the floor
    assert TeacherConfig(epochs=0).planned_steps(739) == 0  # no fine-tuning stays none
    with pytest.raises(ValueError, match="min_steps must be >= 0"):
        TeacherConfig(min_steps=-1)
