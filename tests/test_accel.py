"""Device settings of the teacher: CPU behaviour unchanged; the GPU's batch shapes checked on the CPU."""

import numpy as np
import pytest
import torch

from kdcore import accel


def test_cpu_keeps_float32_and_fixed_batches():
    cpu = torch.device("cpu")
    assert not accel.uses_bf16(cpu) and not accel.uses_bf16(cpu, "fp32")
    assert isinstance(accel.autocast(cpu), type(accel.autocast(cpu, "fp32")))
    assert accel.token_budget(cpu, 384, 1536) is None
    order = [4, 0, 3, 1, 2]
    assert list(accel.length_batches(order, [5, 1, 2, 3, 4], 2, None)) == [[4, 0], [3, 1], [2]]
    with pytest.raises(ValueError, match="choose one of auto, fp32"):
        accel.uses_bf16(cpu, "fp16")


def test_token_budget_batches_hold_every_window_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 130, size=500).tolist()
    order = sorted(range(500), key=lengths.__getitem__)
    batches = list(accel.length_batches(order, lengths, 64, budget=2048))
    assert [i for b in batches for i in b] == order
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 2048 or len(batch) == 1
    # short windows travel in larger batches than long ones
    assert len(batches[0]) > len(batches[-1])
    assert list(accel.length_batches([0], [5000], 8, budget=100)) == [[0]]  # a window over the budget goes alone


def test_length_grouped_order_is_a_shuffled_permutation_of_similar_lengths():
    rng = np.random.default_rng(1)
    n, batch = 1000, 16
    lengths = rng.integers(5, 120, size=n)
    permutation = rng.permutation(n)
    grouped = accel.length_grouped_order(permutation, lengths, batch, np.random.default_rng(2))
    assert sorted(grouped.tolist()) == list(range(n))
    blocks = [grouped[k:k + batch] for k in range(0, n, batch)]
    spread = np.mean([np.ptp(lengths[b]) for b in blocks])
    random_spread = np.mean([np.ptp(lengths[permutation[k:k + batch]]) for k in range(0, n, batch)])
    assert spread < random_spread / 5
    first_lengths = [lengths[b].min() for b in blocks[:-1]]
    assert not np.all(np.diff(first_lengths) >= 0)  # batches are not in length order
    again = accel.length_grouped_order(permutation, lengths, batch, np.random.default_rng(2))
    np.testing.assert_array_equal(grouped, again)


def test_sdpa_is_asked_for_and_the_models_own_attention_used_when_missing():
    calls = []

    def loader(source, **kwargs):
        calls.append(kwargs.get("attn_implementation"))
        if kwargs.get("attn_implementation") == "sdpa":
            raise ValueError("FooModel does not support an attention implementation through "
                             "torch.nn.functional.scaled_dot_product_attention yet.")
        return "model"

    assert accel.load_with_sdpa(loader, "x") == "model" and calls == ["sdpa", None]

    def broken(source, **kwargs):
        raise ValueError("no config.json")

    with pytest.raises(ValueError, match="no config.json"):
        accel.load_with_sdpa(broken, "x")


def test_teacher_on_cpu_predicts_in_float32_whatever_the_precision(tiny_model_dir):
    from kdcore.teacher import Teacher

    texts = ["good film", "a bad and boring plot " * 9, "fun", ""]
    auto = Teacher.from_pretrained(tiny_model_dir, device="cpu")
    fp32 = Teacher.from_pretrained(tiny_model_dir, device="cpu", precision="fp32")
    assert auto.model.config._attn_implementation == "sdpa"
    a, b = auto.predict_logits(texts), fp32.predict_logits(texts)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert auto._cache_key(texts, False) == fp32._cache_key(texts, False)
    with pytest.raises(ValueError, match="precision"):
        Teacher.from_pretrained(tiny_model_dir, device="cpu", precision="half")


def test_fine_tuning_plan_groups_batches_by_length_on_every_device_unless_told_not():
    from kdcore.config import TeacherConfig
    from kdcore.teacher.finetune import FineTuning

    lengths = np.random.default_rng(3).integers(4, 120, size=1000)

    def padded_tokens(length_grouped: bool) -> int:
        plan = FineTuning()
        plan.config = TeacherConfig(batch_size=16, epochs=2, min_steps=0, max_steps=0, length_grouped=length_grouped)
        steps_per_epoch, total_steps, orders = plan._training_plan(lengths)
        assert (steps_per_epoch, total_steps, len(orders)) == (63, 126, 2)
        for order in orders:  # every example once per epoch
            assert sorted(order.tolist()) == list(range(len(lengths)))
        return sum(int(lengths[order[k:k + 16]].max()) * len(order[k:k + 16])
                   for order in orders for k in range(0, len(order), 16))

    assert padded_tokens(True) < 0.75 * padded_tokens(False)
