"""Sequence classification: one label a text. The task's answers to the pipeline, the run store and
the readers of a run; the work itself lives in this package's modules and in the shared ones
(readers, data, metrics, attribution, trust, report)."""

from __future__ import annotations

from ...config import DEFAULT_STUDENTS, RunSpec, StudentConfig
from ...data import SUPPORTED_EXTENSIONS
from ..base import DistillResult, Task
from . import corpus as corpus_io
from .evaluate import evaluate_run, teacher_beaten_findings, teacher_findings
from .fit import fit_student
from .transfer import build_transfer_set, save_transfer, teacher_outputs

__all__ = ["SequenceTask"]


class SequenceTask(Task):
    name = "sequence"
    demo_name = "demo"
    unit = "text"
    dev_score_key = "dev_accuracy"
    output_field = "MulticlassPreds"  # one distribution over the classes a text
    architecture_suffix = "ForSequenceClassification"
    reads_precomputed_logits = True
    file_extensions = SUPPORTED_EXTENSIONS

    # ---------------------------------------------------------------- configuration
    def default_students(self) -> tuple:
        return DEFAULT_STUDENTS

    def student_kinds(self, kinds) -> list[str]:
        return list(kinds)

    def owns_student(self, config: StudentConfig) -> bool:
        return not config.kind.startswith("token_")

    def demo_spec(self, args) -> RunSpec:
        from .specs import demo_spec

        return demo_spec(args)

    def spec_from_args(self, args, kinds, encoder: bool) -> RunSpec:
        from .specs import spec_from_args

        return spec_from_args(args, kinds, encoder)

    def teacher_config(self, **overrides):
        from ...config import TeacherConfig

        return TeacherConfig(**overrides)

    def corpora(self) -> dict:
        from ...corpora import CORPORA

        return CORPORA

    def check_spec(self, spec: RunSpec) -> None:
        if not all(self.owns_student(s) for s in spec.students):
            raise ValueError(f"A sequence run trains linear / mlp students; got {[s.kind for s in spec.students]}. "
                             "Build them with default_students(kinds, task='sequence').")
        if spec.data.path is None and spec.data.corpus not in self.corpora():
            raise ValueError(f"The embedded corpus {spec.data.corpus!r} is not a sequence corpus; choose one of "
                             f"{', '.join(self.corpora())}, or give a data file.")

    # ---------------------------------------------------------------- data
    def load_corpus(self, source):
        return corpus_io.load_corpus(source)

    def check(self, spec, corpus):
        return corpus_io.check_corpus(spec, corpus)

    def preflight(self, spec, corpus, result):
        from ...preflight import sequence_checks

        return sequence_checks(spec, corpus, result)

    def split_rows(self, dataset) -> list[dict]:
        return corpus_io.split_rows(dataset)

    def read_split(self, rows, label_names, name):
        import numpy as np

        from ...data import TextDataset

        labels = [r.get("label") for r in rows]
        has = all(label is not None for label in labels)
        return TextDataset([r["text"] for r in rows], np.asarray(labels, dtype=np.int64) if has else None,
                           label_names, name=name)

    # ---------------------------------------------------------------- the build's stages
    def teacher_class(self):
        from ...teacher import Teacher

        return Teacher

    def transfer_set(self, spec, corpus):
        return build_transfer_set(corpus.train, getattr(corpus, "unlabelled", None), spec.distill, spec.extra_texts)

    def save_transfer(self, writer, transfer) -> None:
        save_transfer(writer, transfer)

    def transfer_entry(self, transfer) -> dict:
        return {"size": len(transfer), "hash": transfer.content_hash()}

    def teacher_outputs(self, writer, spec, state) -> None:
        teacher_outputs(writer, spec, state)

    def fit_student(self, spec, state, config, distilled: bool) -> DistillResult:
        return fit_student(spec, state, config, distilled)

    def evaluate(self, teacher, students, test, **options) -> dict:
        return evaluate_run(teacher, students, test, **options)

    def after_evaluation(self, writer, spec, state, metrics: dict) -> None:
        from ...trust import save_trust  # the trust curve: its own file, trust.json

        state.findings += teacher_findings(metrics["models"]["teacher"], state.corpus)
        state.findings += teacher_beaten_findings(metrics["models"])
        record, dev_logits = self.trust(state.teacher, state.students, state.corpus.dev, state.corpus.test,
                                        state.test_logits, progress=state.progress)
        save_trust(writer, self, record, dev_logits)
        metrics["findings"] = list(state.findings)
        gold = state.transfer.labels >= 0
        metrics["transfer_set"] = {"texts": len(state.transfer), "gold_labelled": int(gold.sum()),
                                   "augmented_or_unlabelled": int((~gold).sum())}

    def explanation_metrics(self, teacher, students, test, sample: int, methods=(), test_logits=None,
                            progress=None):
        from ...explain_metrics import evaluate_explanations, summary_table

        texts = list(test.texts[:sample])
        frame = evaluate_explanations(teacher, dict(students), texts, methods=tuple(methods), progress=progress)
        block = {"sample_size": len(texts), "methods": list(methods),
                 "summary": summary_table(frame).to_dict(orient="records")}
        return frame.to_dict(orient="records"), block

    def refreshed(self, run, old: dict, metrics: dict) -> dict:
        """The check that reads the measured accuracies is made again on the new numbers, and the stored
        per-text explanation metrics summarised again."""
        from ...explain_metrics import summary_table

        metrics["findings"] = ([f for f in old.get("findings", []) if f.get("check") != "teacher_beaten"]
                               + teacher_beaten_findings(metrics["models"]))
        per_text = run.path / "explanation_metrics.jsonl"
        if metrics.get("explanations") and per_text.is_file():
            import pandas as pd

            frame = pd.read_json(per_text, lines=True)
            metrics["explanations"] = {**metrics["explanations"],
                                       "summary": summary_table(frame).to_dict(orient="records")}
        return metrics

    # ---------------------------------------------------------------- what readers of a run ask
    def metrics_table(self, metrics: dict):
        from ...metrics import sequence_metrics_table

        return sequence_metrics_table(metrics)

    def write_report(self, run, out=None):
        from ...report import write_report

        return write_report(run, out)

    def has_trust(self) -> bool:
        return True

    def trust(self, teacher, students, dev, test, test_teacher_logits=None, dev_teacher_logits=None,
              target: float = 0.95, progress=None):
        from .trust import trust_of_splits

        return trust_of_splits(teacher, students, dev, test, test_teacher_logits, dev_teacher_logits, target,
                               progress=progress)

    def logits_array(self, logits):
        import numpy as np

        return np.asarray(logits)

    def logits_of(self, array, dataset):
        return array
