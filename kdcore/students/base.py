"""What every student shares: construction from a StudentConfig, prediction, gradient x input
scores, global importance and safetensors save/load. Training lives in train.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config import DistillConfig, StudentConfig
from ..utils import ProgressFn, atomic_write_bytes, canonical_safetensors
from .featurize import FeatureBatch, Featurizer, _check_texts
from .gradients import feature_gradient_x_input
from .threads import single_threaded

if TYPE_CHECKING:  # the weights tables are pandas frames; pandas is imported where they are built
    import pandas as pd

__all__ = ["Student"]

_FORMAT_VERSION = 1


class Student:
    """Shared fit / predict / save logic of the students (see LinearStudent, MLPStudent).

    ``__init__`` only stores the config (a :class:`~kdcore.config.StudentConfig`, or keyword
    overrides of it); :meth:`fit` learns ``featurizer_``, ``module_``, ``label_names``,
    ``history_``, ``n_nonzero_`` and ``converged_``.
    """

    _kind = ""
    # The one kind -> class table: each student class registers itself by its ``_kind``
    # (kdcore.students.registry exposes it as STUDENT_CLASSES).
    kinds: dict[str, type["Student"]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._kind:
            Student.kinds[cls._kind] = cls

    def __init__(self, config: StudentConfig | None = None, **overrides):
        if config is None:
            config = StudentConfig(**{"kind": self._kind, **overrides})
        else:
            if not isinstance(config, StudentConfig):
                raise ValueError(f"config must be a StudentConfig, got {type(config).__name__}.")
            if overrides:
                data = config.to_dict()
                if data["name"] == data["kind"]:
                    data["name"] = ""  # an automatic name follows the kind
                config = StudentConfig.from_dict({**data, **overrides})
        if config.kind != self._kind:
            other = Student.kinds[config.kind].__name__
            raise ValueError(f"{type(self).__name__} got a config of kind {config.kind!r}; use {other} for it.")
        self.config = config
        self.label_names: list[str] = []

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- building blocks ----------------------------------------------------------------

    def _build_module(self, n_features: int, n_classes: int) -> nn.Module:
        raise NotImplementedError

    # What a student reads: texts by default; the token students read words in context
    # (kdcore.students.token), with their own featurizer and input check.
    _featurizer_class = Featurizer

    @staticmethod
    def _check_inputs(inputs) -> list:
        return _check_texts(inputs)

    def _module_for_state(self, state: dict, n_features: int, n_classes: int) -> nn.Module:
        """The module a saved ``state`` dict is loaded into (its shapes may carry sizes the config lacks)."""
        return self._build_module(n_features, n_classes)

    def prepare(self, texts: Sequence[str]) -> None:
        """Make the student ready to score ``texts`` before featurizing them: a no-op for a fixed
        vocabulary; a student that scores unseen n-grams adds them here."""

    def _new_featurizer(self) -> Featurizer:
        c = self.config
        return Featurizer(ngram_max=c.ngram_max, min_count=c.min_count, max_features=c.max_features,
                          weighting=c.weighting)

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ValueError(f"{type(self).__name__} {self.name!r} is not fitted yet; call fit(...) or load(directory).")

    @property
    def device(self) -> torch.device:
        self._check_fitted()
        return next(self.module_.parameters()).device

    def _prune_top_k(self, module: nn.Module, k: int) -> None:
        """Keep the ``k`` most important features (``config.top_k``), zero the rest."""
        raise NotImplementedError

    # -- fit ----------------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        teacher_logits=None,
        labels=None,
        *,
        label_names: Sequence[str] | None = None,
        distill: DistillConfig | None = None,
        teacher_hidden=None,
        teacher_attributions: Sequence[np.ndarray] | None = None,
        dev_texts: Sequence[str] | None = None,
        dev_labels=None,
        progress: ProgressFn | None = None,
        device: str | torch.device | None = None,
    ):
        """Train the student; returns ``self``.

        - ``teacher_logits`` ``[n, C]`` given: *distillation* with ``distill.loss`` (``kd_kl``
          at ``distill.temperature``, ``kd_mse``, or ``hard_ce`` on the teacher's argmax); where
          ``labels`` are also given (``-1`` = unlabelled) the loss is
          ``(1 - alpha) * distill_loss + alpha * hard_ce(gold)``.
        - only ``labels`` given: plain supervised training (``hard_ce``; ``-1`` rows ignored).
        - ``teacher_hidden`` ``[n, H_t]`` with ``distill.feature_align > 0`` (MLP only): FitNets hint
          through a training-only ``Linear(hidden, H_t)`` projection.
        - ``teacher_attributions`` (one 1-D array per text, aligned with ``split_words(text)``;
          ``None`` for a text without one, which is then left out of ``attr_match``)
          with ``distill.attr_match > 0``: match the student's gradient x input word
          attributions for the teacher's predicted class (see ``losses.attr_match``).
        - ``dev_texts``/``dev_labels``: accuracy and macro-F1 after each epoch in ``history_``.
        - ``progress``: a kd-lens progress callback; after every epoch it gets
          ``{stage: "student_fit", student, epoch, step, total, loss, dev_accuracy}``.
        - ``device``: default CUDA when available, else CPU.

        Learned: ``featurizer_``, ``module_``, ``label_names``, ``history_`` (one dict per
        epoch: epoch, loss, parts, dev metrics), ``n_nonzero_``.
        """
        from .train import fit_student

        with single_threaded():
            fit_student(self, texts, teacher_logits, labels, label_names=label_names, distill=distill,
                        teacher_hidden=teacher_hidden, teacher_attributions=teacher_attributions,
                        dev_texts=dev_texts, dev_labels=dev_labels, progress=progress, device=device)
        return self

    # -- predict ------------------------------------------------------------------------

    def transform(self, texts: Sequence[str]) -> FeatureBatch:
        """The EmbeddingBag inputs of ``texts`` (on the CPU)."""
        self._check_fitted()
        texts = _check_texts(texts)
        self.prepare(texts)
        return self.featurizer_.transform(texts)

    def _predict(self, texts, batch_size: int, proba: bool) -> np.ndarray:
        self._check_fitted()
        texts = self._check_inputs(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.prepare(texts)
        module, device = self.module_, self.device
        was_training = module.training
        module.eval()
        out = []
        with torch.inference_mode(), single_threaded():
            for start in range(0, len(texts), batch_size):
                batch = self.featurizer_.transform(texts[start:start + batch_size])
                if device.type != "cpu":
                    batch = batch.to(device)
                logits = module(*batch)
                if proba:
                    logits = torch.softmax(logits, dim=-1)
                out.append(logits.float().cpu())
        module.train(was_training)
        if not out:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return torch.cat(out).numpy()

    def predict_logits(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Logits ``[n, C]`` (float32)."""
        return self._predict(texts, batch_size, proba=False)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Class probabilities ``[n, C]`` (float32, rows sum to 1)."""
        return self._predict(texts, batch_size, proba=True)

    def predict(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Predicted class ids ``[n]``."""
        return self.predict_logits(texts, batch_size).argmax(axis=1)

    def n_parameters(self) -> int:
        """Number of parameters of the saved model (the training-only projection excluded)."""
        self._check_fitted()
        return int(sum(p.numel() for p in self.module_.parameters()))

    def global_importance(self, texts: Sequence[str], max_texts: int = 2000, seed: int = 0,
                          batch_size: int = 1024) -> "pd.DataFrame":
        """How much each feature moves each class's logit on typical texts.

        For every text of a sample of ``texts`` (at most ``max_texts``, drawn with ``seed``)
        and every class, each feature's gradient x value (its first-order share of the
        logit; for the linear student exactly weight x value) is computed, and averaged over
        the texts that contain the feature. Columns: ``feature``, ``class``, ``importance``
        (signed; positive = pushes towards the class), ``n_texts`` (texts containing it).
        Sorted by class, then importance from most positive to most negative.
        """
        with single_threaded():
            return self._global_importance(texts, max_texts, seed, batch_size)

    def _global_importance(self, texts, max_texts, seed, batch_size):
        import pandas as pd

        self._check_fitted()
        texts = self._check_inputs(texts)
        if len(texts) > max_texts:
            chosen = np.random.default_rng(seed).choice(len(texts), size=max_texts, replace=False)
            texts = [texts[i] for i in sorted(chosen)]
        module, device = self.module_, self.device
        n_features, n_classes = self.featurizer_.n_features, len(self.label_names)
        sums = torch.zeros(n_features, n_classes, dtype=torch.float64)
        counts = torch.zeros(n_features, dtype=torch.float64)
        for start in range(0, len(texts), batch_size):
            batch = self.featurizer_.transform(texts[start:start + batch_size])
            if batch.indices.numel() == 0:
                continue
            on_device = batch.to(device)
            for c in range(n_classes):
                scores = feature_gradient_x_input(module, on_device, c)
                sums[:, c].index_add_(0, batch.indices, scores.cpu().double())
            counts.index_add_(0, batch.indices, torch.ones(batch.indices.numel(), dtype=torch.float64))
        present = torch.nonzero(counts > 0).flatten()
        means = (sums[present] / counts[present, None]).numpy()
        names = np.asarray(self.featurizer_.features_, dtype=object)[present.numpy()]
        frames = []
        for c, label in enumerate(self.label_names):
            frame = pd.DataFrame({"feature": names, "class": label, "importance": means[:, c],
                                  "n_texts": counts[present].numpy().astype(np.int64)})
            frames.append(frame.sort_values(["importance", "feature"], ascending=[False, True], kind="stable"))
        if not frames:
            return pd.DataFrame(columns=["feature", "class", "importance", "n_texts"])
        return pd.concat(frames, ignore_index=True)

    # -- save / load --------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``vocab.json`` into ``directory``
        (each written to a temporary file and renamed into place; config.json last)."""
        from safetensors.torch import save as safetensors_bytes

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().to("cpu").contiguous() for key, value in self.module_.state_dict().items()}
        atomic_write_bytes(directory / "model.safetensors",  # the same weights always make the same bytes
                           canonical_safetensors(safetensors_bytes(state, metadata={"format": "pt", "kind": self._kind})))
        _atomic_write_text(directory / "vocab.json", json.dumps(self.featurizer_.to_dict(), ensure_ascii=False))
        meta = {
            "format_version": _FORMAT_VERSION, "kind": self._kind, "config": self.config.to_dict(),
            "label_names": self.label_names, "n_features": self.featurizer_.n_features,
            "n_nonzero": getattr(self, "n_nonzero_", None), "history": getattr(self, "history_", []),
            "converged": getattr(self, "converged_", None),
        }
        _atomic_write_text(directory / "config.json", json.dumps(meta, indent=2, ensure_ascii=False))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike):
        """Load a student written by :meth:`save` (safetensors only; pickles are refused).
        On a subclass the saved kind must match; ``Student.load`` loads any kind."""
        from safetensors.torch import load_file

        weights_path, meta, vocab = _read_saved(Path(directory))
        kind = meta.get("kind")
        if cls is Student:
            cls = Student.kinds.get(kind)
            if cls is None:
                raise ValueError(f"{directory} holds a student of unknown kind {kind!r}; known: {sorted(Student.kinds)}.")
        elif kind != cls._kind:
            raise ValueError(f"{directory} holds a {kind!r} student; load it with load_student() or the matching class.")
        student = cls(StudentConfig.from_dict(meta["config"]))
        featurizer = cls._featurizer_class.from_dict(vocab)
        label_names = [str(x) for x in meta["label_names"]]
        state = load_file(str(weights_path))
        module = student._module_for_state(state, featurizer.n_features, len(label_names))
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{weights_path} does not match its config.json/vocab.json: {err}") from None
        module.eval()
        student.featurizer_ = featurizer
        student.module_ = module
        student.label_names = label_names
        student.history_ = meta.get("history", [])
        student.n_nonzero_ = int(torch.count_nonzero(module.bag.weight.detach()))
        student.converged_ = meta.get("converged")
        return student


def _read_saved(directory: Path) -> tuple[Path, dict, dict]:
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory; pass the folder a student was saved to.")
    weights_path = directory / "model.safetensors"
    if not weights_path.is_file():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
        hint = f" Found {pickles}: kd-lens refuses pickle files, which can run code on load." if pickles else ""
        raise ValueError(f"{directory} has no model.safetensors.{hint}")
    try:
        meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{directory} is not a saved student: {Path(err.filename).name} is missing.") from None
    return weights_path, meta, vocab


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
