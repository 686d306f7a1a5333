"""Shared fixtures: tiny BERT teachers built from a config in the test (random weights, small vocab)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)

TINY_WORDS = (
    "the a an and or but not no is was it this that film movie story plot actor actors "
    "good great fine fun funny brilliant moving charming best love loved wonderful "
    "bad awful poor boring dull worst hate hated terrible mess weak "
    "cafe naive ##s ##ing ##ed ##ly un ##believable very too so of in on to with "
    ". , ! ? ' - \" ( ) : ; $ 5 1 0 x y < >"
).split()


def make_tiny_model_dir(path, label_names=("neg", "pos"), seed=0, hidden=16, layers=2, max_positions=64):
    """Write a tiny BERT sequence classifier (random weights) and its tokenizer to ``path``."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    assert len(tokenizer) == len(vocab)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=max_positions, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture()
def tiny_teacher(tiny_model_dir):
    from kdcore.config import TeacherConfig
    from kdcore.teacher import Teacher

    return Teacher.from_pretrained(tiny_model_dir, config=TeacherConfig(max_length=32, stride=8), device="cpu")
