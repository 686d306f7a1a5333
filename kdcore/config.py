"""Configuration dataclasses. Each validates itself and is saved inside every run."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields

__all__ = ["TeacherConfig", "StudentConfig", "DistillConfig", "config_from_dict", "LINEAR_KINDS", "check_name",
           "RESERVED_NAME_SUFFIXES"]

LOSS_CHOICES = ("kd_kl", "kd_mse", "hard_ce")
STUDENT_KINDS = ("linear", "mlp", "aug_linear", "token_linear", "token_mlp", "token_crf")
# The kinds that are one linear layer over their features (convex; L-BFGS applies; no hidden layer
# for feature_align; weights read directly in the Weights view).
LINEAR_KINDS = ("linear", "aug_linear", "token_linear")
AUG_TERMS = ("free", "embedding", "teacher")
# The teacher's per-word readings a token_crf student may take as features, in their column order
# (kdcore.students.token_teacher_features): the word alone, its three-word window alone, the
# neighbours alone.
TOKEN_TEACHER_TERMS = ("word", "window", "prev", "next")
CRF_TARGETS = ("path", "marginals")
WEIGHTINGS = ("count", "log", "tfidf")
SOLVERS = ("auto", "lbfgs", "adam")
# The fewest optimiser steps a teacher is fine-tuned for. The default 1.5 epochs are 36 steps on the
# debates corpus's 739 statements, which left the teacher at dev accuracy 0.487 (0.411-0.565); 150 steps
# gave 0.715 (0.640-0.780) and 300 gave 0.753 (0.680-0.814) (bench/teacher_min_steps.py,
# bench/results/teacher_min_steps_debates.json). The demo's 10,202 reviews reach 450 steps by epochs.
MIN_TEACHER_STEPS = 300

# A run and a student are folders named after them: 1-100 letters, digits, '.', '_' or '-', starting with a
# letter or digit (so no path, no control character, no newline). The run store uses two suffixes itself: a
# run being built lives in ``NAME.partial`` and its lock is ``NAME.lock``.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
RESERVED_NAME_SUFFIXES = (".partial", ".lock")


def check_name(name, what: str = "Run") -> str:
    """``name`` when it can name a run (or a student) folder; ValueError saying the rule otherwise."""
    rule = "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or ".." in name:
        raise ValueError(f"{what} name {name!r} is not allowed: {rule}.")
    if name.lower().endswith(RESERVED_NAME_SUFFIXES):
        raise ValueError(f"{what} name {name!r} is not allowed: names ending in "
                         f"{' or '.join(RESERVED_NAME_SUFFIXES)} are the run store's own; choose another.")
    return name


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
    min_steps: int = field(default=MIN_TEACHER_STEPS, metadata={"help": "Fine-tuning runs at least this many optimiser "
                           "steps (more epochs on small data), within max_steps; 0 = epochs alone decide."})
    eval_every: int = field(default=150, metadata={"help": "Steps between dev evaluations (early stop, checkpoint)."})
    patience: int = field(default=2, metadata={"help": "Dev evaluations without improvement before stopping."})
    predict_batch_size: int = 64
    seed: int = 0
    length_grouped: bool = field(default=True, metadata={"help": "Fine-tuning batches of similar lengths: the shuffled "
                                 "order cut into groups of 50 batches, each sorted by length, the batches shuffled "
                                 "(about 1.7x fewer padded tokens on the demo corpora); False = plain shuffled batches."})

    def __post_init__(self) -> None:
        for name in ("max_length", "batch_size", "predict_batch_size", "learning_rate", "eval_every"):
            _check_positive(name, getattr(self, name))
        for name in ("epochs", "max_steps", "min_steps", "patience", "weight_decay", "warmup_ratio"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 <= self.stride < self.max_length - 2:
            raise ValueError(f"stride must be in [0, max_length - 2); got {self.stride} with max_length {self.max_length}.")
        if self.warmup_ratio >= 1:
            raise ValueError("warmup_ratio must be below 1 (a fraction of the training steps).")

    def planned_steps(self, n_examples: int) -> int:
        """Optimiser steps of a fine-tuning run on ``n_examples``: ``epochs`` of batches, at least
        ``min_steps`` (when fine-tuning at all), at most ``max_steps`` (when set)."""
        if self.epochs <= 0 or n_examples <= 0:
            return 0
        steps = max(math.ceil(math.ceil(n_examples / self.batch_size) * self.epochs), self.min_steps)
        return min(steps, self.max_steps) if self.max_steps else steps


@dataclass
class StudentConfig(_Config):
    """One student: its kind, featurizer and training options."""

    kind: str = field(default="linear", metadata={"help": "linear, mlp or aug_linear (linear over n-grams whose "
                                                  "scores also read the teacher's view of each n-gram); token_linear "
                                                  "/ token_mlp / token_crf for token classification."})
    name: str = ""
    ngram_max: int = field(default=2, metadata={"help": "1 = words only, 2 = words and word pairs, 3 = also word "
                                                "triples."})
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
    aug_terms: str = field(default="free+embedding+teacher", metadata={"help": "aug_linear only: the '+'-joined "
                           "parts of each n-gram's score: free (its own weight), embedding (w_c . the teacher "
                           "encoder's embedding of the n-gram), teacher (u_c . the teacher's logits on the n-gram)."})
    aug_l2: float = field(default=1.0, metadata={"help": "aug_linear only: L2 penalty on the embedding / teacher "
                          "projection (as l2, over the loss summed over texts)."})
    embed_unseen: bool = field(default=True, metadata={"help": "aug_linear only: score n-grams never seen in "
                               "training through their teacher features, computed on the fly (else they count 0)."})
    crf: bool = field(default=True, metadata={"help": "token_crf only: decode through a linear-chain CRF (tag "
                      "transitions learned); False reads the same emissions as independent per-word softmaxes."})
    teacher_terms: str = field(default="word+window", metadata={"help": "token_crf only: the '+'-joined teacher "
                               "readings each word gets as features: word (the teacher's tag log-probabilities on "
                               "the word alone), window (on its three-word window alone), prev, next (the "
                               "neighbours alone); '' for none."})
    targets: str = field(default="path", metadata={"help": "token_crf only: path (the teacher's BIO-decoded tags "
                         "as targets) or marginals (its per-word distributions at temperature)."})
    temperature: float = field(default=1.0, metadata={"help": "token_crf only, with targets='marginals': the "
                               "temperature of the teacher's per-word distributions."})

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, STUDENT_KINDS)
        _check_choice("weighting", self.weighting, WEIGHTINGS)
        _check_choice("solver", self.solver, SOLVERS)
        if self.solver == "lbfgs" and self.kind not in LINEAR_KINDS:
            raise ValueError("solver='lbfgs' is for the linear student; the MLP trains with Adam (solver='adam' or 'auto').")
        self._check_aug()
        self._check_crf()
        if self.ngram_max not in (1, 2, 3):
            raise ValueError(f"ngram_max must be 1, 2 or 3, got {self.ngram_max}.")
        for name in ("min_count", "max_features", "hidden_size", "max_steps", "batch_size", "learning_rate", "max_iter"):
            _check_positive(name, getattr(self, name))
        for name in ("weight_decay", "l1", "top_k", "l2", "tol", "n_iter_no_change"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if not self.name:
            self.name = self.kind
        check_name(self.name, "Student")

    def _check_aug(self) -> None:
        terms = [t for t in str(self.aug_terms).split("+") if t]
        if not terms or any(t not in AUG_TERMS for t in terms):
            raise ValueError(f"aug_terms={self.aug_terms!r} is not valid; join one or more of {', '.join(AUG_TERMS)} "
                             "with '+' (e.g. 'free+embedding+teacher').")
        self.aug_terms = "+".join(t for t in AUG_TERMS if t in terms)
        _check_positive("aug_l2", self.aug_l2, allow_zero=True)
        self.embed_unseen = bool(self.embed_unseen)
        if self.kind == "aug_linear" and (self.solver == "adam" or self.l1 > 0):
            raise ValueError("aug_linear trains with L-BFGS only: use solver='auto' (or 'lbfgs') and l1=0.")

    def _check_crf(self) -> None:
        terms = [t for t in str(self.teacher_terms).split("+") if t]
        if any(t not in TOKEN_TEACHER_TERMS for t in terms):
            raise ValueError(f"teacher_terms={self.teacher_terms!r} is not valid; join any of "
                             f"{', '.join(TOKEN_TEACHER_TERMS)} with '+' (e.g. 'word+window'), or give '' for none.")
        self.teacher_terms = "+".join(t for t in TOKEN_TEACHER_TERMS if t in terms)
        _check_choice("targets", self.targets, CRF_TARGETS)
        _check_positive("temperature", self.temperature)
        self.crf = bool(self.crf)

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
    temperature: float = field(default=0.5, metadata={"help": "kd_kl temperature (0.5 gave the highest dev fidelity "
                                                      "on the default corpus among 0.3, 0.5, 0.7, 1 and 2)."})
    alpha: float = field(default=0.0, metadata={"help": "Weight of hard-label cross-entropy where gold labels exist."})
    feature_align: float = field(default=0.0, metadata={"help": "Weight of the FitNets hint loss (MLP student only)."})
    attr_match: float = field(default=0.0, metadata={"help": "Weight of matching the teacher's word attributions."})
    augment_copies: int = field(default=2, metadata={"help": "Augmented copies per training text in the transfer set."})
    mention_copies: int = field(default=0, metadata={
        "help": "Token runs: copies of each training sentence with its entity mentions replaced by others of the "
                "same type, plus one tag-keeping word-substitution copy, labelled by the teacher (0 = off: on the "
                "token demo they gained less than one standard error on dev)."})
    mask_prob: float = 0.1
    swap_prob: float = 0.1
    ngram_prob: float = 0.25
    ngram_max_words: int = field(default=5, metadata={"help": "Longest n-gram sample, in words (5 as Tang et al.)."})
    clauses: bool = field(default=True, metadata={"help": "Add the clauses of the training texts (cut at , ; : -- but) to the transfer set."})
    use_unlabelled: bool = field(default=True, metadata={"help": "Add unlabelled texts of the corpus to the transfer set."})
    train_label_baseline: bool = field(default=True, metadata={"help": "Train a label-only twin of each student."})
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice("loss", self.loss, LOSS_CHOICES)
        _check_positive("temperature", self.temperature)
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
        for name in ("feature_align", "attr_match", "augment_copies", "mention_copies"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        _check_positive("ngram_max_words", self.ngram_max_words)
        for name in ("mask_prob", "swap_prob", "ngram_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}.")


def config_from_dict(kind: str, data: dict):
    classes = {"teacher": TeacherConfig, "student": StudentConfig, "distill": DistillConfig}
    _check_choice("config kind", kind, tuple(classes))
    return classes[kind].from_dict(data)


# ------------------------------------------------------------------------------ a whole run
# Added after the three configs above; they are left as they are so that the run spec carries
# whole StudentConfig objects and never names their fields.
import re as _re  # noqa: E402

from .labels import parse_label_map  # noqa: E402
from .records import LABEL_TWIN_SUFFIX  # noqa: E402
from .tasks import get_task, task_names  # noqa: E402

__all__ += ["DataSource", "RunSpec", "RUN_NAME_PATTERN", "DEFAULT_STUDENTS", "STUDENT_DEFAULTS",
            "DEFAULT_EXPLAIN_METHODS", "default_students", "TASKS", "DEFAULT_TOKEN_STUDENTS",
            "TOKEN_CRF_STUDENT"]

# The run store (runs.resolve_run_path) uses the same rule (check_name); a spec refuses a bad name before any work.
RUN_NAME_PATTERN = _re.compile(rf"^{NAME_PATTERN}\Z")
DEFAULT_EXPLAIN_METHODS = ("integrated_gradients", "gradient_x_input", "occlusion")
# The MLP is kept small (16 hidden units over the 15,000 most frequent features) so that it
# stays >= 50x smaller than the MiniLM teacher on disk.
# The embedding-augmented linear student ("aug") won on the demo's dev split (fidelity 0.853 against the
# plain linear student's 0.842; bench/aug_ablation.py); the plain one stays as the readable baseline. Its
# vocabulary holds up to 150,000 n-grams (on the demo corpus every word and word pair in two or more texts):
# each kept n-gram gets its own weight beside its teacher features, dev fidelity 0.868 against 0.853 at
# 50,000 (paired difference +1.6 points, standard error 0.6), while the plain linear student gains nothing
# from the larger vocabulary. Word triples added no more than their standard error on top (+0.4 ± 0.5).
DEFAULT_STUDENTS = (StudentConfig(kind="linear", name="linear"),
                    StudentConfig(kind="mlp", name="mlp", hidden_size=16, max_features=15_000),
                    StudentConfig(kind="aug_linear", name="aug", max_features=150_000))
TASKS = task_names()
# The token task's students: the same two, over the window features of one word (kdcore/students/token.py),
# and the CRF (kdcore/students/token_crf.py). L2 0.03 for the linear: the best dev entity agreement with the
# teacher on WNUT-16 among 0.03-3 (bench/token_dev_settings.py).
# The CRF student reads the teacher's tag log-probabilities on each word and on its window taken alone beside
# its window features, fitted to the teacher's decoded tag path: the best row of the dev ablation
# (bench/token_ablation.py, bench/results/token_ablation_dev.md: entity agreement 0.832 against 0.519 for
# the window linear student; L2 1e-3, 60 L-BFGS iterations; the temperature is read only with
# targets="marginals"). Its settings are chosen here alone.
TOKEN_CRF_STUDENT = StudentConfig(kind="token_crf", name="crf", crf=True, teacher_terms="word+window", targets="path",
                                  l2=1e-3, max_iter=60, temperature=0.5)
DEFAULT_TOKEN_STUDENTS = (StudentConfig(kind="token_linear", name="linear", l2=0.03),
                          StudentConfig(kind="token_mlp", name="mlp", hidden_size=32, max_features=15_000),
                          TOKEN_CRF_STUDENT)
# Every kind's default (the CLI's --students and the Distill view choose among them).
STUDENT_DEFAULTS = {config.kind: config for config in (*DEFAULT_STUDENTS, *DEFAULT_TOKEN_STUDENTS)}


def default_students(kinds=None, max_steps: int | None = None, task: str = "sequence") -> list[StudentConfig]:
    """The default StudentConfig of each kind in ``kinds`` (None: every kind the task offers, the augmented
    student included for texts), with the Adam step budget set to ``max_steps`` when given. The CLI and the
    dashboard both build their students here, so they agree. For ``task="token"`` the kinds linear / mlp
    name the token students (token_linear / token_mlp)."""
    _check_choice("task", task, TASKS)
    kinds = get_task(task).student_kinds(get_task(task).student_choices() if kinds is None else kinds)
    defaults = STUDENT_DEFAULTS
    chosen = []
    for kind in kinds:
        if kind not in defaults:
            raise ValueError(f"Unknown student kind {kind!r}; choose from {', '.join(defaults)}.")
        data = defaults[kind].to_dict()
        if max_steps is not None:
            data["max_steps"] = int(max_steps)
        chosen.append(StudentConfig.from_dict(data))
    return chosen


@dataclass
class DataSource(_Config):
    """Where a run's texts come from: the embedded corpus (``path=None``) or a CSV / TSV / JSONL / JSON /
    TXT file split into train/dev/test by a seeded hash of each text."""

    path: str | None = field(default=None, metadata={"help": "Data file; None = the embedded Rotten Tomatoes corpus."})
    text_column: str | None = field(default=None, metadata={"help": "Text column (detected when None)."})
    label_column: str | None = field(default=None, metadata={"help": "Label column (detected when None; 'none' = "
                                                             "no labels, pure distillation)."})
    seed: int = field(default=0, metadata={"help": "Seed of the train/dev/test split."})
    corpus: str = field(default="rotten_tomatoes", metadata={"help": "Embedded corpus used when path is None: "
                                                           "rotten_tomatoes (2 classes) or debates (3 classes)."})

    def __post_init__(self) -> None:
        _check_choice("corpus", self.corpus, [name for task in TASKS for name in get_task(task).corpora()])
        if self.path is not None:
            self.path = str(self.path)
            if not self.path.strip():
                raise ValueError("data path is empty; give a data file, or path=None for the embedded corpus.")
        elif self.text_column or self.label_column:
            raise ValueError("text_column and label_column name columns of a data file; set the data path too, "
                             "or leave them out to use the embedded corpus.")

    def reader_options(self) -> dict:
        """Keyword arguments of kdcore.data.read_any for this source."""
        no_labels = isinstance(self.label_column, str) and self.label_column.lower() == "none"
        return {"text_column": self.text_column, "label_column": False if no_labels else self.label_column}


@dataclass
class RunSpec:
    """Everything that decides a run: what ``build_run`` builds, saved in the run's manifest and handed
    to a background build as JSON (``python -m kdcore distill --spec FILE``).

    Nested configs may be given as objects or as their dicts; ``__post_init__`` turns dicts into
    configs (each validating itself) and rejects nonsense with a message that says the fix.
    """

    name: str
    teacher_source: str = field(default="embedded-minilm", metadata={"help": "Local folder, hub id or 'embedded-minilm'."})
    teacher_is_encoder: bool = field(default=True, metadata={"help": "A bare encoder: add a head and fine-tune it."})
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    students: tuple = field(default=DEFAULT_STUDENTS)
    distill: DistillConfig = field(default_factory=DistillConfig)
    data: DataSource = field(default_factory=DataSource)
    explain_sample: int = field(default=0, metadata={"help": "Test texts for explanation metrics (0 = none)."})
    explain_methods: tuple = field(default=DEFAULT_EXPLAIN_METHODS)
    extra_texts: tuple = field(default=(), metadata={"help": "Unlabelled texts added to the transfer set."})
    cache_dir: str | None = field(default=".cache/teacher_logits", metadata={"help": "Teacher logits cache (None = off)."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, mps (None = the best present)."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (None = every core)."})
    label_map: dict = field(default_factory=dict, metadata={"help": "Teacher class -> data class, for a pretrained "
                                                            "teacher whose class names differ from the data's."})
    labels_by_index: bool = field(default=False, metadata={"help": "Match a pretrained teacher's placeholder classes "
                                                           "(LABEL_0, ...) to the data's classes by position."})
    task: str = field(default="sequence", metadata={"help": "sequence (one label a text) or token (one BIO tag a "
                                                    "word; kdcore/tasks/token)."})
    teacher_logits: tuple = field(default=(), metadata={"help": "Label folders of `python -m kdcore label`: the "
                                                        "transfer set's teacher logits are read from them by text hash "
                                                        "instead of being computed."})

    def __post_init__(self) -> None:
        _check_choice("task", self.task, TASKS)
        check_name(self.name, "Run")
        if not isinstance(self.teacher_source, str) or not self.teacher_source.strip():
            raise ValueError("teacher_source is empty: give a local model folder, a hub id or 'embedded-minilm'.")
        self.teacher_is_encoder = bool(self.teacher_is_encoder)
        self.teacher = _as_config(TeacherConfig, self.teacher, "teacher")
        if self.teacher_is_encoder and self.teacher.epochs == 0:
            # A bare encoder gets a randomly initialised head: distilling it untrained would show
            # numbers that mean nothing.
            raise ValueError("A bare encoder needs fine-tuning (its classification head starts random): set teacher "
                             "epochs > 0 (e.g. 1.5), or give a trained classifier as the teacher.")
        self.label_map = parse_label_map(self.label_map)
        self.labels_by_index = bool(self.labels_by_index)
        if self.label_map and self.teacher_is_encoder:
            raise ValueError("label_map maps a trained teacher's classes; a bare encoder learns the data's classes "
                             "as they are. Drop the label map, or give a trained classifier as the teacher.")
        self.distill = _as_config(DistillConfig, self.distill, "distill")
        self.data = _as_config(DataSource, self.data, "data")
        if isinstance(self.students, (StudentConfig, dict, str)):
            raise ValueError("students must be a list of StudentConfig (or their dicts), not a single one.")
        if self.students is DEFAULT_STUDENTS:
            self.students = get_task(self.task).default_students()
        self.students = tuple(_as_config(StudentConfig, s, "students") for s in self.students)
        if not self.students:
            raise ValueError("students is empty: choose at least one student (e.g. default_students(['linear'])).")
        get_task(self.task).check_spec(self)  # students and the embedded corpus must suit the task
        self._check_student_names()
        _check_positive("explain_sample", self.explain_sample, allow_zero=True)
        self.explain_methods = tuple(self.explain_methods)
        if self.explain_sample and not self.explain_methods:
            raise ValueError("explain_sample > 0 needs at least one method in explain_methods "
                             f"(e.g. {DEFAULT_EXPLAIN_METHODS[0]!r}).")
        if isinstance(self.extra_texts, str):
            raise ValueError("extra_texts must be a list of texts, not one string.")
        self.extra_texts = tuple(str(text) for text in self.extra_texts)
        self.cache_dir = str(self.cache_dir) if self.cache_dir else None
        if self.threads is not None:
            _check_positive("threads", self.threads)
        self.teacher_logits = (self.teacher_logits,) if isinstance(self.teacher_logits, str) else self.teacher_logits
        self.teacher_logits = tuple(str(folder) for folder in self.teacher_logits)
        if self.teacher_logits and not get_task(self.task).reads_precomputed_logits:
            raise ValueError("Precomputed teacher logits (python -m kdcore label) are one row a text: a sequence task's; "
                             "drop teacher_logits for a token run.")
        if self.teacher_logits and self.teacher.epochs > 0:
            raise ValueError("Precomputed teacher logits come from a trained teacher used as loaded, but teacher epochs "
                             "> 0 would fine-tune it first: give the teacher that labelled them with teacher epochs 0.")

    def _check_student_names(self) -> None:
        names = [s.name for s in self.students]
        if self.distill.train_label_baseline:
            names += [s.name + LABEL_TWIN_SUFFIX for s in self.students]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"Student names must be unique (label twins are named '<student>{LABEL_TWIN_SUFFIX}'); "
                             f"{', '.join(repeated)} occurs twice: rename a student.")

    def to_dict(self) -> dict:
        """Plain JSON-ready data; :meth:`from_dict` reads it back into an equal spec."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("teacher", "distill", "data"):
            out[key] = out[key].to_dict()
        out["students"] = [s.to_dict() for s in self.students]
        for key in ("explain_methods", "extra_texts", "teacher_logits"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"RunSpec has no field(s) {sorted(unknown)}; known: {sorted(known)}.")
        return cls(**data)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"The run spec is not valid JSON ({err}); write it with RunSpec.to_json().") from err
        if not isinstance(data, dict):
            raise ValueError("A run spec is a JSON object (write it with RunSpec.to_json()).")
        return cls.from_dict(data)


def _as_config(cls, value, name: str):
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls.from_dict(value)
    raise ValueError(f"{name} must be a {cls.__name__} or its dict, got {type(value).__name__}.")
