"""Token classification: one BIO tag a word. The task's answers to the pipeline, the run store and the
readers of a run; the work itself lives in this package's modules (data, teacher, fit, evaluate,
explain, metrics, report) and in the shared ones."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ...augment_tokens import augment_token_sentences
from ...config import DEFAULT_TOKEN_STUDENTS, RunSpec, StudentConfig
from ..base import DistillResult, Task
from .data import TOKEN_CORPORA, TOKEN_EXTENSIONS, looks_like_token_file, read_tokens, split_token_dataset
from .fit import augment_sentences, fit_student

__all__ = ["TokenTask"]

# The embedded corpus a token spec reads when it names the sequence default.
DEFAULT_TOKEN_CORPUS = "wnut16"


class TokenTask(Task):
    name = "token"
    demo_name = "demo-ner"
    unit = "sentence"
    dev_score_key = "dev_entity_f1"
    output_field = "SequenceTags"  # one BIO tag a word
    file_extensions = (*TOKEN_EXTENSIONS, ".jsonl")  # CoNLL lines, or JSONL with tokens / tags
    architecture_suffix = "ForTokenClassification"

    # ---------------------------------------------------------------- configuration
    def default_students(self) -> tuple:
        return DEFAULT_TOKEN_STUDENTS

    def student_kinds(self, kinds) -> list[str]:
        return [kind if kind.startswith("token_") else f"token_{kind}" for kind in kinds]

    def owns_student(self, config: StudentConfig) -> bool:
        return config.kind.startswith("token_")

    def demo_spec(self, args) -> RunSpec:
        from .specs import token_demo_spec

        return token_demo_spec(args.name, threads=args.threads, augment_copies=args.augment_copies,
                               explain_sample=args.explain_sample)

    def spec_from_args(self, args, kinds, encoder: bool) -> RunSpec:
        from .specs import token_spec_from_args

        return token_spec_from_args(args, kinds, encoder)

    def teacher_config(self, **overrides):
        from .specs import token_teacher_config

        return token_teacher_config(**overrides)

    def student_choices(self) -> list[str]:
        return [config.kind.removeprefix("token_") for config in self.default_students()]

    def corpora(self) -> dict:
        return TOKEN_CORPORA

    def check_spec(self, spec: RunSpec) -> None:
        if not all(self.owns_student(s) for s in spec.students):
            raise ValueError(f"A token run trains token_linear / token_mlp / token_crf students; got "
                             f"{[s.kind for s in spec.students]}. Build them with default_students(kinds, task='token').")
        crf = [s.name for s in spec.students if s.kind == "token_crf"]
        if crf and spec.distill.alpha > 0:
            raise ValueError(f"The token_crf student {crf[0]!r} learns from the teacher alone (its label-trained twin "
                             f"is the one fitted on gold tags); set alpha to 0, or leave the CRF out of the students.")
        if spec.data.path is None:
            if spec.data.corpus == "rotten_tomatoes":  # the sequence default: the token example instead
                spec.data = type(spec.data).from_dict({**spec.data.to_dict(), "corpus": DEFAULT_TOKEN_CORPUS})
            if spec.data.corpus not in TOKEN_CORPORA:
                raise ValueError(f"The embedded corpus {spec.data.corpus!r} is not a token corpus; choose one of "
                                 f"{', '.join(TOKEN_CORPORA)}, or give a data file.")

    def recognises(self, data=None, teacher_head=None, corpus=None) -> bool:
        if data is not None:
            return Path(data).is_file() and looks_like_token_file(data)
        if teacher_head is not None:
            return teacher_head == self.name
        return corpus in TOKEN_CORPORA

    # ---------------------------------------------------------------- data
    def load_corpus(self, source):
        if source.path is None:
            return TOKEN_CORPORA[source.corpus](seed=source.seed)
        return split_token_dataset(read_tokens(source.path), seed=source.seed)

    def check(self, spec, corpus):
        from ...data import DataError

        if spec.teacher_is_encoder and not corpus.train.has_labels:
            raise DataError("These sentences have no tags, so a bare encoder's new token head cannot be trained. "
                            "Give a trained token classifier as the teacher (--teacher FOLDER), or tag the training "
                            "sentences.")
        return corpus, []

    def preflight(self, spec, corpus, result):
        from ...preflight import token_checks

        return token_checks(spec, corpus, result)

    def split_rows(self, dataset) -> list[dict]:
        return dataset.to_rows()

    def read_split(self, rows, label_names, name):
        from .data import TokenDataset

        return TokenDataset.from_rows(rows, label_names, name=name)

    def dataset_entry(self, dataset) -> dict:
        return {"size": len(dataset), "words": dataset.n_words, "hash": dataset.content_hash()}

    # ---------------------------------------------------------------- the build's stages
    def teacher_class(self):
        from .teacher import TokenTeacher

        return TokenTeacher

    def transfer_set(self, spec, corpus):
        """The training sentences first, then their word-swap variants, then (``mention_copies``) their
        mention-replacement and tag-keeping substitution variants, each sentence once."""
        train = corpus.train.sentences
        transfer = [list(s) for s in train] + augment_sentences(train, spec.distill.augment_copies,
                                                                spec.distill.swap_prob, spec.distill.seed)
        if spec.distill.mention_copies:
            if not corpus.train.has_labels:
                raise ValueError("mention_copies needs the training sentences' tags (it swaps entity mentions by "
                                 "type); set it to 0 for untagged sentences.")
            gold = [corpus.train.tag_names(i) for i in range(len(corpus.train))]
            seen = {tuple(s) for s in transfer}
            extra = augment_token_sentences(train, gold, mention_copies=spec.distill.mention_copies,
                                            seed=spec.distill.seed)
            transfer += [s for s in extra if tuple(s) not in seen]
        return transfer

    def save_transfer(self, writer, transfer) -> None:
        writer.write_jsonl("data/transfer.jsonl", [{"tokens": s} for s in transfer])

    def transfer_entry(self, transfer) -> dict:
        return {"size": len(transfer)}

    def teacher_outputs(self, writer, spec, state) -> None:
        """The teacher's word logits on the transfer set and on the test sentences."""
        started = time.perf_counter()
        state.transfer_logits = state.teacher.predict_word_logits(state.transfer, progress=state.progress)
        writer.write_array("teacher_logits.npy", np.concatenate(state.transfer_logits))
        state.test_logits = state.teacher.predict_word_logits(state.corpus.test.sentences, progress=state.progress)
        writer.write_array("teacher_test_logits.npy", np.concatenate(state.test_logits))
        state.timings["transfer_label_s"] = time.perf_counter() - started

    def fit_student(self, spec, state, config, distilled: bool) -> DistillResult:
        return fit_student(spec, state, config, distilled)

    def evaluate(self, teacher, students, test, **options) -> dict:
        from .evaluate import evaluate_token_run

        return evaluate_token_run(teacher, students, test, **options)

    def after_evaluation(self, writer, spec, state, metrics: dict) -> None:
        from ...trust import write_trust  # the trust curve: its own file, trust.json

        write_trust(writer, state.teacher, state.students, state.corpus.dev, state.corpus.test, state.test_logits,
                    task=self)
        train = len(state.corpus.train)
        metrics["transfer_set"] = {"sentences": len(state.transfer), "gold_tagged": train,
                                   "word_swap_variants": len(state.transfer) - train,
                                   "words": int(sum(len(s) for s in state.transfer))}

    def explanation_metrics(self, teacher, students, test, sample: int, methods=(), test_logits=None,
                            progress=None):
        """Agreement between the teacher's IG and each student's contributions on the teacher's first
        ``sample`` test entities (their first word, the teacher's tag); integrated gradients only."""
        from .evaluate import explanation_metrics

        if test_logits is None:
            test_logits = teacher.predict_word_logits(test.sentences)
        return explanation_metrics(teacher, students, test.sentences, test_logits, sample, progress=progress)

    # ---------------------------------------------------------------- what readers of a run ask
    def metrics_table(self, metrics: dict):
        from .metrics import token_metrics_table

        return token_metrics_table(metrics)

    def metrics_text(self, metrics: dict) -> str:
        from .metrics import margins_text
        from .per_tag import per_tag_text

        per_tag = per_tag_text(metrics.get("per_tag")) or ("Per entity type: not in this run's metrics (built before "
                                                          "kd-lens measured it); add it with evaluate --refresh.")
        return "\n".join(filter(None, [margins_text(metrics), per_tag]))

    def write_report(self, run, out=None):
        from .report import write_token_report

        return write_token_report(run, out)

    def has_trust(self) -> bool:
        return True

    def trust(self, teacher, students, dev, test, test_teacher_logits=None, dev_teacher_logits=None,
              target: float = 0.95):
        from .trust import sentence_trust

        return sentence_trust(teacher, students, dev, test, test_teacher_logits, dev_teacher_logits, target)

    def logits_array(self, logits):
        return np.concatenate(logits) if len(logits) else np.zeros((0, 0), np.float32)

    def logits_of(self, array, dataset):
        from .teacher import split_rows

        return split_rows(array, [len(words) for words in dataset.sentences])
