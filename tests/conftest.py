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


def seen(markdown: str) -> str:
    """What a reader sees of Streamlit markdown that the dashboard escaped (dashboard.components.safe.md): the
    text without its escaping backslashes (AppTest hands out the markdown source)."""
    import re

    return re.sub(r"\\([\\`*_\[\]{}<>#|~$:!&.+=)-])", r"\1", markdown)


def open_section(at, label: str, key: str = "overview_sections"):
    """Open the page's section ``label`` (a tab whose content is drawn only when it is picked) and run the page."""
    at.session_state[key] = label
    return at.run()


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


TOY_POS = ["good film", "great movie and fun", "brilliant and moving story", "fun and charming actors",
           "loved this film", "wonderful story", "the best movie", "very good and very fun", "charming plot",
           "great actors in a great film"]
TOY_NEG = ["bad film", "awful movie and dull", "boring and dull story", "terrible mess of a plot",
           "hated this film", "worst story", "the worst movie", "very bad and very boring", "weak plot",
           "poor actors in a bad film"]


def make_toy_corpus():
    """A tiny labelled corpus (neg/pos) with train/dev/test and a few unlabelled texts."""
    from types import SimpleNamespace

    import numpy as np

    from kdcore.data import TextDataset

    texts = TOY_POS + TOY_NEG
    labels = np.array([1] * len(TOY_POS) + [0] * len(TOY_NEG))
    full = TextDataset(texts, labels, ["neg", "pos"], name="toy")
    test_idx = [0, 1, 10, 11]
    dev_idx = [2, 12]
    train_idx = [i for i in range(len(texts)) if i not in test_idx + dev_idx]
    unlabelled = TextDataset(["a fun film", "a dull movie", "the story was moving"], None, ["neg", "pos"],
                             name="unlabelled")
    return SimpleNamespace(train=full.subset(train_idx), dev=full.subset(dev_idx), test=full.subset(test_idx),
                           unlabelled=unlabelled)


def tiny_spec(name, model_dir, students, **distill_options):
    """A RunSpec over the tiny teacher in ``model_dir`` (used as loaded), no logits cache, one thread."""
    from kdcore.config import DistillConfig, RunSpec, TeacherConfig

    return RunSpec(name, teacher_source=str(model_dir), teacher_is_encoder=False,
                   teacher=TeacherConfig(epochs=0, max_length=32, stride=8), students=students,
                   distill=DistillConfig(**{"augment_copies": 1, **distill_options}), cache_dir=None, threads=1)


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory, tiny_model_dir):
    """A finished run: tiny random BERT teacher, linear + MLP students and their label twins."""
    from kdcore.config import StudentConfig
    from kdcore.pipeline import build_run

    runs = tmp_path_factory.mktemp("runs")
    students = (StudentConfig(kind="linear", name="linear", min_count=1, max_steps=20),
                StudentConfig(kind="mlp", name="mlp", min_count=1, max_steps=20, hidden_size=8))
    return build_run(tiny_spec("tiny", tiny_model_dir, students), runs_dir=runs, corpus=make_toy_corpus())


# ------------------------------------------------------------------------------ token classification
TOY_ENTITY_WORDS = {"film": "work", "movie": "work", "story": "work", "actor": "per", "actors": "per"}
TOY_FILLER = ["the", "a", "and", "is", "was", "good", "bad", "very", "fun", ".", "it", "this"]


def make_tiny_token_model_dir(path, label_names=("O", "B-per", "I-per", "B-work", "I-work"), seed=0, hidden=16,
                              max_positions=64):
    """Write a tiny BERT token classifier (random weights) and its tokenizer to ``path``."""
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=max_positions, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )
    BertForTokenClassification(config).eval().save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def make_toy_token_corpus(n_sentences=80, seed=0):
    """Toy sentences whose entities follow a rule: film/movie/story are 'work', actor(s) 'per', and a
    'great' just before one opens the entity (B- on great, I- on the noun)."""
    import numpy as np

    from kdcore.tasks.token.data import TokenDataset, split_token_dataset

    rng = np.random.default_rng(seed)
    names = ["O", "B-per", "I-per", "B-work", "I-work"]
    sentences, tags = [], []
    for _ in range(n_sentences):
        words, row = [], []
        for _ in range(int(rng.integers(3, 9))):
            if rng.random() < 0.3:
                noun = str(rng.choice(list(TOY_ENTITY_WORDS)))
                kind = TOY_ENTITY_WORDS[noun]
                if rng.random() < 0.4:
                    words += ["great", noun]
                    row += [names.index(f"B-{kind}"), names.index(f"I-{kind}")]
                else:
                    words.append(noun)
                    row.append(names.index(f"B-{kind}"))
            else:
                words.append(str(rng.choice(TOY_FILLER)))
                row.append(0)
        sentences.append(words)
        tags.append(row)
    data = TokenDataset(sentences, tags, names, name="toy-ner")
    return split_token_dataset(data, seed=seed, dev_fraction=0.2, test_fraction=0.25)


@pytest.fixture(scope="session")
def tiny_token_model_dir(tmp_path_factory):
    return make_tiny_token_model_dir(tmp_path_factory.mktemp("tiny_token_bert"))


def tiny_token_spec(name, model_dir, **options):
    """A token RunSpec over the tiny token teacher in ``model_dir``, fine-tuned briefly in the run."""
    from kdcore.config import DistillConfig, RunSpec, StudentConfig, TeacherConfig

    students = (StudentConfig(kind="token_linear", name="linear", min_count=1),
                StudentConfig(kind="token_mlp", name="mlp", min_count=1, max_steps=150, hidden_size=8),
                StudentConfig(kind="token_crf", name="crf", min_count=1, max_iter=15))
    return RunSpec(name, task="token", teacher_source=str(model_dir), teacher_is_encoder=False,
                   teacher=TeacherConfig(epochs=30, max_steps=160, eval_every=20, learning_rate=3e-3, batch_size=8,
                                         max_length=16, stride=4, patience=4),
                   students=students, distill=DistillConfig(augment_copies=1, swap_prob=0.2), cache_dir=None,
                   threads=1, **{"explain_sample": 4, **options})


@pytest.fixture(scope="session")
def tiny_token_run_dir(tmp_path_factory, tiny_token_model_dir):
    """A finished token run: tiny BERT token teacher fine-tuned on the toy sentences, linear, MLP and CRF token
    students and their label twins."""
    from kdcore.pipeline import build_run

    runs = tmp_path_factory.mktemp("token_runs")
    return build_run(tiny_token_spec("tiny-ner", tiny_token_model_dir), runs_dir=runs, corpus=make_toy_token_corpus())
