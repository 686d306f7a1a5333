"""Teacher: loading, fine-tuning, batched prediction, windows and the logits cache."""

from __future__ import annotations

import numpy as np
import pytest

from kdcore.config import TeacherConfig
from kdcore.teacher import Teacher, TeacherError


class _Labelled:
    def __init__(self, texts, labels):
        self.texts, self.labels, self.has_labels = list(texts), np.asarray(labels), True

    def __len__(self):
        return len(self.texts)


POS = ["good film", "great movie", "brilliant and moving", "fun and charming", "loved this film", "wonderful story"]
NEG = ["bad film", "awful movie", "boring and dull", "terrible mess", "hated this film", "worst story"]


def test_predict_matches_one_by_one_and_sorts_batches(tiny_teacher):
    texts = ["good film", "the movie was awful and boring " * 3, "cafe", "great !"]
    batched = tiny_teacher.predict_logits(texts, batch_size=2)
    single = np.vstack([tiny_teacher.predict_logits([t], use_cache=False) for t in texts])
    assert batched.shape == (4, 2) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, atol=1e-5)
    proba = tiny_teacher.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)


def test_long_text_is_split_into_windows_and_caller_told(tiny_teacher):
    long_text = " ".join(["good film and bad movie"] * 20)
    windows = tiny_teacher.encode_windows(long_text)
    assert len(windows) > 1
    assert all(len(w["input_ids"]) <= tiny_teacher.max_length for w in windows)
    assert windows[0]["input_ids"][0] == tiny_teacher.tokenizer.cls_token_id
    tiny_teacher.predict_logits([long_text, "good"], use_cache=False)
    assert tiny_teacher.last_predict_info["windowed_texts"] == 1


def test_chunked_tokenizing_gives_the_same_logits_counts_and_progress(tiny_teacher):
    # On a CUDA device texts are tokenized in chunks on a second thread; any chunk size must give
    # the one-pass result, the windows per text, and progress that ends at every text.
    texts = ["good film", " ".join(["good film and bad movie"] * 20), "cafe", "great !", "awful", "boring and dull",
             "the movie was awful and boring " * 3]
    whole = tiny_teacher.predict_logits(texts, batch_size=2, use_cache=False)
    whole_counts = tiny_teacher.last_predict_info["window_counts"]
    assert list(whole_counts) == tiny_teacher.window_counts(texts) and max(whole_counts) > 1
    events = []
    tiny_teacher.tokenize_chunk = 3
    try:
        chunked = tiny_teacher.predict_logits(texts, batch_size=2, use_cache=False, progress=events.append)
    finally:
        tiny_teacher.tokenize_chunk = None
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert list(tiny_teacher.last_predict_info["window_counts"]) == list(whole_counts)
    assert tiny_teacher.last_predict_info["windowed_texts"] == 1
    done = [e["done"] for e in events]
    assert done == sorted(done) and done[-1] == len(texts) and all(e["total"] == len(texts) for e in events)


def test_fast_tokenizer_path_matches_the_tokenizer_call(tiny_teacher):
    texts = ["Un-believable, boringly good!", "café ÉCOLE", "", "a " * 300]
    expected = tiny_teacher.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    assert tiny_teacher._input_ids(texts) == expected


def test_offsets_of_windows_point_at_text(tiny_teacher):
    text = "Un-believable, boringly good!"
    (window,) = tiny_teacher.encode_windows(text)
    pieces = tiny_teacher.tokenizer.convert_ids_to_tokens(window["input_ids"])
    for piece, (a, b) in zip(pieces[1:-1], window["offsets"][1:-1]):
        assert text[a:b].lower() == piece.lstrip("#") or piece == "[UNK]"


def test_cache_hit_then_miss_when_a_text_changes(tiny_model_dir, tmp_path):
    teacher = Teacher.from_pretrained(tiny_model_dir, cache_dir=tmp_path / "cache", device="cpu")
    texts = ["good film", "bad film"]
    first = teacher.predict_logits(texts)
    assert teacher.last_predict_info["cache"] == "miss"
    second = teacher.predict_logits(texts)
    assert teacher.last_predict_info["cache"] == "hit"
    np.testing.assert_array_equal(first, second)
    teacher.predict_logits(["good film", "bad movie"])
    assert teacher.last_predict_info["cache"] == "miss"
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_fine_tune_learns_toy_task_and_changes_fingerprint(tiny_model_dir):
    config = TeacherConfig(max_length=16, stride=4, epochs=30, batch_size=4, learning_rate=3e-3,
                           max_steps=90, eval_every=30, patience=5, warmup_ratio=0.1)
    teacher = Teacher.from_pretrained(tiny_model_dir, config=config, device="cpu")
    before = teacher.fingerprint()
    data = _Labelled(POS + NEG, [1] * len(POS) + [0] * len(NEG))
    events = []
    teacher.fit(data, dev=data, progress=events.append)
    assert teacher.fingerprint() != before
    accuracy = (teacher.predict_logits(data.texts).argmax(1) == data.labels).mean()
    assert accuracy == 1.0
    assert events and events[-1]["stage"] == "teacher_fit"
    assert teacher.best_dev_score_ == 1.0


def test_fit_resumes_from_checkpoint(tiny_model_dir, tmp_path):
    config = TeacherConfig(max_length=16, stride=4, epochs=10, batch_size=4, learning_rate=1e-3,
                           max_steps=12, eval_every=4, patience=10)
    data = _Labelled(POS + NEG, [1] * len(POS) + [0] * len(NEG))
    full = Teacher.from_pretrained(tiny_model_dir, config=config, device="cpu").fit(data, dev=data)

    class Interrupt(Exception):
        pass

    def stop_at_step_8(event):
        if event.get("step") == 8:
            raise Interrupt

    ckpt = tmp_path / "ckpt"
    first = Teacher.from_pretrained(tiny_model_dir, config=config, device="cpu")
    with pytest.raises(Interrupt):
        first.fit(data, dev=data, progress=stop_at_step_8, checkpoint_dir=ckpt)
    events = []
    resumed = Teacher.from_pretrained(tiny_model_dir, config=config, device="cpu")
    resumed.fit(data, dev=data, progress=events.append, checkpoint_dir=ckpt)
    assert events[0].get("resumed") and events[0]["step"] == 4
    assert resumed.history_[-1]["step"] == 12
    np.testing.assert_allclose(resumed.predict_logits(POS), full.predict_logits(POS), atol=1e-4)


def test_from_encoder_puts_fresh_head(tiny_model_dir):
    teacher = Teacher.from_encoder(tiny_model_dir, ["a", "b", "c"], device="cpu")
    assert teacher.predict_logits(["good"]).shape == (1, 3)
    assert teacher.label_names == ["a", "b", "c"]


def test_pickled_checkpoint_and_missing_model_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(TeacherError, match="safetensors"):
        Teacher.from_pretrained(folder)
    with pytest.raises(TeacherError, match="Could not load"):
        Teacher.from_pretrained(tmp_path / "does-not-exist")


def test_pooled_representation(tiny_teacher):
    logits, pooled = tiny_teacher.predict_logits(["good film", "bad"], return_pooled=True)
    assert logits.shape == (2, 2) and pooled.shape == (2, tiny_teacher.model.config.hidden_size)


# ------------------------------------------------------------------------------ a tokenizer of another model
def _swap_in_vocab(model_dir, vocab):
    """Replace the tokenizer files in ``model_dir`` by a tokenizer over ``vocab`` (as copying another model's would)."""
    from transformers import BertTokenizerFast

    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (model_dir / name).unlink(missing_ok=True)
    (model_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True).save_pretrained(model_dir)


def test_a_tokenizer_of_another_model_with_the_same_vocabulary_size_is_refused(tmp_path):
    from conftest import TINY_WORDS, make_tiny_model_dir
    from kdcore.tokenizer_check import TokenizerMismatch

    model_dir = make_tiny_model_dir(tmp_path / "model")
    # Another model's vocabulary, as large: its padding token sits elsewhere.
    _swap_in_vocab(model_dir, [*TINY_WORDS[:3], "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS[3:]])
    with pytest.raises(TokenizerMismatch, match="pad token id is 0 but the tokenizer's is 3"):
        Teacher.from_pretrained(model_dir, device="cpu")


def test_a_saved_teacher_refuses_a_swapped_tokenizer_and_keys_its_caches_by_it(tmp_path, tiny_teacher):
    from conftest import TINY_WORDS
    from kdcore.ngram_cache import ngram_cache_key
    from kdcore.tokenizer_check import TokenizerMismatch

    tiny_teacher.save(tmp_path / "saved")
    loaded = Teacher.from_pretrained(tmp_path / "saved", device="cpu")  # its own tokenizer: accepted
    assert loaded.fingerprint() == tiny_teacher.fingerprint()
    # The same special tokens in the same places and as many tokens, the words in another order.
    _swap_in_vocab(tmp_path / "saved", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *reversed(TINY_WORDS)])
    with pytest.raises(TokenizerMismatch, match="saved with another tokenizer"):
        Teacher.from_pretrained(tmp_path / "saved", device="cpu")
    # Same weights, another tokenizer: no cache (teacher logits, n-gram features) is shared.
    from transformers import AutoTokenizer

    other = Teacher(loaded.model, AutoTokenizer.from_pretrained(tmp_path / "saved"), loaded.label_names,
                    config=loaded.config, device="cpu")
    assert other.fingerprint() == loaded.fingerprint()
    assert ngram_cache_key(other) != ngram_cache_key(loaded)
    assert other._cache_key(["a text"], False) != loaded._cache_key(["a text"], False)
