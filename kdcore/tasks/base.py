"""The task interface: what differs between one label a text (sequence classification) and one tag a
word (token classification), named once. The pipeline's stages (:mod:`kdcore.pipeline`), the run store,
the metrics table, the report and the dashboard ask a run's :class:`Task` instead of its name.

Nothing here imports the rest of kdcore, so the registry (:mod:`kdcore.tasks`) stays importable from
the configuration and the run store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Task", "DistillResult", "VIEWS"]

# The dashboard's pages; a task says which of them it can draw (Task.views).
VIEWS = ("overview", "explain", "batch", "weights", "report")


@dataclass
class DistillResult:
    """A trained student, its loss curves and how long training took."""

    student: object
    history: list = field(default_factory=list)
    seconds: float = 0.0
    distilled: bool = True


class Task:
    """One kind of prediction a teacher makes. Subclasses fill in every method; the base says the contract.

    ``name`` is what a RunSpec, a manifest and metrics.json store; ``unit`` what one example is (a text,
    a sentence); ``dev_score_key`` the name of the teacher's dev score in metrics.json.
    """

    name: str = ""
    demo_name: str = "demo"  # the run python -m kdcore demo builds for this task
    unit: str = "text"
    dev_score_key: str = "dev_score"
    # What one prediction of the task is, named as LIT's field types: what a page asks to choose its drawing.
    output_field: str = ""
    architecture_suffix: str = ""  # how a transformers head of this task ends its class name
    file_extensions: tuple[str, ...] = ()  # the data files the task reads
    reads_precomputed_logits: bool = False  # whether a run can read logits labelled beforehand (kdcore label)
    views: tuple[str, ...] = VIEWS

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ---------------------------------------------------------------- configuration
    def default_students(self) -> tuple:
        """The StudentConfigs a spec of this task trains when it names none."""
        raise NotImplementedError

    def student_kinds(self, kinds: Sequence[str]) -> list[str]:
        """The student kinds of this task that the short names ``kinds`` (linear, mlp, ...) stand for."""
        raise NotImplementedError

    def check_spec(self, spec) -> None:
        """Refuse (ValueError with the fix) a RunSpec whose students or embedded corpus do not suit the task;
        may set the task's own default corpus."""
        raise NotImplementedError

    def demo_spec(self, args):
        """The RunSpec of ``python -m kdcore demo`` for this task (``args``: its parsed options)."""
        raise NotImplementedError

    def spec_from_args(self, args, kinds, encoder: bool):
        """The RunSpec ``python -m kdcore distill`` options describe (``kinds``: the student kinds named)."""
        raise NotImplementedError

    def teacher_config(self, **overrides):
        """The TeacherConfig of this task's fine-tuning, with ``overrides``."""
        raise NotImplementedError

    def student_choices(self) -> list[str]:
        """The student kinds a form offers for this task, by the names ``student_kinds`` reads."""
        return [config.kind for config in self.default_students()]

    def corpora(self) -> dict:
        """The embedded corpora of this task, by name."""
        raise NotImplementedError

    def recognises(self, data: str | None = None, teacher_head: str | None = None, corpus: str | None = None) -> bool:
        """Whether a data file, a teacher's head (``head_task``) or an embedded corpus name is this task's."""
        return False

    # ---------------------------------------------------------------- data
    def load_corpus(self, source):
        """The train/dev/test corpus a DataSource names (DataError says what is wrong with a file)."""
        raise NotImplementedError

    def check(self, spec, corpus) -> tuple[Any, list[dict]]:
        """Refuse what cannot make a sound run; returns the corpus to use and the findings to record."""
        raise NotImplementedError

    def preflight(self, spec, corpus, result):
        """Fill a :class:`~kdcore.preflight.Preflight` with this task's checks; never raises for bad input."""
        raise NotImplementedError

    def split_rows(self, dataset) -> list[dict]:
        """A split as the JSON rows a run stores under data/."""
        raise NotImplementedError

    def read_split(self, rows: list[dict], label_names: list[str], name: str):
        """A split read back from a run's JSON rows."""
        raise NotImplementedError

    def dataset_entry(self, dataset) -> dict:
        """What the manifest records of one split."""
        return {"size": len(dataset), "hash": dataset.content_hash()}

    # ---------------------------------------------------------------- the build's stages
    def teacher_class(self):
        """The Teacher class that reads this task's head."""
        raise NotImplementedError

    def transfer_set(self, spec, corpus):
        """The examples the teacher labels and the students learn from."""
        raise NotImplementedError

    def save_transfer(self, writer, transfer) -> None:
        """Write the transfer set into the run (only when changed, where the task can tell)."""
        raise NotImplementedError

    def transfer_entry(self, transfer) -> dict:
        """What the manifest records of the transfer set."""
        raise NotImplementedError

    def teacher_outputs(self, writer, spec, state) -> None:
        """The teacher's outputs on the transfer set and the test split, into ``state`` and the run."""
        raise NotImplementedError

    def fit_student(self, spec, state, config, distilled: bool) -> DistillResult:
        """Train one planned student: distilled from the teacher's outputs, or its label-trained twin."""
        raise NotImplementedError

    def evaluate(self, teacher, students: dict, test, **options) -> dict:
        """Every model's metrics on ``test`` (metrics.json's ``models`` and the task's own blocks)."""
        raise NotImplementedError

    def after_evaluation(self, writer, spec, state, metrics: dict) -> None:
        """What the task adds to the evaluation: findings, the trust curve, the transfer set's figures."""
        raise NotImplementedError

    def explanation_metrics(self, teacher, students: dict, test, sample: int, methods=(), test_logits=None,
                            progress=None):
        """Explanation agreement on the first ``sample`` examples of ``test`` with ``methods`` (where the task
        offers a choice): (records, metrics.json's ``explanations`` block)."""
        raise NotImplementedError

    def refreshed(self, run, old: dict, metrics: dict) -> dict:
        """Metrics measured again (``metrics``) with what the task keeps or recomputes from ``old``."""
        return metrics

    # ---------------------------------------------------------------- what readers of a run ask
    def metrics_table(self, metrics: dict):
        """One row per model: the numbers of the model card (a pandas DataFrame)."""
        raise NotImplementedError

    def metrics_text(self, metrics: dict) -> str:
        """Lines printed under the metrics table (margins over twins), or ''."""
        return ""

    def write_report(self, run, out=None):
        """Write the run's report (HTML and JSON); returns both paths."""
        raise NotImplementedError

    def has_trust(self) -> bool:
        """Whether runs of this task store a trust curve (trust.json)."""
        return False

    def trust(self, teacher, students: dict, dev, test, test_teacher_logits=None, dev_teacher_logits=None,
              target: float = 0.95):
        """The trust record (:class:`kdcore.trust.RunTrust`) of ``students`` over ``dev`` and ``test``, and the
        teacher's dev logits it used (computed unless given; None without a dev split)."""
        raise NotImplementedError

    def logits_array(self, logits):
        """The teacher's logits of a split as the one array a run stores."""
        raise NotImplementedError

    def logits_of(self, array, dataset):
        """The stored array of a split's logits read back in the task's shape."""
        raise NotImplementedError

    def can_draw(self, view: str) -> bool:
        """Whether the dashboard page ``view`` can draw a run of this task."""
        return view in self.views
