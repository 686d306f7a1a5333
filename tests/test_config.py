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
