"""Configuration dataclasses. Each validates itself and is saved inside every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = ["TeacherConfig", "StudentConfig", "DistillConfig", "config_from_dict"]

LOSS_CHOICES = ("kd_kl", "kd_mse", "hard_ce")
STUDENT_KINDS = ("linear", "mlp")
WEIGHTINGS = ("count", "log", "tfidf")
SOLVERS = ("auto", "lbfgs", "adam")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(map(str, choices))}.")


def _check_positive(name: str, value, allow_zero: bool = False) -> None:
    if value is None or (value < 0 if allow_zero else value <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}.")


class _Config:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}; known: {sorted(known)}.")
        return cls(**data)


@dataclass
class TeacherConfig(_Config):
    """How the teacher is loaded and fine-tuned."""

    name_or_path: str = field(default="embedded-minilm", metadata={"help": "HF hub id, local folder, or 'embedded-minilm'."})
    max_length: int = field(default=128, metadata={"help": "Tokens per window; longer texts are split into overlapping windows."})
    stride: int = field(default=32, metadata={"help": "Token overlap between windows of a long text."})
    epochs: float = field(default=1.5, metadata={"help": "Fine-tuning epochs (0 = use the model as loaded)."})
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_steps: int = field(default=450, metadata={"help": "Cap on optimiser steps (0 = no cap)."})
    eval_every: int = field(default=150, metadata={"help": "Steps between dev evaluations (early stop, checkpoint)."})
    patience: int = field(default=2, metadata={"help": "Dev evaluations without improvement before stopping."})
    predict_batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_length", "batch_size", "predict_batch_size", "learning_rate", "eval_every"):
            _check_positive(name, getattr(self, name))
        for name in ("epochs", "max_steps", "patience", "weight_decay", "warmup_ratio"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 <= self.stride < self.max_length - 2:
            raise ValueError(f"stride must be in [0, max_length - 2); got {self.stride} with max_length {self.max_length}.")
        if self.warmup_ratio >= 1:
            raise ValueError("warmup_ratio must be below 1 (a fraction of the training steps).")


@dataclass
class StudentConfig(_Config):
    """One student: its kind, featurizer and training options."""

    kind: str = field(default="linear", metadata={"help": "linear or mlp."})
    name: str = ""
    ngram_max: int = field(default=2, metadata={"help": "1 = words only, 2 = words and word pairs."})
    min_count: int = 2
    max_features: int = 50_000
    weighting: str = field(default="log", metadata={"help": "count, log or tfidf feature values."})
    hidden_size: int = 64
    dropout: float = 0.1
    max_steps: int = field(default=5832, metadata={"help": "Adam only: optimiser steps (batches), whatever the data size. "
                                                  "5832 = 8 passes over the 46,649-text demo transfer set at batch_size 64."})
    tol: float = field(default=1e-4, metadata={"help": "Adam only: a pass over the data whose training loss is not tol below "
                                               "the best so far counts towards n_iter_no_change."})
    n_iter_no_change: int = field(default=10, metadata={"help": "Adam only: stop after this many passes without improvement "
                                                        "by tol (0 = always train max_steps)."})
    batch_size: int = 64
    learning_rate: float = field(default=0.003, metadata={"help": "Adam step size (0.003 measured best on the default corpus)."})
    weight_decay: float = 0.0
    solver: str = field(default="auto", metadata={"help": "auto, lbfgs or adam. auto: L-BFGS for a linear student "
                                                  "(without l1 or attr_match), Adam otherwise."})
    l2: float = field(default=1.0, metadata={"help": "L-BFGS only: L2 penalty l2 * ||W||^2 added to the loss summed "
                                             "over texts (1.0 measured best on the default corpus)."})
    max_iter: int = field(default=200, metadata={"help": "L-BFGS only: most iterations (it stops sooner once converged)."})
    l1: float = field(default=0.0, metadata={"help": "L1 penalty on the linear weights (sparser, easier to read)."})
    top_k: int = field(default=0, metadata={"help": "Keep only the k largest weights per class after training (0 = keep all)."})
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, STUDENT_KINDS)
        _check_choice("weighting", self.weighting, WEIGHTINGS)
        _check_choice("solver", self.solver, SOLVERS)
        if self.solver == "lbfgs" and self.kind != "linear":
            raise ValueError("solver='lbfgs' is for the linear student; the MLP trains with Adam (solver='adam' or 'auto').")
        if self.ngram_max not in (1, 2):
            raise ValueError(f"ngram_max must be 1 or 2, got {self.ngram_max}.")
        for name in ("min_count", "max_features", "hidden_size", "max_steps", "batch_size", "learning_rate", "max_iter"):
            _check_positive(name, getattr(self, name))
        for name in ("weight_decay", "l1", "top_k", "l2", "tol", "n_iter_no_change"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if not self.name:
            self.name = self.kind

    @classmethod
    def from_dict(cls, data: dict) -> "StudentConfig":
        """Build from :meth:`to_dict` output. The ``epochs`` of configs written before
        ``max_steps`` existed is dropped (with a DeprecationWarning): an epoch count has no
        fixed number of steps, and a saved student's weights do not depend on it any more."""
        if "epochs" in data:
            import warnings

            warnings.warn("StudentConfig.epochs was replaced by max_steps (Adam optimiser steps); the saved "
                          f"epochs={data['epochs']!r} is ignored.", DeprecationWarning, stacklevel=2)
            data = {key: value for key, value in data.items() if key != "epochs"}
        return super().from_dict(data)


@dataclass
class DistillConfig(_Config):
    """How students learn from the teacher."""

    loss: str = field(default="kd_kl", metadata={"help": "kd_kl (Hinton), kd_mse (Tang et al.) or hard_ce (labels only)."})
    temperature: float = 2.0
    alpha: float = field(default=0.0, metadata={"help": "Weight of hard-label cross-entropy where gold labels exist."})
    feature_align: float = field(default=0.0, metadata={"help": "Weight of the FitNets hint loss (MLP student only)."})
    attr_match: float = field(default=0.0, metadata={"help": "Weight of matching the teacher's word attributions."})
    augment_copies: int = field(default=2, metadata={"help": "Augmented copies per training text in the transfer set."})
    mask_prob: float = 0.1
    swap_prob: float = 0.1
    ngram_prob: float = 0.25
    clauses: bool = field(default=True, metadata={"help": "Add the clauses of the training texts (cut at , ; : -- but) to the transfer set."})
    use_unlabelled: bool = field(default=True, metadata={"help": "Add unlabelled texts of the corpus to the transfer set."})
    train_label_baseline: bool = field(default=True, metadata={"help": "Train a label-only twin of each student."})
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice("loss", self.loss, LOSS_CHOICES)
        _check_positive("temperature", self.temperature)
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
        for name in ("feature_align", "attr_match", "augment_copies"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("mask_prob", "swap_prob", "ngram_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}.")


def config_from_dict(kind: str, data: dict):
    classes = {"teacher": TeacherConfig, "student": StudentConfig, "distill": DistillConfig}
    _check_choice("config kind", kind, tuple(classes))
    return classes[kind].from_dict(data)
