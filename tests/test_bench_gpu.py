"""The GPU benchmark's arithmetic, checked on the CPU: the card's peak and the FLOPs counted."""

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, peak, key", [
    ("NVIDIA H200", 989.0, "H200"),
    ("NVIDIA H100 80GB HBM3", 989.0, "H100"),
    ("NVIDIA H100 PCIe", 756.0, "H100 PCIe"),
    ("NVIDIA H200 NVL", 835.0, "H200 NVL"),
    ("NVIDIA A100-SXM4-80GB", 312.0, "A100"),
    ("Some Other Card", None, ""),
])
def test_card_peak_is_read_off_the_name(name, peak, key):
    assert _bench("teacher_throughput").card_peak(name) == (peak, key)


def test_bert_base_flops_per_sequence_at_length_128():
    bench = _bench("teacher_throughput")
    with torch.device("meta"):
        config, model = bench._bert_base(tiny=False)
    flops = bench._flops_per_sequence(model, config, 128)
    # 12 layers x (4 x 768^2 attention + 2 x 768 x 3072 feed-forward) matrices, 2 FLOPs per
    # weight per token, + 4 x 128 x 768 per layer per token for the attention scores and
    # their weighted sum, + pooler (768^2) and classifier (768 x 2) once.
    matrices = 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    expected = 128 * (2 * matrices + 4 * 12 * 128 * 768) + 2 * (768 * 768 + 768 * 2)
    assert flops == expected
    assert 22.3e9 < flops < 22.5e9
