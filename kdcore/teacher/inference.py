"""Windowed, batched, cached inference of a teacher: texts tokenized once, long texts split into
overlapping windows whose logits are averaged, windows sorted by length and batched with dynamic
padding (by a token budget on a CUDA device), results cached on disk under a hash of the weights,
the texts and the settings."""

from __future__ import annotations

import itertools
import logging
from typing import Sequence

import numpy as np
import torch

from .. import accel
from ..tokenizer_check import tokenizer_fingerprint
from ..utils import ProgressFn, atomic_write_bytes, emit, sha256_texts

__all__ = ["WindowedInference"]

logger = logging.getLogger(__name__)


class WindowedInference:
    """The prediction half of :class:`~kdcore.teacher.Teacher` (a mixin: it reads ``model``, ``tokenizer``,
    ``config``, ``device``, ``precision``, ``label_names``, ``cache_dir`` and ``fingerprint()``)."""

    # ----------------------------------------------------------------- encoding
    def _token_ids(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        # verbose=False: texts longer than the model's window are expected; they are windowed.
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                                 return_attention_mask=False, return_token_type_ids=False, verbose=False)
        return encoded["input_ids"], [[tuple(o) for o in offs] for offs in encoded["offset_mapping"]]

    def _input_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Wordpiece ids of each text, no special tokens (no offsets: the tokenizer's quicker path)."""
        backend = getattr(self.tokenizer, "_tokenizer", None)
        if backend is not None and hasattr(backend, "encode_batch_fast") and backend.truncation is None \
                and backend.padding is None:
            return [encoding.ids for encoding in backend.encode_batch_fast(list(texts), add_special_tokens=False)]
        return self._token_ids(texts)[0]

    def _tokenized_chunks(self, texts: Sequence[str], size: int):
        """(index of the chunk's first text, its wordpiece ids) for consecutive chunks of ``size``
        texts; while one chunk is used, the next is tokenized on a second thread (the fast
        tokenizer releases the interpreter lock)."""
        size = max(1, int(size))
        if size >= len(texts):
            yield 0, self._input_ids(texts)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kdlens-tokenize") as pool:
            future = pool.submit(self._input_ids, texts[:size])
            for first in range(0, len(texts), size):
                ids = future.result()
                if first + size < len(texts):
                    future = pool.submit(self._input_ids, texts[first + size:first + 2 * size])
                yield first, ids

    def _window_bounds(self, n_tokens: int) -> list[tuple[int, int]]:
        body = self.max_length - 2
        if n_tokens <= body:
            return [(0, n_tokens)]
        step = body - self.config.stride
        bounds = []
        start = 0
        while True:
            end = min(start + body, n_tokens)
            bounds.append((start, end))
            if end == n_tokens:
                return bounds
            start += step

    def window_counts(self, texts: Sequence[str]) -> list[int]:
        """How many windows of :attr:`max_length` tokens each text takes (1 = it fits in one). A text
        taking more is predicted as the mean of its windows' logits and explained window by window."""
        return [len(self._window_bounds(len(token_ids))) for token_ids in self._input_ids(texts)]

    def encode_windows(self, text: str) -> list[dict]:
        """Token windows of one text, each with [CLS]/[SEP]; offsets (0, 0) for special tokens."""
        ids, offsets = self._token_ids([text])
        ids, offsets = ids[0], offsets[0]
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        windows = []
        for start, end in self._window_bounds(len(ids)):
            windows.append({
                "input_ids": [cls_id, *ids[start:end], sep_id],
                "offsets": [(0, 0), *offsets[start:end], (0, 0)],
            })
        return windows

    def _pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Dynamic padding: input ids and attention mask as wide as the longest sequence."""
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        width = int(lengths.max())
        attention = np.arange(width)[None, :] < lengths[:, None]
        input_ids = np.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=np.int64)
        input_ids[attention] = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64,
                                           count=int(lengths.sum()))
        return torch.from_numpy(input_ids), torch.from_numpy(attention.astype(np.int64))

    # ----------------------------------------------------------------- prediction
    def _autocast(self):
        return accel.autocast(self.device, self.precision)

    def _cache_key(self, texts: Sequence[str], return_pooled: bool) -> str:
        settings = f"max_length={self.max_length};stride={self.config.stride};pooled={return_pooled}"
        if accel.uses_bf16(self.device, self.precision):
            settings += ";bf16"  # float32 keys are unchanged
        return sha256_texts(texts, self.fingerprint(), settings, tokenizer_fingerprint(self.tokenizer))

    # Texts tokenized per chunk on a CUDA device (the next chunk's tokenizing overlaps the GPU's
    # work); ``tokenize_chunk`` set on an instance overrides it on any device.
    CUDA_TOKENIZE_CHUNK = 2048
    tokenize_chunk: int | None = None

    def predict_logits(self, texts: Sequence[str], batch_size: int | None = None, return_pooled: bool = False,
                       progress: ProgressFn | None = None, use_cache: bool = True):
        """Logits [n, classes] (float32); with ``return_pooled`` also the [CLS] representation.

        Texts are tokenized once, windows sorted by length and batched with dynamic padding.
        A text longer than the window is split into overlapping windows whose logits are
        averaged; ``last_predict_info["windowed_texts"]`` tells how many were, and
        ``last_predict_info["window_counts"]`` how many windows each text took.
        Results are cached on disk (when ``cache_dir`` is set) under a hash of the weights,
        the texts and the settings.
        """
        texts = [str(t) for t in texts]
        if not texts:
            self.last_predict_info = {"cache": "off", "windowed_texts": 0, "window_counts": np.zeros(0, np.int64)}
            empty = np.zeros((0, len(self.label_names)), dtype=np.float32)
            return (empty, np.zeros((0, self.model.config.hidden_size), np.float32)) if return_pooled else empty
        cache_path = None
        if self.cache_dir is not None and use_cache:
            cache_path = self.cache_dir / f"{self._cache_key(texts, return_pooled)}.npz"
            if cache_path.is_file():
                return self._read_cache(cache_path, texts, return_pooled, progress)
        sums, pooled_sums, counts, windowed = self._predict_windows(texts, batch_size, return_pooled, progress)
        result = (sums / counts[:, None]).astype(np.float32)
        pooled = (pooled_sums / counts[:, None]).astype(np.float32) if return_pooled else None
        self.last_predict_info = {"cache": "miss" if cache_path else "off", "windowed_texts": windowed,
                                  "window_counts": counts.copy()}
        if windowed:
            logger.info("%d of %d texts were longer than %d tokens: their window logits were averaged.",
                        windowed, len(texts), self.max_length)
        if cache_path is not None:
            import io

            buffer = io.BytesIO()
            np.savez(buffer, logits=result, pooled=pooled if pooled is not None else np.zeros(0, np.float32),
                     windowed=np.array(windowed), window_counts=counts)
            atomic_write_bytes(cache_path, buffer.getvalue())
        return (result, pooled) if return_pooled else result

    def _read_cache(self, cache_path, texts: Sequence[str], return_pooled: bool, progress: ProgressFn | None):
        with np.load(cache_path, allow_pickle=False) as cached:
            self.last_predict_info = {"cache": "hit", "windowed_texts": int(cached["windowed"])}
            self.last_predict_info["window_counts"] = (
                cached["window_counts"] if "window_counts" in cached.files  # older caches lack it
                else np.asarray(self.window_counts(texts), dtype=np.int64))
            emit(progress, stage="teacher_predict", done=len(texts), total=len(texts), cached=True)
            return (cached["logits"], cached["pooled"]) if return_pooled else cached["logits"]

    def _predict_windows(self, texts: Sequence[str], batch_size: int | None, return_pooled: bool,
                         progress: ProgressFn | None):
        """Sums of the window logits (and pooled states) of each text, its window count, and how many texts
        took more than one window."""
        # On a CUDA device (and no batch size asked for) batches are cut by a token budget.
        budget = None if batch_size else accel.token_budget(
            self.device, self.model.config.hidden_size, getattr(self.model.config, "intermediate_size", None))
        batch_size = batch_size or self.config.predict_batch_size
        on_cuda = self.device.type == "cuda"
        # On a CUDA device the texts go in chunks, the next one tokenized on a second thread while
        # the GPU works (the tokenizer would otherwise leave the card idle); on the CPU in one go.
        chunk = self.tokenize_chunk or (self.CUDA_TOKENIZE_CHUNK if on_cuda else len(texts))
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        n_classes = len(self.label_names)
        sums = np.zeros((len(texts), n_classes), dtype=np.float64)
        pooled_sums = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float64) if return_pooled else None
        counts = np.zeros(len(texts), dtype=np.int64)
        windowed = 0
        self.model.eval()

        def collect(owners, logits, pooled_rows) -> None:
            # On a CUDA device this waits for that batch only; the next one is already queued.
            np.add.at(sums, owners, logits.float().cpu().numpy())
            np.add.at(counts, owners, 1)
            if pooled_rows is not None:
                np.add.at(pooled_sums, owners, pooled_rows.float().cpu().numpy())

        pending = None
        with torch.inference_mode(), self._autocast():
            for first, ids in self._tokenized_chunks(texts, chunk):
                windows: list[tuple[int, list[int]]] = []
                for i, token_ids in enumerate(ids, start=first):
                    bounds = self._window_bounds(len(token_ids))
                    windowed += len(bounds) > 1
                    windows.extend((i, [cls_id, *token_ids[a:b], sep_id]) for a, b in bounds)
                lengths = [len(token_ids) for _, token_ids in windows]
                order = sorted(range(len(windows)), key=lengths.__getitem__)
                done = 0
                for chosen in accel.length_batches(order, lengths, batch_size, budget):
                    batch = [windows[k] for k in chosen]
                    input_ids, attention = self._pad([token_ids for _, token_ids in batch])
                    if on_cuda:  # pinned copies go up while the GPU still works on the batch before
                        input_ids, attention = input_ids.pin_memory(), attention.pin_memory()
                    out = self.model(input_ids=input_ids.to(self.device, non_blocking=on_cuda),
                                     attention_mask=attention.to(self.device, non_blocking=on_cuda),
                                     output_hidden_states=return_pooled)
                    if pending is not None:
                        collect(*pending)
                    pending = (np.array([w[0] for w in batch]), out.logits,
                               out.hidden_states[-1][:, 0] if return_pooled else None)
                    done += len(batch)
                    if chunk >= len(texts):  # one chunk: progress in windows, as many as there are
                        emit(progress, stage="teacher_predict", done=done, total=len(windows))
                    else:  # in texts: this chunk's share of its windows done
                        emit(progress, stage="teacher_predict", total=len(texts),
                             done=first + round(len(ids) * done / len(windows)))
            if pending is not None:
                collect(*pending)
        return sums, pooled_sums, counts, windowed

    def predict_proba(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        logits = self.predict_logits(texts, **kwargs)
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()

