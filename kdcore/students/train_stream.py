"""The linear student over a transfer set too large for memory: texts and teacher logits arrive
in chunks (e.g. the shards of a label folder), and nothing grows with the number of texts but
files on disk.

1. Vocabulary: document frequencies are counted chunk by chunk; when the table passes
   ``max_entries`` the rarest entries are dropped (lossy counting), and the largest count a
   dropped feature can have lost is reported (``vocabulary_undercount_``; 0 = exact, as
   ``Featurizer.fit``).
2. Design: each chunk is featurized and appended to memory-mapped CSR files in ``workdir``.
3. Training: the same full-batch L-BFGS as in memory (train_lbfgs.py), its objective and gradient
   summed over row blocks of the memory-mapped design; on a set that fits in one block the
   result equals :meth:`Student.fit`.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..config import DistillConfig
from ..utils import emit
from .featurize import Featurizer, _check_texts, _feature_name
from .targets import DevSet, prepare_targets
from .train import finish_fit
from .train_lbfgs import fit_lbfgs

__all__ = ["fit_vocabulary_stream", "fit_linear_stream", "MemmapDesign"]

ChunkSource = Callable[[], Iterable[tuple[Sequence[str], np.ndarray]]]


def fit_vocabulary_stream(featurizer: Featurizer, chunks: Iterable[Sequence[str]],
                          max_entries: int = 4_000_000) -> int:
    """Fit ``featurizer``'s vocabulary from chunks of texts; returns the undercount bound (0 = exact).

    Keeps at most ``max_entries`` distinct words and word n-grams between chunks: past that, the
    least frequent are dropped until half the table is free, and the bound grows by the count
    at which they were cut.
    """
    featurizer._check_params()
    featurizer._setup_fast_path()
    doc_freq: Counter = Counter()
    n_docs, undercount = 0, 0
    for texts in chunks:
        for text in _check_texts(texts):
            doc_freq.update(featurizer._distinct_keys(featurizer._words_fast(text)))
        n_docs += len(texts)
        if len(doc_freq) > max_entries:
            counts = np.fromiter(doc_freq.values(), dtype=np.int64, count=len(doc_freq))
            cut = int(np.partition(counts, len(counts) - max_entries // 2)[len(counts) - max_entries // 2])
            doc_freq = Counter({key: df for key, df in doc_freq.items() if df > cut})
            undercount += cut
    # The same selection as Featurizer.fit: document frequency, then the name; idf over all texts.
    kept = [(key, df) for key, df in doc_freq.items() if df >= featurizer.min_count]
    kept.sort(key=lambda item: (-item[1], _feature_name(item[0])))
    kept = kept[: featurizer.max_features]
    idf = [math.log((1 + n_docs) / (1 + df)) + 1.0 for _, df in kept]
    featurizer._set_vocabulary([_feature_name(key) for key, _ in kept], idf, n_docs)
    return undercount


class MemmapDesign:
    """Featurized texts in CSR form in three files (indices int32, values float32, offsets int64),
    read back as memory maps in row blocks of ``block_texts``."""

    def __init__(self, folder: Path, block_texts: int = 65_536):
        self.folder = Path(folder)
        self.block_texts = block_texts
        self.n_texts = 0
        self.n_features = 0
        self._nnz = 0
        for name in ("indices", "values", "offsets"):
            (self.folder / f"{name}.bin").write_bytes(b"")
        self._append_offsets(np.zeros(1, np.int64))

    def _append_offsets(self, offsets: np.ndarray) -> None:
        with open(self.folder / "offsets.bin", "ab") as handle:
            offsets.astype(np.int64).tofile(handle)

    def append(self, batch) -> None:
        """Append one :class:`FeatureBatch` (its bags become the next rows)."""
        indices, values, offsets = batch.indices.numpy(), batch.values.numpy(), batch.offsets.numpy()
        with open(self.folder / "indices.bin", "ab") as handle:
            indices.astype(np.int32).tofile(handle)
        with open(self.folder / "values.bin", "ab") as handle:
            values.astype(np.float32).tofile(handle)
        ends = np.append(offsets[1:], len(indices)) + self._nnz
        self._append_offsets(ends)
        self._nnz += len(indices)
        self.n_texts += batch.n_texts

    def _maps(self):
        # mode "c": copy-on-write pages, so torch gets writable arrays and the files stay untouched.
        def load(name, dtype):
            path = self.folder / f"{name}.bin"
            return np.memmap(path, dtype=dtype, mode="c") if path.stat().st_size else np.zeros(0, dtype)

        return load("indices", np.int32), load("values", np.float32), load("offsets", np.int64)

    def blocks(self, device):
        """``(csr block [rows, n_features], rows slice, is_last)`` over the design."""
        indices, values, offsets = self._maps()
        for start in range(0, self.n_texts, self.block_texts):
            stop = min(start + self.block_texts, self.n_texts)
            lo, hi = int(offsets[start]), int(offsets[stop])
            crow = torch.from_numpy((offsets[start:stop + 1] - lo).astype(np.int32))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                matrix = torch.sparse_csr_tensor(crow, torch.from_numpy(indices[lo:hi]), torch.from_numpy(values[lo:hi]),
                                                 (stop - start, self.n_features), device=device)
            yield matrix, slice(start, stop), stop == self.n_texts


def fit_linear_stream(student, chunks: ChunkSource, *, distill: DistillConfig | None = None,
                      workdir: str | None = None, block_texts: int = 65_536, max_entries: int = 4_000_000,
                      progress=None, device: str = "cpu"):
    """Train a :class:`LinearStudent` (L-BFGS) on ``chunks() -> iterable of (texts, teacher_logits)``
    without holding the texts or their features in memory; returns the student.

    ``chunks`` is called twice (vocabulary, then features), and must give the same chunks each
    time. The memory-mapped design goes to ``workdir`` (a temporary folder by default, removed
    after training). Sets what ``fit`` sets, plus ``vocabulary_undercount_``.
    """
    config = student.config
    if config.kind != "linear":
        raise ValueError("fit_linear_stream trains the linear student; the MLP trains in memory (Student.fit).")
    if config.l1 > 0 or config.solver == "adam":
        raise ValueError("fit_linear_stream solves with L-BFGS, which takes no l1 and is not Adam: set l1=0 and "
                         "solver='auto' or 'lbfgs'.")
    distill = distill if distill is not None else DistillConfig()
    featurizer = student._new_featurizer()
    emit(progress, stage="student_featurize", student=student.name, phase="vocabulary")
    undercount = fit_vocabulary_stream(featurizer, (texts for texts, _ in chunks()), max_entries)
    if featurizer.n_features == 0:
        raise ValueError(f"No feature occurs in min_count={config.min_count} texts; lower min_count or give more texts.")
    with tempfile.TemporaryDirectory(dir=workdir, prefix="kdlens-design-") as folder:
        design = MemmapDesign(Path(folder), block_texts)
        design.n_features = featurizer.n_features
        logits_path = Path(folder) / "teacher_logits.bin"
        n_classes = None
        with open(logits_path, "ab") as handle:
            for texts, logits in chunks():
                logits = np.asarray(logits, dtype=np.float32)
                if logits.ndim != 2 or logits.shape[0] != len(texts) or n_classes not in (None, logits.shape[1]):
                    raise ValueError(f"A chunk has {len(texts)} texts but teacher logits of shape {logits.shape}; "
                                     "give one row of logits per text, the same classes in every chunk.")
                n_classes = logits.shape[1]
                design.append(featurizer.transform(texts))
                logits.tofile(handle)
                emit(progress, stage="student_featurize", student=student.name, phase="features", texts=design.n_texts)
        if design.n_texts == 0:
            raise ValueError("fit needs at least one text; the chunks held none.")
        teacher_logits = np.memmap(logits_path, dtype=np.float32, mode="c").reshape(design.n_texts, n_classes)
        targets = prepare_targets(student, design.n_texts, teacher_logits, None, None, distill, None, None)
        student.featurizer_ = featurizer
        student.label_names = targets.label_names
        history, converged = fit_lbfgs(student, design, targets.to(device), distill, DevSet(), progress,
                                       torch.device(device))
        del teacher_logits
    finish_fit(student, history, converged)
    student.vocabulary_undercount_ = undercount
    return student
