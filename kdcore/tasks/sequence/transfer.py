"""The sequence transfer set (training texts, augmented copies, clauses, unlabelled texts) and the
teacher's outputs on it: logits, pooled states for feature_align, word attributions for attr_match."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from ...config import DistillConfig
from ...utils import emit

__all__ = ["build_transfer_set", "save_transfer", "teacher_outputs", "ATTR_MATCH_TEXTS"]

# attr_match needs teacher word attributions; integrated gradients (16 steps) on this many
# transfer texts keeps the cost to minutes on a CPU. The other texts train on outputs only.
ATTR_MATCH_TEXTS = 1000


def build_transfer_set(train, unlabelled=None, config: DistillConfig | None = None, extra_texts: Sequence[str] = ()):
    """Training texts + augmented copies (Tang et al. 2019) + their clauses + unlabelled texts,
    as a TextDataset.

    Gold labels are kept for the original training texts and set to -1 elsewhere.
    """
    from ...augment import augment_texts, clause_texts
    from ...data import TextDataset

    config = config or DistillConfig()
    texts = list(train.texts)
    labels = list(np.asarray(train.labels)) if train.labels is not None else [-1] * len(texts)
    seen = set(texts)
    extra: list[str] = []  # unlabelled, in this order: augmented, clauses, corpus, user texts
    if config.augment_copies:
        extra += augment_texts(train.texts, copies=config.augment_copies, mask_prob=config.mask_prob,
                               swap_prob=config.swap_prob, ngram_prob=config.ngram_prob, seed=config.seed,
                               ngram_max_words=config.ngram_max_words)
    if config.clauses:
        extra += clause_texts(train.texts)
    if config.use_unlabelled and unlabelled is not None:
        extra += list(unlabelled.texts)
    extra += list(extra_texts)
    for text in extra:
        if text and text not in seen:
            seen.add(text)
            texts.append(text)
            labels.append(-1)
    return TextDataset(texts, np.asarray(labels, dtype=np.int64), list(train.label_names), name="transfer")




def save_transfer(writer, transfer) -> None:
    """Write the transfer set into the run when its content changed (it is rebuilt on every build)."""
    saved = writer.read_json("transfer_set.json", {}) or {}
    if saved.get("hash") != transfer.content_hash() or not writer.exists("data/transfer.jsonl"):
        writer.write_jsonl("data/transfer.jsonl", [{"text": t, "label": int(y) if y >= 0 else None}
                                                   for t, y in zip(transfer.texts, transfer.labels)])


def teacher_outputs(writer, spec, state) -> None:
    """Teacher logits on the transfer set (and pooled states for feature_align, word attributions for
    attr_match) and on the test split. Saved logits are reused when the transfer set is unchanged."""
    started = time.perf_counter()
    teacher, transfer, progress = state.teacher, state.transfer, state.progress
    need_hidden = spec.distill.feature_align > 0
    transfer_hash = transfer.content_hash()
    saved = writer.read_json("transfer_set.json", {}) or {}
    if (writer.exists("teacher_logits.npy") and saved.get("hash") == transfer_hash
            and (not need_hidden or writer.exists("teacher_hidden.npy"))):
        state.transfer_logits = np.load(writer.path / "teacher_logits.npy", allow_pickle=False)
        if need_hidden:
            state.transfer_hidden = np.load(writer.path / "teacher_hidden.npy", allow_pickle=False)
    else:
        if spec.teacher_logits:  # labelled beforehand (python -m kdcore label): read by text hash
            from ...scale.precomputed import transfer_logits_from_folders

            state.transfer_logits, state.transfer_hidden = transfer_logits_from_folders(spec, state, writer)
            if need_hidden:
                writer.write_array("teacher_hidden.npy", state.transfer_hidden)
        elif need_hidden:
            state.transfer_logits, state.transfer_hidden = teacher.predict_logits(
                transfer.texts, return_pooled=True, progress=progress)
            writer.write_array("teacher_hidden.npy", state.transfer_hidden)
        else:
            state.transfer_logits = teacher.predict_logits(transfer.texts, progress=progress)
        writer.write_array("teacher_logits.npy", state.transfer_logits)
        writer.write_json("transfer_set.json", {"hash": transfer_hash, "size": len(transfer)})
        state.timings["transfer_label_s"] = time.perf_counter() - started
    if "labels" in state.finished and writer.exists("teacher_test_logits.npy"):
        state.test_logits = np.load(writer.path / "teacher_test_logits.npy", allow_pickle=False)
    else:
        state.test_logits = teacher.predict_logits(state.corpus.test.texts, progress=progress)
        writer.write_array("teacher_test_logits.npy", state.test_logits)
    if spec.distill.attr_match > 0:
        state.teacher_attributions = _teacher_attributions(writer, state)


def _teacher_attributions(writer, state) -> list:
    if writer.exists("teacher_attributions.json"):
        cached = writer.read_json("teacher_attributions.json")
    else:
        from ...attribution import explain

        chosen = state.transfer.texts[:ATTR_MATCH_TEXTS]
        emit(state.progress, stage="teacher_attributions", done=0, total=len(chosen))
        cached = [e.scores.tolist() for e in explain(state.teacher, chosen, n_steps=16)]
        writer.write_json("teacher_attributions.json", cached)
    return [np.asarray(a) for a in cached] + [None] * (len(state.transfer) - len(cached))


