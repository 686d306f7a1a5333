"""The token teacher: any Hugging Face token classifier (one tag per word), loaded, fine-tuned and run.

It shares the sequence teacher's loading (local folder or hub id, ``id2label`` matched by
:func:`kdcore.labels.align_labels`, safetensors only, no remote code), identity and saving
(:class:`kdcore.teacher.Teacher`); what differs is named here: a word's label sits on its first
wordpiece, predictions are read per word, and a sentence longer than the window is split into
overlapping windows, each word read from the window where it sits farthest from an edge.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...teacher import Teacher, TeacherError, head_task  # head_task: re-exported for the token side
from ...tokenizer_check import tokenizer_fingerprint
from ...utils import ProgressFn, atomic_write_bytes, emit, sha256_texts

__all__ = ["TokenTeacher", "head_task", "tag_label_map"]

IGNORE = -100  # transformers' ignored label id (later wordpieces, padding)


class TokenTeacher(Teacher):
    """A token classifier: ``predict_word_logits(sentences)`` gives one logit row per word."""

    _auto_class = "AutoModelForTokenClassification"

    @classmethod
    def _label_map(cls, label_map, model_names):
        """A label map of tags may name entity types (``PER=person``): each stands for its B- and I- tags, and
        the tags it does not name keep their names."""
        return tag_label_map(label_map, model_names)

    # ----------------------------------------------------------------- encoding
    def _word_pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """The wordpiece ids of every word; a word the tokenizer drops (a control character) gets [UNK],
        so that every word has a first piece to carry its label."""
        encoded = self.tokenizer([list(words) for words in sentences], is_split_into_words=True,
                                 add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False,
                                 verbose=False)
        unk = self.tokenizer.unk_token_id
        out = []
        for i, words in enumerate(sentences):
            pieces: list[list[int]] = [[] for _ in words]
            for token_id, word in zip(encoded["input_ids"][i], encoded.word_ids(i)):
                if word is not None:
                    pieces[word].append(token_id)
            out.append([p if p else [unk] for p in pieces])
        return out

    def _windows(self, pieces: list[list[int]]) -> list[tuple[list[int], list[int], list[int], list[int]]]:
        """Windows of one sentence: ``(input_ids with [CLS]/[SEP], the word whose *first* piece sits at each
        position (-1 elsewhere: special tokens, later pieces), words read from this window, the word of
        every piece (-1 for special tokens))``."""
        flat, first_of = [], []
        for word, word_pieces in enumerate(pieces):
            first_of.append(len(flat))
            flat.extend((piece, word if k == 0 else -1, word) for k, piece in enumerate(word_pieces))
        bounds = self._window_bounds(len(flat))
        # Each word is read from the window where its first piece is farthest from an edge.
        owner = [max(range(len(bounds)), key=lambda w: min(pos - bounds[w][0], bounds[w][1] - 1 - pos))
                 if len(bounds) > 1 else 0 for pos in first_of]
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        windows = []
        for w, (start, end) in enumerate(bounds):
            ids = [cls_id, *(p for p, _, _ in flat[start:end]), sep_id]
            firsts = [-1, *(first for _, first, _ in flat[start:end]), -1]
            piece_words = [-1, *(word for _, _, word in flat[start:end]), -1]
            windows.append((ids, firsts, [k for k, o in enumerate(owner) if o == w], piece_words))
        return windows

    # ----------------------------------------------------------------- prediction
    def predict_word_logits(self, sentences: Sequence[Sequence[str]], batch_size: int | None = None,
                            progress: ProgressFn | None = None, use_cache: bool = True) -> list[np.ndarray]:
        """Logits ``[n_words, tags]`` (float32) of each sentence, read at each word's first wordpiece.

        Cached on disk (when ``cache_dir`` is set) under a hash of the weights, the sentences and the
        window settings; ``last_predict_info["windowed_texts"]`` counts sentences split into windows.
        """
        sentences = [list(map(str, words)) for words in sentences]
        if not sentences:
            return []
        key_texts = ["\x1f".join(words) for words in sentences]
        settings = f"token;max_length={self.max_length};stride={self.config.stride}"
        cache_path = None
        if self.cache_dir is not None and use_cache:
            key = sha256_texts(key_texts, self.fingerprint(), settings, tokenizer_fingerprint(self.tokenizer))
            cache_path = self.cache_dir / f"{key}.npy"
            if cache_path.is_file():
                flat = np.load(cache_path, allow_pickle=False)
                self.last_predict_info = {"cache": "hit"}
                emit(progress, stage="teacher_predict", done=len(sentences), total=len(sentences), cached=True)
                return split_rows(flat, [len(s) for s in sentences])
        batch_size = batch_size or self.config.predict_batch_size
        windows = []  # (sentence, ids, word of each position, words read here)
        windowed = 0
        for i, pieces in enumerate(self._word_pieces(sentences)):
            own = self._windows(pieces)
            windowed += len(own) > 1
            windows.extend((i, *window) for window in own)
        order = sorted(range(len(windows)), key=lambda k: len(windows[k][1]))
        out = [np.zeros((len(s), len(self.label_names)), dtype=np.float32) for s in sentences]
        self.model.eval()
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(order), batch_size):
                batch = [windows[k] for k in order[start:start + batch_size]]
                input_ids, attention = self._pad([w[1] for w in batch])
                logits = self.model(input_ids=input_ids.to(self.device),
                                    attention_mask=attention.to(self.device)).logits.float().cpu().numpy()
                for row, (sentence, _, words, read_here, _) in enumerate(batch):
                    wanted = set(read_here)
                    for position, word in enumerate(words):
                        if word in wanted:
                            out[sentence][word] = logits[row, position]
                emit(progress, stage="teacher_predict", done=min(start + batch_size, len(order)), total=len(order))
        self.last_predict_info = {"cache": "miss" if cache_path else "off", "windowed_texts": windowed}
        if cache_path is not None:
            import io

            buffer = io.BytesIO()
            np.save(buffer, np.concatenate(out), allow_pickle=False)
            atomic_write_bytes(cache_path, buffer.getvalue())
        return out

    def predict_logits(self, texts, batch_size: int | None = None, return_pooled: bool = False,
                       progress: ProgressFn | None = None, use_cache: bool = True) -> list[np.ndarray]:
        """The base contract for a head that labels words: per-word logits ``[n_words, tags]`` of each text (a
        string is split into words at white space; a list of words is taken as it is)."""
        if return_pooled:
            raise TeacherError("A token teacher has no pooled state per text; feature_align is a sequence task's.")
        sentences = [text.split() if isinstance(text, str) else list(text) for text in texts]
        return self.predict_word_logits(sentences, batch_size=batch_size, progress=progress, use_cache=use_cache)

    # ----------------------------------------------------------------- fine-tuning
    def fit(self, train, dev=None, progress: ProgressFn | None = None, checkpoint_dir=None) -> "TokenTeacher":
        """Fine-tune on a tagged :class:`~kdcore.token_data.TokenDataset` (AdamW, linear warm-up and decay;
        the tag of a word on its first wordpiece, later pieces ignored). Every ``config.eval_every`` steps
        the dev entity F1 (BIO Viterbi decoding, exact span and type) is measured, the best weights kept,
        and training stops after ``config.patience`` evaluations without improvement; with a ``checkpoint_dir``
        the state is saved at every evaluation and resumed from it (the loop is :meth:`Teacher._train_loop`)."""
        from .metrics import decode, entity_scores

        if not getattr(train, "has_labels", False):
            raise TeacherError("Fine-tuning needs gold tags; pass a tagged dataset or use the teacher as loaded.")
        examples = []  # (ids, labels) per window
        for pieces, tags in zip(self._word_pieces(train.sentences), train.tags):
            for ids, words, _, _ in self._windows(pieces):
                labels = [int(tags[w]) if w >= 0 else IGNORE for w in words]
                examples.append((ids, labels))
        steps_per_epoch, total_steps, orders = self._training_plan([len(ids) for ids, _ in examples])
        if total_steps == 0:
            return self

        def batch(chosen):
            input_ids, attention = self._pad([examples[k][0] for k in chosen])
            labels = torch.full(input_ids.shape, IGNORE, dtype=torch.long)
            for row, k in enumerate(chosen):
                labels[row, :len(examples[k][1])] = torch.tensor(examples[k][1])
            return input_ids, attention, labels

        def dev_entity_f1() -> float:
            predicted = decode(self.predict_word_logits(dev.sentences, use_cache=False), self.label_names)
            return entity_scores(dev.gold_entities(), predicted)["f1"]

        usable = dev is not None and len(dev) and dev.has_labels
        state = self._train_loop(steps_per_epoch, total_steps, orders, batch, dev_entity_f1 if usable else None,
                                 "dev_entity_f1", progress, checkpoint_dir)
        best_score = state["best_score"]
        self.best_dev_score_ = best_score if best_score >= 0 else None  # dev entity F1
        return self


def tag_label_map(label_map, teacher_tags=()) -> dict[str, str]:
    """A label map of tags ({teacher tag: data tag}), in which an entity type without a B- / I- prefix
    (``PER=person``) stands for both of its tags (``B-PER=B-person, I-PER=I-person``); the ``teacher_tags``
    a non-empty map does not name keep their names."""
    from ...labels import parse_label_map

    expanded = {}
    for teacher_name, data_name in parse_label_map(label_map or {}).items():
        if teacher_name[:2] in ("B-", "I-") or teacher_name == "O":
            expanded[teacher_name] = data_name
        else:
            expanded.update({f"{p}-{teacher_name}": f"{p}-{data_name.removeprefix('B-').removeprefix('I-')}"
                             for p in ("B", "I")})
    if expanded:
        expanded = {**{tag: tag for tag in teacher_tags if tag not in expanded}, **expanded}
    return expanded


def split_rows(flat: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    """The rows of ``flat`` (one a word) cut back into sentences of ``lengths`` words."""
    return np.split(flat, np.cumsum(lengths)[:-1]) if lengths else []
