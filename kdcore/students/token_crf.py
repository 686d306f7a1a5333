"""The structured token student: a linear-chain CRF over readable per-word features.

The score of tag ``c`` on a word (its *emission*) is a sum of named terms a reviewer can list
(:meth:`TokenCRFStudent.emission_terms`):

    emission_c(word) = b_c + sum_f W[f, c]                     window features (:mod:`.window`),
                                                               each of value 1: ``w=paris``, ``w[-1]=in``...
                           + sum_k U[k, c] * teacher_k(word)   the teacher's log-probabilities on the
                                                               word / its window taken alone
                                                               (:mod:`.token_teacher_features`)

and a tag path adds the transition scores ``T[previous tag, tag]`` (:meth:`transitions`, a
``C x C`` table; BIO-invalid steps forbidden) and the start / end scores. Decoding is the CRF's
own Viterbi over emissions and transitions. With ``crf=False`` the same emissions are read as
independent per-word softmaxes (the linear student plus the teacher's features), decoded by the
BIO-constrained Viterbi every token model is read with.

Training minimises the structural distillation loss of :mod:`.crf` (the teacher's per-word
distributions at ``temperature``; or gold tags, for the label-trained twin) plus an L2 penalty,
with full-batch L-BFGS: the objective is convex in ``W``, ``U``, ``b`` and the transition
scores. The CRF is a small torch implementation rather than pytorch-crf / torch-struct: the loss
needs the expected score under soft per-word targets, which pytorch-crf's API (the likelihood of
one tag sequence) does not take, and the partition function is a dozen lines.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config import StudentConfig
from ..tasks.token.metrics import decode
from ..utils import atomic_write_bytes
from .crf import bio_masks, marginals, structural_kd_loss, viterbi
from .token_crf_reading import CLIP as _CLIP, CRFReading
from .token_teacher_features import TeacherWordFeatures
from .window import WindowFeaturizer, word_slots

__all__ = ["TokenCRFConfig", "TokenCRFStudent", "crf_settings", "student_config"]

_FORMAT = "kdcore.token_crf/2"


@dataclass
class TokenCRFConfig:
    """Settings of :class:`TokenCRFStudent`."""

    name: str = "crf"
    crf: bool = True                 # False: independent per-word softmaxes over the same emissions
    teacher_terms: str = "word+window"  # '+'-joined subset of TEACHER_TERMS; "" for none
    min_count: int = 2
    max_features: int = 50_000
    l2: float = 1e-3                 # on W, U and the transitions, per word of the transfer set
    temperature: float = 1.0
    # "marginals": the teacher's per-word distributions (structural KD); "path": its BIO-decoded tags as
    # one-hot targets (sequence-level KD, Kim and Rush 2016). A CRF fitted to flat per-word
    # distributions can decode all O; the path keeps the teacher's entities.
    targets: str = "marginals"
    max_iter: int = 150
    chunk_sentences: int = 512

    def __post_init__(self):
        if self.targets not in ("marginals", "path"):
            raise ValueError(f"targets must be 'marginals' or 'path', got {self.targets!r}.")
        if self.l2 < 0 or self.temperature <= 0 or self.max_iter < 1 or self.chunk_sentences < 1:
            raise ValueError("l2 must be >= 0, temperature > 0, max_iter and chunk_sentences >= 1.")

    @property
    def terms(self) -> list[str]:
        return [t for t in self.teacher_terms.split("+") if t]


class _Emissions(nn.Module):
    def __init__(self, n_features: int, n_dense: int, n_tags: int, allowed_start, allowed_transition):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, n_tags, mode="sum")
        nn.init.zeros_(self.bag.weight)
        self.dense = nn.Parameter(torch.zeros(n_dense, n_tags))
        self.bias = nn.Parameter(torch.zeros(n_tags))
        self.start = nn.Parameter(torch.zeros(n_tags))
        self.transition = nn.Parameter(torch.zeros(n_tags, n_tags))
        self.end = nn.Parameter(torch.zeros(n_tags))
        self.register_buffer("allowed_start", allowed_start)
        self.register_buffer("allowed_transition", allowed_transition)

    def forward(self, indices, offsets, dense) -> torch.Tensor:
        """Emissions ``[n_words, C]``."""
        return self.bag(indices, offsets) + dense @ self.dense + self.bias

    def chain(self) -> tuple:
        return self.start, self.transition, self.end, self.allowed_start, self.allowed_transition


def crf_settings(config: StudentConfig) -> TokenCRFConfig:
    """The :class:`TokenCRFConfig` a ``token_crf`` :class:`~kdcore.config.StudentConfig` describes."""
    if config.kind != "token_crf":
        raise ValueError(f"TokenCRFStudent takes a StudentConfig of kind 'token_crf', got {config.kind!r}.")
    return TokenCRFConfig(**{f.name: getattr(config, f.name) for f in fields(TokenCRFConfig)
                             if f.name != "chunk_sentences"})


def student_config(settings: TokenCRFConfig) -> StudentConfig:
    """The ``token_crf`` StudentConfig of ``settings`` (what a run records of the student)."""
    return StudentConfig(kind="token_crf", **{f.name: getattr(settings, f.name) for f in fields(TokenCRFConfig)
                                              if f.name != "chunk_sentences"})


class TokenCRFStudent(CRFReading):
    """Linear-chain CRF token student (see the module docstring). ``fit_sentences`` -> self,
    ``predict_proba`` / ``predict_word_logits`` (per-word marginals), ``predict`` / ``tag`` (BIO tags),
    ``save`` / ``load``; ``use_teacher`` attaches the teacher for words never scored before.

    ``config``: a ``token_crf`` :class:`~kdcore.config.StudentConfig` (as a run builds it) or a
    :class:`TokenCRFConfig`; ``student.config`` is always the StudentConfig, ``student.settings`` the
    TokenCRFConfig read from it."""

    _kind = "token_crf"

    def __init__(self, config: StudentConfig | TokenCRFConfig | None = None, **overrides):
        if isinstance(config, StudentConfig):
            if overrides:
                config = StudentConfig.from_dict({**config.to_dict(), **overrides})
            self.settings = crf_settings(config)
        else:
            self.settings = config if config is not None else TokenCRFConfig(**overrides)
            config = student_config(self.settings)
        self.config = config
        self.label_names: list[str] = []
        self.teacher_features_: TeacherWordFeatures | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def decodes_itself(self) -> bool:
        """Whether the tags come from the student's own decoder (the CRF's Viterbi over its transitions)
        rather than from the BIO-constrained Viterbi over its per-word log-probabilities."""
        return self.settings.crf

    def __repr__(self) -> str:
        return f"TokenCRFStudent(name={self.name!r})"

    def use_teacher(self, teacher, cache_dir=None) -> "TokenCRFStudent":
        """Read the teacher features of unseen words from ``teacher`` (or a TokenTeacherCache)."""
        if self.teacher_features_ is None:
            self._pending_teacher = (teacher, cache_dir)
        else:
            self.teacher_features_.use_teacher(teacher, cache_dir)
        return self

    # -- inputs ----------------------------------------------------------------------------

    def _inputs(self, sentences, progress=None) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per sentence: window feature ids, their offsets, dense teacher columns."""
        dense = (self.teacher_features_.transform(sentences, progress) if self.settings.terms
                 else [np.zeros((len(s), 0), np.float32) for s in sentences])
        out = []
        for words, columns in zip(sentences, dense):
            batch = self.featurizer_.transform(word_slots([words]))
            out.append((batch.indices, batch.offsets, torch.from_numpy(np.maximum(columns, _CLIP))))
        return out

    @staticmethod
    def _batch(inputs, chosen) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sentences ``chosen`` as one bag input (indices, offsets, dense columns) and their mask ``[B, L]``."""
        lengths = [len(inputs[k][1]) for k in chosen]
        indices, offsets, dense, at = [], [], [], 0
        for k in chosen:
            ids, offs, columns = inputs[k]
            indices.append(ids)
            offsets.append(offs + at)
            dense.append(columns)
            at += len(ids)
        mask = torch.arange(max(lengths)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        return torch.cat(indices), torch.cat(offsets), torch.cat(dense), mask

    def _padded(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Emissions ``[B, L, C]`` and mask ``[B, L]`` of a :meth:`_batch`."""
        indices, offsets, dense, mask = batch
        flat = self.module_(indices, offsets, dense)
        emissions = flat.new_zeros(*mask.shape, flat.shape[1])
        emissions[mask] = flat
        return emissions, mask

    # -- training --------------------------------------------------------------------------

    def fit_sentences(self, sentences: Sequence[Sequence[str]], teacher_logits=None, tags=None, label_names=None,
                      teacher=None, progress=None, device=None, distill=None) -> "TokenCRFStudent":
        """Fit on the teacher's per-word logits (one ``[n_words, C]`` array per sentence) or on gold tag
        ids (the label-trained twin; give exactly one). ``teacher``: where the teacher features come from
        (a token teacher or a TokenTeacherCache). The CRF trains on the CPU with its own settings, so a
        build's ``device`` is not used, and of ``distill`` only ``alpha = 0`` is accepted (gold tags are
        the twin's, not mixed in)."""
        if distill is not None and distill.alpha > 0:
            raise ValueError(f"Student {self.name!r} (token_crf) learns from the teacher alone; set distill.alpha "
                             "to 0 (its label-trained twin is the one fitted on gold tags).")
        if (teacher_logits is None) == (tags is None):
            raise ValueError("Give teacher_logits (distillation) or tags (the label-trained twin), not both or neither.")
        if not label_names:
            raise ValueError("label_names are needed: the tag of each logit column (e.g. teacher.label_names).")
        sentences = [[str(w) for w in s] for s in sentences if len(s)]
        self.label_names = list(label_names)
        C = len(self.label_names)
        targets = self._targets(teacher_logits, tags, C)
        self.featurizer_ = WindowFeaturizer(self.settings.min_count, self.settings.max_features).fit(word_slots(sentences))
        self.teacher_features_ = TeacherWordFeatures(self.settings.terms, self.label_names)
        pending, cache_dir = getattr(self, "_pending_teacher", (None, None))
        source = teacher if teacher is not None else pending
        if self.settings.terms:
            if source is None:
                raise ValueError("This student reads the teacher's features: pass teacher= (or call use_teacher).")
            self.teacher_features_.use_teacher(source, cache_dir if teacher is None else None)
        inputs = self._inputs(sentences, progress)
        allowed_start, allowed_transition = bio_masks(self.label_names)
        self.module_ = _Emissions(self.featurizer_.n_features, self.teacher_features_.n_columns, C,
                                  allowed_start, allowed_transition)
        self._optimise(inputs, targets)
        return self

    def _targets(self, teacher_logits, tags, C) -> list[torch.Tensor]:
        if teacher_logits is not None and self.settings.targets == "path":
            paths = decode([t for t in teacher_logits if len(t)], self.label_names)
            tags = [[self.label_names.index(tag) for tag in path] for path in paths]
        elif teacher_logits is not None:
            return [torch.softmax(torch.as_tensor(np.asarray(t, np.float32)) / self.settings.temperature, dim=1)
                    for t in teacher_logits if len(t)]
        return [torch.nn.functional.one_hot(torch.as_tensor(np.asarray(t, np.int64)), C).float() for t in tags if len(t)]

    def _optimise(self, inputs, targets) -> None:
        order = sorted(range(len(inputs)), key=lambda k: len(targets[k]))
        chunks = [order[i:i + self.settings.chunk_sentences] for i in range(0, len(order), self.settings.chunk_sentences)]
        n_words = float(sum(len(t) for t in targets))
        module, l2 = self.module_, self.settings.l2
        optimiser = torch.optim.LBFGS(module.parameters(), lr=1.0, max_iter=self.settings.max_iter,
                                      history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-6)
        self.history_ = []

        batches = [(self._batch(inputs, chunk), torch.cat([targets[k] for k in chunk]),
                    nn.utils.rnn.pad_sequence([targets[k] for k in chunk], batch_first=True)) for chunk in chunks]

        def closure():
            optimiser.zero_grad()
            total = 0.0
            for batch, flat_target, target in batches:
                if self.settings.crf:
                    emissions, mask = self._padded(batch)
                    loss = structural_kd_loss(emissions, mask, target, *module.chain())
                else:
                    loss = -(flat_target * torch.log_softmax(module(*batch[:3]), dim=1)).sum()
                loss = loss / n_words
                loss.backward()
                total += float(loss.detach())
            penalty = l2 * (module.bag.weight.pow(2).sum() + module.dense.pow(2).sum() + module.transition.pow(2).sum())
            penalty.backward()
            self.history_.append(total + float(penalty.detach()))
            return torch.tensor(self.history_[-1])

        optimiser.step(closure)
        self.n_iter_ = len(self.history_)

    # -- prediction ------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ValueError(f"Student {self.name!r} is not fitted yet; call fit_sentences() or load() first.")

    def _emissions(self, sentences) -> list[torch.Tensor]:
        self._check_fitted()
        sentences = [[str(w) for w in s] for s in sentences]
        inputs = self._inputs(sentences)
        with torch.no_grad():
            return [self.module_(*x) if len(x[1]) else torch.zeros(0, len(self.label_names)) for x in inputs]

    def predict_word_logits(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per-word log-probabilities ``[n_words, C]`` of each sentence: the CRF's marginals (with
        ``crf=False``, the per-word softmax)."""
        out = []
        for emissions in self._emissions(sentences):
            if not len(emissions):
                out.append(np.zeros((0, len(self.label_names)), np.float32))
            elif self.settings.crf:
                mask = torch.ones(1, len(emissions), dtype=torch.bool)
                p = marginals(emissions.unsqueeze(0), mask, *self.module_.chain())[0]
                out.append(torch.log(p.clamp_min(1e-12)).numpy())
            else:
                out.append(torch.log_softmax(emissions, dim=1).numpy())
        return out

    def predict_proba(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [np.exp(rows) for rows in self.predict_word_logits(sentences)]

    def tag(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """BIO tags of each sentence: the CRF's Viterbi path over emissions and transitions (BIO-invalid
        steps forbidden); with ``crf=False`` the BIO-constrained Viterbi over per-word log-probabilities."""
        if not self.settings.crf:
            return decode(self.predict_word_logits(sentences), self.label_names)
        with torch.no_grad():
            return [[self.label_names[k] for k in viterbi(e, *self.module_.chain())] for e in self._emissions(sentences)]

    predict = tag

    # -- saving ----------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """``config.json`` (settings, tags, window vocabulary, teacher-feature keys) and
        ``model.safetensors`` (weights and the teacher features of every word read so far)."""
        from safetensors.torch import save

        self._check_fitted()
        directory = Path(directory)
        keys, rows = self.teacher_features_.to_arrays()
        tensors = {f"module.{k}": v.detach().contiguous() for k, v in self.module_.state_dict().items()}
        tensors["teacher_table"] = torch.from_numpy(rows).contiguous()
        meta = {"format": _FORMAT, "kind": self._kind, "config": self.config.to_dict(), "label_names": self.label_names,
                "featurizer": self.featurizer_.to_dict(), "teacher_keys": keys, "history": getattr(self, "history_", []),
                "chunk_sentences": self.settings.chunk_sentences}
        atomic_write_bytes(directory / "model.safetensors", save(tensors))
        atomic_write_bytes(directory / "config.json", json.dumps(meta, ensure_ascii=False).encode())
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, teacher=None) -> "TokenCRFStudent":
        """A student written by :meth:`save`; ``teacher`` (or a later :meth:`use_teacher`) scores the words
        its saved table lacks."""
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{directory} does not hold a token CRF student (format {meta.get('format')!r}).")
        tensors = load_file(str(directory / "model.safetensors"))
        student = cls(StudentConfig.from_dict(meta["config"]))
        student.settings.chunk_sentences = int(meta.get("chunk_sentences", student.settings.chunk_sentences))
        student.history_ = list(meta.get("history", []))
        student.label_names = list(meta["label_names"])
        student.featurizer_ = WindowFeaturizer.from_dict(meta["featurizer"])
        table = dict(zip(meta["teacher_keys"], tensors["teacher_table"].numpy()))
        student.teacher_features_ = TeacherWordFeatures(student.settings.terms, student.label_names, table=table)
        state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        student.module_ = _Emissions(student.featurizer_.n_features, state["dense"].shape[0], len(student.label_names),
                                     state["allowed_start"], state["allowed_transition"])
        student.module_.load_state_dict(state)
        if teacher is not None:
            student.use_teacher(teacher)
        return student
