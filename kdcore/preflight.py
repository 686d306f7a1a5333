"""The checks a run spec gets before anything trains: the data reads (with every finding of the reader,
counted), its label column is sound, and a trained teacher's classes match the data's. The Distill view shows them before its Start button and
``python -m kdcore distill --check`` prints them; ``build_run`` makes the same checks again when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import RunSpec
from .tasks import task_of

__all__ = ["Preflight", "preflight", "sequence_checks", "token_checks", "teacher_label_names",
           "tokenizer_findings"]


@dataclass
class Preflight:
    """What the checks found: ``findings`` are {"level": "error" | "warning" | "info", "message"}."""

    findings: list[dict] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)        # split -> texts
    class_counts: dict[str, int] = field(default_factory=dict)  # training rows per class (labelled data)
    teacher_classes: list[str] | None = None                    # a trained teacher's id2label, in its order
    reader: dict[str, int] = field(default_factory=dict)        # what the reader found, by kind (DataReport.counts)

    @property
    def ok(self) -> bool:
        return not any(f["level"] == "error" for f in self.findings)

    def add(self, level: str, message: str) -> None:
        self.findings.append({"level": level, "message": message})


def teacher_label_names(source: str) -> list[str] | None:
    """A trained classifier's class names in output order (its config's ``id2label``), read without
    loading weights; None when its config cannot be read here (a hub id without network)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError):
        return None
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label[i]) for i in sorted(id2label, key=int)] if id2label else None


def _reader_counts(corpus) -> dict[str, int]:
    """The reader's counts of the corpus's source (those that found something, and the rows read and kept)."""
    report = getattr(corpus, "report", None)
    if report is None or not hasattr(report, "counts"):
        return {}
    return {kind: n for kind, n in report.counts().items() if n or kind in ("rows read", "rows kept")}


def tokenizer_findings(source: str) -> list[str]:
    """What says that the tokenizer beside a local model is not that model's (kdcore.tokenizer_check), read
    without loading weights; empty when nothing does or the folder cannot be read here (a hub id offline)."""
    from transformers import AutoConfig, AutoTokenizer

    from .tokenizer_check import tokenizer_problems

    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError):
        return []
    return tokenizer_problems(config, tokenizer)


def preflight(spec: RunSpec, corpus=None) -> Preflight:
    """Check ``spec``'s data (or ``corpus`` when given) and teacher classes; never raises for bad input.
    The checks are the spec's task's (:func:`sequence_checks`, :func:`token_checks`)."""
    return task_of(spec).preflight(spec, corpus, Preflight())


def sequence_checks(spec: RunSpec, corpus, result: Preflight) -> Preflight:
    """The sequence run's checks: the texts read and their labels checked, the splits, the rows per class,
    and a trained teacher's classes matched to the data's."""
    from .data import DataError
    from .labels import LabelMismatch, align_labels

    task = task_of(spec)
    try:
        corpus, findings = task.check(spec, corpus if corpus is not None else task.load_corpus(spec.data))
    except (DataError, ValueError) as err:
        result.add("error", str(err))
        return result
    result.findings += [{"level": f["level"], "message": f["message"]} for f in findings]
    result.reader = _reader_counts(corpus)
    result.splits = {name: len(split) for name in ("train", "dev", "test", "unlabelled")
                     if (split := getattr(corpus, name, None)) is not None and len(split)}
    train = corpus.train
    if train.has_labels:
        result.class_counts = {str(k): int(v) for k, v in train.label_counts().items()}
    else:
        result.add("info", "No gold labels: the teacher labels every text (pure distillation); accuracy will say "
                           "'no gold labels', fidelity and the explanation metrics are still measured.")
    if spec.teacher_is_encoder or not spec.teacher_source:
        steps = spec.teacher.planned_steps(len(train))
        result.add("info", "The teacher is an encoder with a new classification head, fine-tuned on these labels "
                           f"for {steps} steps of {spec.teacher.batch_size} ({steps * spec.teacher.batch_size / max(len(train), 1):.1f} "
                           "epochs); its dev accuracy is reported with the run.")
        return result
    problems = tokenizer_findings(spec.teacher_source)
    if problems:
        result.add("error", f"The tokenizer found with {spec.teacher_source!r} is not this model's: "
                            f"{'; '.join(problems)}. Put the tokenizer files the model was trained with beside its "
                            "weights.")
    names = teacher_label_names(spec.teacher_source)
    result.teacher_classes = names
    if names is None:
        result.add("info", f"The teacher's classes could not be read from {spec.teacher_source!r} here; they are "
                           "matched to the data's when the run starts.")
        return result
    try:
        aligned = align_labels(names, train.label_names if train.has_labels else None, spec.label_map,
                               spec.labels_by_index)
    except LabelMismatch as err:
        result.add("error", str(err))
        return result
    if train.has_labels:
        how = ("through the label map" if spec.label_map else "by position" if spec.labels_by_index else "by name")
        pairs = ", ".join(f"{t}→{d}" for t, d in zip(names, aligned))
        result.add("info", f"The teacher's classes match the data's {how}: {pairs} (the teacher's output order "
                           "is kept and the data re-indexed to it).")
    return result


def token_checks(spec: RunSpec, corpus, result: Preflight) -> Preflight:
    """The token run's checks: the sentences read (BIO checked), their splits, the entities per type, and a
    trained teacher's head and tags."""
    from collections import Counter

    from .data import DataError
    from .labels import LabelMismatch, align_labels
    from .teacher import head_task
    from .tasks.token.teacher import tag_label_map

    try:
        corpus = corpus if corpus is not None else task_of(spec).load_corpus(spec.data)
    except (DataError, ValueError) as err:
        result.add("error", str(err))
        return result
    result.splits = {name: len(getattr(corpus, name)) for name in ("train", "dev", "test")}
    report = getattr(corpus, "report", None)
    result.findings += [{"level": "warning", "message": m} for m in (report.warnings if report else [])]
    result.reader = _reader_counts(corpus)
    train = corpus.train
    if train.has_labels:
        result.class_counts = dict(sorted(Counter(kind for spans in train.gold_entities() for kind, _, _ in spans).items()))
    elif spec.teacher_is_encoder:
        result.add("error", "These sentences have no tags, so a bare encoder's new token head cannot be trained; give "
                            "a trained token classifier as the teacher.")
    if spec.teacher_is_encoder or not spec.teacher_source:
        result.add("info", "The teacher is an encoder with a new token head, fine-tuned on these tags for at most "
                           f"{spec.teacher.max_steps} steps; its dev entity F1 is reported with the run.")
        return result
    if head_task(spec.teacher_source) == "sequence":
        result.add("error", f"{spec.teacher_source} is a sequence classifier (one label a text), not a token "
                            "classifier; give a token classifier, or make a sequence run.")
        return result
    names = teacher_label_names(spec.teacher_source)
    result.teacher_classes = names
    if names is not None and train.has_labels:
        try:
            align_labels(names, train.label_names, tag_label_map(spec.label_map, names), spec.labels_by_index)
        except LabelMismatch as err:
            result.add("error", str(err))
            return result
        result.add("info", "The teacher's tags match the data's by name.")
    return result
