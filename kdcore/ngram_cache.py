"""The teacher's view of each n-gram on its own: the mean-pooled last-layer embedding of the
n-gram's text and the teacher's logits on it, computed once per n-gram and cached in memory and
on disk under a hash of the teacher's weights.

The pass is compute-bound (the encoder's linear layers): n-grams that tokenize to the same
wordpieces are run once, shortest first, as many a batch as fit a token budget; a length with
enough n-grams to fill a batch gets batches of its own (no padding, no attention mask), a few of
one length join their neighbours (padded and masked) rather than cost a forward pass each.
Scores equal those of one n-gram at a time within float tolerance (a test).

The embedding-augmented student (:mod:`kdcore.students.aug_linear`) reads its frozen n-gram
features here. The cache key is :meth:`Teacher.fingerprint` (sha256 over the state dict)
plus the pooling and window settings, so a different (or re-trained) teacher never reuses
another's numbers. Embeddings are stored as float16 and always read back through float16,
so a freshly computed n-gram and a cached one give the student the same bits.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .tokenizer_check import tokenizer_fingerprint
from .utils import atomic_write_bytes

__all__ = ["NgramCache", "ngram_cache_key", "NGRAM_POOLING"]

# How an n-gram's embedding is read off the teacher: the last hidden layer, averaged over the
# n-gram's tokens with [CLS] and [SEP] (as sentence-transformers pools MiniLM).
NGRAM_POOLING = "mean-last-hidden+cls+sep"
NGRAM_MAX_TOKENS = 32  # an n-gram of a few words; anything longer is cut
BATCH_TOKENS = 4096  # wordpieces (special tokens included) in one batch of the n-gram pass


def ngram_cache_key(teacher) -> str:
    """The cache key of ``teacher``: its weight hash, its tokenizer's fingerprint, the pooling and the token limit."""
    settings = (f"{teacher.fingerprint()}|{tokenizer_fingerprint(teacher.tokenizer)}|{NGRAM_POOLING}"
                f"|max_tokens={NGRAM_MAX_TOKENS}")
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


class NgramCache:
    """Embeddings ``[n, H]`` and teacher logits ``[n, C]`` of n-gram texts, one teacher pass each.

    ``teacher``: a :class:`~kdcore.teacher.Teacher`, or a zero-argument callable returning one
    (loaded on first need, e.g. a run's teacher). ``directory``: where shards are written
    (``<directory>/<key>/<hash>.npz``, each the n-grams computed in one call); ``None`` keeps
    the cache in memory only. The key is re-read from the teacher on every call, so a teacher
    whose weights changed (``fit``) starts a new cache instead of reusing the old numbers.
    """

    def __init__(self, teacher, directory=None, batch_size: int = 256, batch_tokens: int = BATCH_TOKENS):
        if batch_size < 1 or batch_tokens < 1:
            raise ValueError(f"batch_size and batch_tokens must be >= 1, got {batch_size} and {batch_tokens}.")
        self._teacher_source = teacher
        self.directory = Path(directory) if directory else None
        self.batch_size = batch_size  # items a batch where a subclass batches through the teacher's own calls
        self.batch_tokens = batch_tokens  # the n-gram pass: a batch holds at least one n-gram, whatever its length
        self._lock = threading.Lock()
        self._key: str | None = None
        self._rows: dict[str, int] = {}
        # Rows grow into spare capacity (doubled when full), so many small passes never copy the whole table.
        self._embeddings = np.zeros((0, 0), np.float16)
        self._logits = np.zeros((0, 0), np.float32)
        # Teacher passes this object made: one per distinct wordpiece sequence (the rest came from disk or memory).
        self.computed = 0
        self.progress: Callable[[int, int], None] | None = None  # hears every pass not given its own callback

    @property
    def teacher(self):
        source = self._teacher_source
        if callable(source) and not hasattr(source, "predict_logits"):
            self._teacher_source = source = source()
        return source

    @property
    def key(self) -> str:
        return ngram_cache_key(self.teacher)

    def __len__(self) -> int:
        return len(self._rows)

    def features(self, ngrams: Sequence[str], progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings [n, H] float32, logits [n, C] float32)`` of ``ngrams``, in order.

        N-grams not yet cached go through the teacher in one batched pass and are written to
        disk as one new shard. ``progress(done, total)`` is called after each batch.
        """
        ngrams = [str(g) for g in ngrams]
        progress = progress if progress is not None else self.progress
        if not ngrams:
            teacher = self.teacher
            return (np.zeros((0, teacher.model.config.hidden_size), np.float32),
                    np.zeros((0, len(teacher.label_names)), np.float32))
        with self._lock:
            self._sync_key()
            missing = sorted({g for g in ngrams if g not in self._rows})
            if missing:
                embeddings, logits = self._compute(missing, progress)
                self._add(missing, embeddings, logits)
                self._write_shard(missing, embeddings, logits)
            rows = np.fromiter((self._rows[g] for g in ngrams), dtype=np.int64, count=len(ngrams))
            all_embeddings, all_logits = self._stacked()
        return all_embeddings[rows].astype(np.float32), all_logits[rows].copy()

    # -- memory and disk ------------------------------------------------------------------

    def _sync_key(self) -> None:
        key = self.key
        if key == self._key:
            return
        self._key, self._rows = key, {}
        self._embeddings, self._logits = np.zeros((0, 0), np.float16), np.zeros((0, 0), np.float32)
        if self.directory is None or not (self.directory / key).is_dir():
            return
        for shard in sorted((self.directory / key).glob("*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                names = json.loads(str(data["ngrams"]))
                fresh = [i for i, g in enumerate(names) if g not in self._rows]
                self._add([names[i] for i in fresh], data["embeddings"][fresh], data["logits"][fresh])

    def _add(self, names: list[str], embeddings: np.ndarray, logits: np.ndarray) -> None:
        start, end = len(self._rows), len(self._rows) + len(names)
        if end > self._embeddings.shape[0] or self._embeddings.shape[1:] != embeddings.shape[1:]:
            capacity = max(end, 2 * self._embeddings.shape[0])
            grown = np.zeros((capacity, embeddings.shape[1]), np.float16)
            grown_logits = np.zeros((capacity, logits.shape[1]), np.float32)
            if start:
                grown[:start], grown_logits[:start] = self._embeddings[:start], self._logits[:start]
            self._embeddings, self._logits = grown, grown_logits
        self._embeddings[start:end] = np.asarray(embeddings, dtype=np.float16)
        self._logits[start:end] = np.asarray(logits, dtype=np.float32)
        self._rows.update((g, start + i) for i, g in enumerate(names))

    def _stacked(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._rows)
        return self._embeddings[:n], self._logits[:n]

    def _write_shard(self, names: list[str], embeddings: np.ndarray, logits: np.ndarray) -> None:
        if self.directory is None:
            return
        listed = json.dumps(names, ensure_ascii=False)
        digest = hashlib.sha256(listed.encode()).hexdigest()[:24]
        buffer = io.BytesIO()
        np.savez(buffer, ngrams=np.array(listed), embeddings=np.asarray(embeddings, dtype=np.float16),
                 logits=np.asarray(logits, dtype=np.float32))
        atomic_write_bytes(self.directory / self._key / f"{digest}.npz", buffer.getvalue())

    # -- the teacher pass -----------------------------------------------------------------

    def _compute(self, ngrams: list[str], progress) -> tuple[np.ndarray, np.ndarray]:
        teacher = self.teacher
        model, tokenizer = teacher.model, teacher.tokenizer
        body = min(NGRAM_MAX_TOKENS, teacher.max_length) - 2
        sequences = [(tokenizer.cls_token_id, *t[:body], tokenizer.sep_token_id) for t in teacher._input_ids(ngrams)]
        distinct: dict[tuple, int] = {}
        owner = np.fromiter((distinct.setdefault(seq, len(distinct)) for seq in sequences), np.int64, len(sequences))
        unique = list(distinct)
        embeddings = np.zeros((len(unique), model.config.hidden_size), dtype=np.float16)
        logits = np.zeros((len(unique), len(teacher.label_names)), dtype=np.float32)
        model.eval()
        done = 0
        with torch.inference_mode(), teacher._autocast():
            for batch in self._batches(unique):
                pooled, batch_logits = self._forward(teacher, [unique[k] for k in batch])
                embeddings[batch] = pooled.astype(np.float16)
                logits[batch] = batch_logits
                done += len(batch)
                if progress is not None:
                    progress(done, len(unique))
        self.computed += len(unique)
        return embeddings[owner], logits[owner]

    @staticmethod
    def _forward(teacher, sequences: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
        """Mean-pooled last hidden layer and logits of ``sequences``: with no padding and no attention mask
        when they are all one length (most batches), else padded and averaged over the real tokens only."""
        device = teacher.device
        if len({len(q) for q in sequences}) == 1:
            out = teacher.model(input_ids=torch.tensor(sequences, dtype=torch.long, device=device),
                                output_hidden_states=True)
            pooled = out.hidden_states[-1].float().mean(dim=1)
        else:
            input_ids, attention = teacher._pad([list(q) for q in sequences])
            mask = attention.to(device)
            out = teacher.model(input_ids=input_ids.to(device), attention_mask=mask, output_hidden_states=True)
            weights = mask.unsqueeze(-1).float()
            pooled = (out.hidden_states[-1].float() * weights).sum(1) / weights.sum(1)
        return pooled.cpu().numpy(), out.logits.float().cpu().numpy()

    def _batches(self, sequences: list[tuple]) -> list[list[int]]:
        """Indices of ``sequences``, shortest first, in batches of at most ``batch_tokens`` tokens counted at the
        batch's widest (at least one sequence a batch). A batch never mixes lengths when the next length has
        enough sequences to fill a batch of its own; a few of one length join their neighbours instead of
        costing a forward pass each."""
        by_length: dict[int, list[int]] = defaultdict(list)
        for k, sequence in enumerate(sequences):
            by_length[len(sequence)].append(k)
        batches: list[list[int]] = []
        current: list[int] = []
        for length in sorted(by_length):
            members, size = by_length[length], max(1, self.batch_tokens // length)
            if current and len(members) >= size:  # a full batch of this length: close the mixed one first
                batches.append(current)
                current = []
            for k in members:
                if current and (len(current) + 1) * length > self.batch_tokens:
                    batches.append(current)
                    current = []
                current.append(k)
        return batches + ([current] if current else [])
