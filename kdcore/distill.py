"""Distillation: the training of students over cached teacher outputs, and the pipeline that turns
a RunSpec (teacher, corpus, students) into a run on disk as named, resumable stages.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import DEFAULT_STUDENTS, LINEAR_KINDS, DataSource, DistillConfig, RunSpec, StudentConfig
from .records import DISTILLED, LABEL_TRAINED, LABEL_TWIN_SUFFIX, METRICS_ROLES, MetricsRow, ModelEntry, RunManifest
from .plan import STAGES_FILE, run_stages, student_plan
from .utils import ProgressFn, configure_threads, default_device, emit

__all__ = ["DistillResult", "distill", "build_transfer_set", "build_run", "evaluate_run", "refresh_run_metrics",
           "DEFAULT_STUDENTS", "LABEL_TWIN_SUFFIX", "BuildState", "PIPELINE_STAGES", "PIPELINE", "load_corpus", "student_plan",
           "stage_teacher", "stage_transfer_set", "stage_labels", "stage_students", "stage_evaluation",
           "stage_explanations"]

logger = logging.getLogger(__name__)

# attr_match needs teacher word attributions; integrated gradients (16 steps) on this many
# transfer texts keeps the cost to minutes on a CPU. The other texts train on outputs only.
ATTR_MATCH_TEXTS = 1000


@dataclass
class DistillResult:
    """A trained student, its loss curves and how long training took."""

    student: object
    history: list = field(default_factory=list)
    seconds: float = 0.0
    distilled: bool = True


def _make_student(config: StudentConfig, teacher=None):
    from .students import make_student

    return _with_teacher(make_student(config), teacher)


def _with_teacher(student, teacher):
    """Hand the teacher to a student that reads the teacher's view of its n-grams (``use_teacher``)."""
    if teacher is not None and hasattr(student, "use_teacher"):
        student.use_teacher(teacher)
    return student


def distill(teacher, student, dataset, config: DistillConfig | None = None, teacher_logits: np.ndarray | None = None,
            teacher_hidden: np.ndarray | None = None, teacher_attributions=None, progress: ProgressFn | None = None,
            device: str | None = None) -> DistillResult:
    """Train ``student`` to imitate ``teacher`` on the texts of ``dataset`` (a transfer set).

    Teacher logits come from ``teacher_logits`` when given, else from the teacher (and its
    on-disk cache). Gold labels of the dataset, where present, are mixed in with ``alpha``.
    """
    config = config or DistillConfig()
    texts = list(dataset.texts)
    if teacher_logits is None:
        if config.feature_align > 0 and teacher_hidden is None:
            teacher_logits, teacher_hidden = teacher.predict_logits(texts, return_pooled=True, progress=progress)
        else:
            teacher_logits = teacher.predict_logits(texts, progress=progress)
    labels = np.asarray(dataset.labels) if getattr(dataset, "labels", None) is not None else None
    started = time.perf_counter()
    if getattr(student, "ngram_cache_", False) is None:  # reads the teacher's n-grams and has none yet
        _with_teacher(student, teacher)
    student.fit(texts, teacher_logits=teacher_logits, labels=labels if config.alpha > 0 else None,
                label_names=list(teacher.label_names), distill=config, teacher_hidden=teacher_hidden,
                teacher_attributions=teacher_attributions, progress=progress, device=device)
    return DistillResult(student, getattr(student, "history_", []), time.perf_counter() - started, True)


def _fit_label_twin(config: StudentConfig, texts, labels, label_names, dev, progress, device, teacher=None):
    """The label-trained twin: the same student on gold labels only. A linear student with
    ``solver="auto"`` is trained with both solvers (L-BFGS to convergence, and Adam for
    ``max_steps``, which stops early in effect) and the one with the higher dev accuracy is kept, so
    the baseline a distilled student is compared with is the stronger of the two."""
    from . import metrics as M

    # The solver choice on dev is for the plain linear students (aug_linear always uses L-BFGS).
    if not (config.kind in ("linear", "token_linear") and config.solver == "auto" and dev is not None
            and dev.has_labels):
        return _make_student(config, teacher).fit(texts, labels=labels, label_names=label_names, progress=progress,
                                                  device=device)
    best, best_accuracy = None, -1.0
    for solver in ("lbfgs", "adam"):
        candidate = StudentConfig.from_dict({**config.to_dict(), "solver": solver})
        student = _make_student(candidate).fit(texts, labels=labels, label_names=label_names, progress=progress,
                                               device=device)
        accuracy = M.accuracy(dev.labels, student.predict_logits(list(dev.texts)).argmax(axis=1))
        logger.info("label twin %s with %s: dev accuracy %.4f", config.name, candidate.solver, accuracy)
        if accuracy > best_accuracy:
            best, best_accuracy = student, accuracy
    return best


def build_transfer_set(train, unlabelled=None, config: DistillConfig | None = None, extra_texts: Sequence[str] = ()):
    """Training texts + augmented copies (Tang et al. 2019) + their clauses + unlabelled texts,
    as a TextDataset.

    Gold labels are kept for the original training texts and set to -1 elsewhere.
    """
    from .augment import augment_texts, clause_texts
    from .data import TextDataset

    config = config or DistillConfig()
    texts = list(train.texts)
    labels = list(np.asarray(train.labels)) if train.labels is not None else [-1] * len(texts)
    seen = set(texts)
    extra: list[str] = []  # unlabelled, in this order: augmented, clauses, corpus, user texts
    if config.augment_copies:
        extra += augment_texts(train.texts, copies=config.augment_copies, mask_prob=config.mask_prob,
                               swap_prob=config.swap_prob, ngram_prob=config.ngram_prob, seed=config.seed,
                               ngram_max_words=config.ngram_max_words)
    if config.clauses:
        extra += clause_texts(train.texts)
    if config.use_unlabelled and unlabelled is not None:
        extra += list(unlabelled.texts)
    extra += list(extra_texts)
    for text in extra:
        if text and text not in seen:
            seen.add(text)
            texts.append(text)
            labels.append(-1)
    return TextDataset(texts, np.asarray(labels, dtype=np.int64), list(train.label_names), name="transfer")


def evaluate_run(teacher, students: dict, test, teacher_test_logits: np.ndarray | None = None,
                 speed_texts: Sequence[str] | None = None, student_dirs: dict | None = None,
                 teacher_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                 roles: dict | None = None, twins: dict | None = None) -> dict:
    """Task metrics, fidelity and compression of the teacher and each student on ``test``, with 95%
    intervals (:mod:`kdcore.intervals`).

    ``roles`` maps a student's name to ``"distilled"`` or ``"label-trained"`` (default: distilled);
    ``twins`` maps a distilled student to its label-trained twin, whose fidelity it is compared with
    on the same texts. ``models`` in the result holds one :class:`~kdcore.records.MetricsRow` dict per
    model; ``gold_labels`` says whether the test split has labels (accuracy needs them).
    """
    from . import metrics as M
    from .intervals import paired_difference

    label_names = list(teacher.label_names)
    if teacher_test_logits is None:
        teacher_test_logits = teacher.predict_logits(test.texts, progress=progress)
    speed_texts = list(speed_texts or test.texts[:500])
    emit(progress, stage="evaluate", model="teacher")
    teacher_speed = M.texts_per_second(lambda texts: teacher.predict_logits(texts, use_cache=False), speed_texts,
                                       min_seconds=0.5)
    teacher_row = MetricsRow("teacher", METRICS_ROLES["teacher"], fidelity=1.0, mean_tvd=0.0,
                             parameters=int(teacher.n_parameters()), texts_per_second=teacher_speed,
                             latency_ms=1000 / teacher_speed)
    if teacher_dir is not None:
        size = M.model_bytes(teacher_dir)
        teacher_row.update({"bytes": size, "megabytes": size / 1e6})
    if test.labels is not None:
        teacher_row.update(M.task_metrics(test.labels, teacher_test_logits, label_names))
    rows = [teacher_row]
    agreements = {}
    for name, student in students.items():
        emit(progress, stage="evaluate", model=name)
        logits = student.predict_logits(test.texts)
        agreements[name] = logits.argmax(1) == np.asarray(teacher_test_logits).argmax(1)
        row = MetricsRow(name, METRICS_ROLES[(roles or {}).get(name, DISTILLED)], kind=student.config.kind)
        row.update(M.fidelity(logits, teacher_test_logits))
        if test.labels is not None:
            row.update(M.task_metrics(test.labels, logits, label_names))
        row.update(M.compression(student, speed_texts, directory=(student_dirs or {}).get(name), min_seconds=0.5))
        row.n_nonzero = int(getattr(student, "n_nonzero_", row.parameters))
        row.speedup_vs_teacher = row.texts_per_second / teacher_speed
        if teacher_row.bytes is not None:
            row.smaller_than_teacher = teacher_row.bytes / max(row.bytes, 1)
        rows.append(row)
    for row in rows:
        twin = (twins or {}).get(row.name)
        if twin in agreements and row.name in agreements:
            row.fidelity_over_twin = {"twin": twin, **paired_difference(agreements[row.name], agreements[twin])}
    return {"test_size": len(test), "gold_labels": test.labels is not None,
            "models": {row.name: row.to_dict() for row in rows}}


def refresh_run_metrics(run, progress: ProgressFn | None = None) -> dict:
    """Measure a finished run's models again on its stored test split (task metrics, fidelity, their
    95% intervals, twin margins, speed) and its stored per-text explanation metrics again into their
    summary; everything else in metrics.json (findings, timings, training) is kept. Returns the new
    metrics, also written to the run (merged, under the run's lock, into what is on disk then)."""
    info = run.info
    fresh = evaluate_run(run.teacher, run.students, run.split("test"), progress=progress,
                         student_dirs={n: run.path / "students" / n for n in run.student_names},
                         teacher_dir=run.path / "teacher", roles={n: e.role for n, e in info.students.items()},
                         twins=info.twins())
    from .runs import update_run_metrics

    return update_run_metrics(run, lambda old: _refreshed_metrics(run.path, old, fresh))


def _refreshed_metrics(path: Path, old: dict, fresh: dict) -> dict:
    """``old`` metrics with the ``fresh`` measurements of :func:`evaluate_run` merged in."""
    from .explain_metrics import summary_table

    import pandas as pd

    for name, entry in fresh["models"].items():
        if "dev_accuracy" in old.get("models", {}).get(name, {}):
            entry["dev_accuracy"] = old["models"][name]["dev_accuracy"]
    metrics = {**old, **fresh}
    # The check that reads the measured accuracies is made again on the new numbers.
    metrics["findings"] = ([f for f in old.get("findings", []) if f.get("check") != "teacher_beaten"]
                           + _teacher_beaten_findings(fresh["models"]))
    per_text = path / "explanation_metrics.jsonl"
    if metrics.get("explanations") and per_text.is_file():
        frame = pd.read_json(per_text, lines=True)
        metrics["explanations"] = {**metrics["explanations"],
                                   "summary": summary_table(frame).to_dict(orient="records")}
    return metrics


def _write_split(writer, name: str, dataset) -> None:
    labels = dataset.labels if dataset.labels is not None else [None] * len(dataset)
    writer.write_jsonl(f"data/{name}.jsonl", [
        {"text": t, "label": (int(l) if l is not None else None)} for t, l in zip(dataset.texts, labels)
    ])


# ------------------------------------------------------------------------------ the run pipeline
# A build is these stages, in this order. Each is a function of (writer, spec, state): it reads
# what earlier stages left in ``state``, leaves its own output there and in the run's .partial
# folder, and on a resumed build takes its output back from that folder instead of recomputing it.
PIPELINE_STAGES = ("teacher", "transfer_set", "labels", "students", "evaluation", "explanations")


@dataclass
class BuildState:
    """What the stages of one build hand to each other."""

    corpus: Any
    device: str
    progress: ProgressFn | None = None
    finished: dict = field(default_factory=dict)   # stage name -> seconds, read back on resume
    timings: dict = field(default_factory=dict)    # the numbers metrics.json reports under "timings"
    teacher: Any = None
    transfer: Any = None
    transfer_logits: np.ndarray | None = None
    transfer_hidden: np.ndarray | None = None
    test_logits: np.ndarray | None = None
    teacher_attributions: list | None = None
    students: dict = field(default_factory=dict)   # name -> trained student
    entries: dict = field(default_factory=dict)    # name -> ModelEntry (kind, role, twin_of, config)
    dirs: dict = field(default_factory=dict)       # name -> folder
    histories: dict = field(default_factory=dict)  # name -> {"history", "seconds", "distilled"}
    metrics: dict | None = None
    findings: list = field(default_factory=list)   # what the label checks and the teacher check found


def load_corpus(source: DataSource):
    """The train/dev/test (+ unlabelled) corpus a DataSource names; DataError says what is wrong with a file."""
    from .corpora import load_corpus as load_named_corpus
    from .data import DataError, split_dataset
    from .readers import read_any

    from .labels import check_labels

    if source.path is None:
        return load_named_corpus(source.corpus, seed=source.seed)
    dataset = read_any(source.path, **source.reader_options())
    # A broken label column (text spilled into it) is named as such, before the split trips over it.
    errors = [f.message for f in check_labels(dataset) if f.level == "error"]
    if errors:
        raise DataError(" ".join(errors))
    return split_dataset(dataset, seed=source.seed)


def check_corpus(spec: RunSpec, corpus) -> tuple[Any, list]:
    """Refuse what cannot make a sound run, before any work; returns the corpus to use and the findings.

    A bare encoder needs gold labels to train its head. The label column is checked
    (:func:`kdcore.labels.check_labels`): errors are raised, classes with too few training rows are
    dropped from every split and the finding is kept (it is written into the run's metrics).
    """
    from .data import Corpus, DataError, TextDataset, reader_findings
    from .labels import check_labels, drop_classes, rare_classes

    if not isinstance(corpus, Corpus):  # any object with train / dev / test (/ unlabelled) splits
        unlabelled = getattr(corpus, "unlabelled", None) or TextDataset([], None, [], name="unlabelled")
        corpus = Corpus(corpus.train, getattr(corpus, "dev", None), getattr(corpus, "test", None), unlabelled,
                        getattr(corpus, "report", None))
    train = corpus.train
    if spec.teacher_is_encoder and not train.has_labels:
        raise DataError("These texts have no labels, so a bare encoder's new classification head cannot be trained. "
                        "Give a trained classifier as the teacher (--teacher FOLDER, without --encoder), or add a "
                        "label column (--label-column).")
    findings = check_labels(train)
    errors = [f.message for f in findings if f.level == "error"]
    if errors:
        raise DataError(" ".join(errors))
    rare = rare_classes(train) if train.has_labels else []
    if rare:
        corpus = Corpus(*(drop_classes(split, rare) if split is not None and split.labels is not None else split
                                for split in (corpus.train, corpus.dev, corpus.test, corpus.unlabelled)),
                              corpus.report)
    # What the reader found (empty texts, spilled label cells, duplicates...) leads the findings.
    return corpus, reader_findings(corpus.report) + [f.to_dict() for f in findings]


def stage_teacher(writer, spec: RunSpec, state: BuildState) -> None:
    """Load the teacher, fine-tune it when asked and save it into the run (or load the saved one).

    A pretrained teacher's classes are matched to the data's by name (or through the spec's label
    map); the data is then re-indexed to the teacher's output order, so no metric is scrambled.
    """
    from .teacher import Teacher

    train = state.corpus.train
    label_names = train.label_names if train.has_labels else None
    if writer.exists("teacher/config.json"):
        state.teacher = Teacher.from_pretrained(writer.path / "teacher", config=spec.teacher, label_names=label_names,
                                                device=state.device)
        # Its best dev accuracy in fine-tuning, which the evaluation reports and checks, comes back with it.
        state.teacher.best_dev_accuracy_ = (writer.read_json("teacher_dev.json", {}) or {}).get("dev_accuracy")
        emit(state.progress, stage="teacher_fit", step=1, total=1, resumed=True, note="teacher already trained")
    else:
        started = time.perf_counter()
        if spec.teacher_is_encoder:
            state.teacher = Teacher.from_encoder(spec.teacher_source, label_names=label_names, config=spec.teacher,
                                                 device=state.device)
        else:
            state.teacher = Teacher.from_pretrained(spec.teacher_source, label_names=label_names, config=spec.teacher,
                                                    label_map=spec.label_map, labels_by_index=spec.labels_by_index,
                                                    device=state.device)
        if label_names is not None:  # before fine-tuning, which trains on the ids
            state.corpus = state.corpus.with_label_order(state.teacher.label_names)
        if spec.teacher.epochs > 0 and state.corpus.train.has_labels:
            state.teacher.fit(state.corpus.train, dev=state.corpus.dev, progress=state.progress,
                              checkpoint_dir=writer.path / "checkpoints" / "teacher")
            writer.write_json("teacher_history.json", getattr(state.teacher, "history_", []))
            writer.write_json("teacher_dev.json", {"dev_accuracy": getattr(state.teacher, "best_dev_accuracy_", None)})
        with writer.write_dir("teacher") as folder:  # weights, config and tokenizer replaced as one
            state.teacher.save(folder)
        state.timings["teacher_fit_s"] = time.perf_counter() - started
    if label_names is not None:  # also on resume: the saved teacher keeps its own order
        state.corpus = state.corpus.with_label_order(state.teacher.label_names)
    state.teacher.name = "teacher"
    state.teacher.cache_dir = Path(spec.cache_dir) if spec.cache_dir else None


def stage_transfer_set(writer, spec: RunSpec, state: BuildState) -> None:
    """Training texts + augmentation + clauses + unlabelled texts. Rebuilt on every build (it is
    deterministic and takes seconds); written to the run when its content changed."""
    corpus = state.corpus
    state.transfer = build_transfer_set(corpus.train, getattr(corpus, "unlabelled", None), spec.distill,
                                        spec.extra_texts)
    saved = writer.read_json("transfer_set.json", {}) or {}
    if saved.get("hash") != state.transfer.content_hash() or not writer.exists("data/transfer.jsonl"):
        writer.write_jsonl("data/transfer.jsonl", [{"text": t, "label": int(l) if l >= 0 else None}
                                                   for t, l in zip(state.transfer.texts, state.transfer.labels)])


def stage_labels(writer, spec: RunSpec, state: BuildState) -> None:
    """Teacher logits on the transfer set (and pooled states for feature_align, word attributions for
    attr_match) and on the test split. Saved logits are reused when the transfer set is unchanged."""
    started = time.perf_counter()
    teacher, transfer, progress = state.teacher, state.transfer, state.progress
    need_hidden = spec.distill.feature_align > 0
    transfer_hash = transfer.content_hash()
    saved = writer.read_json("transfer_set.json", {}) or {}
    if (writer.exists("teacher_logits.npy") and saved.get("hash") == transfer_hash
            and (not need_hidden or writer.exists("teacher_hidden.npy"))):
        state.transfer_logits = np.load(writer.path / "teacher_logits.npy", allow_pickle=False)
        if need_hidden:
            state.transfer_hidden = np.load(writer.path / "teacher_hidden.npy", allow_pickle=False)
    else:
        if spec.teacher_logits:  # labelled beforehand (python -m kdcore label): read by text hash
            from .scale.precomputed import transfer_logits_from_folders

            state.transfer_logits, state.transfer_hidden = transfer_logits_from_folders(spec, state, writer)
            if need_hidden:
                writer.write_array("teacher_hidden.npy", state.transfer_hidden)
        elif need_hidden:
            state.transfer_logits, state.transfer_hidden = teacher.predict_logits(
                transfer.texts, return_pooled=True, progress=progress)
            writer.write_array("teacher_hidden.npy", state.transfer_hidden)
        else:
            state.transfer_logits = teacher.predict_logits(transfer.texts, progress=progress)
        writer.write_array("teacher_logits.npy", state.transfer_logits)
        writer.write_json("transfer_set.json", {"hash": transfer_hash, "size": len(transfer)})
        state.timings["transfer_label_s"] = time.perf_counter() - started
    if "labels" in state.finished and writer.exists("teacher_test_logits.npy"):
        state.test_logits = np.load(writer.path / "teacher_test_logits.npy", allow_pickle=False)
    else:
        state.test_logits = teacher.predict_logits(state.corpus.test.texts, progress=progress)
        writer.write_array("teacher_test_logits.npy", state.test_logits)
    if spec.distill.attr_match > 0:
        state.teacher_attributions = _teacher_attributions(writer, state)


def _teacher_attributions(writer, state: BuildState) -> list:
    if writer.exists("teacher_attributions.json"):
        cached = writer.read_json("teacher_attributions.json")
    else:
        from .attribution import explain

        chosen = state.transfer.texts[:ATTR_MATCH_TEXTS]
        emit(state.progress, stage="teacher_attributions", done=0, total=len(chosen))
        cached = [e.scores.tolist() for e in explain(state.teacher, chosen, n_steps=16)]
        writer.write_json("teacher_attributions.json", cached)
    return [np.asarray(a) for a in cached] + [None] * (len(state.transfer) - len(cached))


def stage_students(writer, spec: RunSpec, state: BuildState) -> None:
    """Train each planned student; one already saved in the run is loaded instead (per-student resume)."""
    from .students import load_student

    started = time.perf_counter()
    state.histories = writer.read_json("student_histories.json", {}) or {}
    for entry in student_plan(spec, state.corpus.train.has_labels):
        folder = writer.path / "students" / entry.name
        if writer.exists(f"students/{entry.name}/config.json"):  # each student folder is written as a whole
            student = load_student(folder)
        else:
            emit(state.progress, stage="student_fit", student=entry.name, distilled=entry.distilled)
            result = _train_student(spec, state, StudentConfig.from_dict(entry.config), entry.distilled)
            student = result.student
            with writer.write_dir(f"students/{entry.name}") as tmp:
                student.save(tmp)
            state.histories[entry.name] = {"history": result.history, "seconds": result.seconds,
                                           "distilled": entry.distilled}
            writer.write_json("student_histories.json", state.histories)
        state.students[entry.name], state.dirs[entry.name] = student, folder
        state.entries[entry.name] = ModelEntry(entry.name, student.config.kind, entry.role, entry.twin_of,
                                               student.config.to_dict())
    state.timings["students_fit_s"] = state.timings.get("students_fit_s", 0.0) + (time.perf_counter() - started)


def _train_student(spec: RunSpec, state: BuildState, config: StudentConfig, distilled: bool) -> DistillResult:
    transfer = state.transfer
    if distilled:
        return distill(state.teacher, _make_student(config), transfer, spec.distill,
                       teacher_logits=state.transfer_logits, teacher_hidden=state.transfer_hidden,
                       teacher_attributions=state.teacher_attributions, progress=state.progress, device=state.device)
    started = time.perf_counter()
    gold = transfer.labels >= 0
    student = _fit_label_twin(config, [t for t, g in zip(transfer.texts, gold) if g], transfer.labels[gold],
                              list(state.teacher.label_names), state.corpus.dev, state.progress, state.device,
                              teacher=state.teacher)
    return DistillResult(student, getattr(student, "history_", []), time.perf_counter() - started, False)


def stage_evaluation(writer, spec: RunSpec, state: BuildState) -> None:
    """Task metrics, fidelity and compression of every model (metrics.json, without explanations yet), and
    each student's trust curve (trust.json)."""
    if "evaluation" in state.finished and writer.exists("metrics.json"):
        state.metrics = writer.read_json("metrics.json")
        return
    started = time.perf_counter()
    corpus, teacher = state.corpus, state.teacher
    roles = {name: entry.role for name, entry in state.entries.items()}
    twins = {entry.twin_of: name for name, entry in state.entries.items() if entry.twin_of}
    metrics = evaluate_run(teacher, state.students, corpus.test, teacher_test_logits=state.test_logits,
                           student_dirs=state.dirs, teacher_dir=writer.path / "teacher", progress=state.progress,
                           roles=roles, twins=twins)
    if corpus.dev is not None and corpus.dev.has_labels and getattr(teacher, "best_dev_accuracy_", None):
        metrics["models"]["teacher"]["dev_accuracy"] = teacher.best_dev_accuracy_
    state.findings += _teacher_findings(metrics["models"]["teacher"], corpus)
    state.findings += _teacher_beaten_findings(metrics["models"])
    from .trust import write_trust  # the trust curve: its own file, trust.json

    write_trust(writer, teacher, state.students, corpus.dev, corpus.test, state.test_logits)
    metrics["findings"] = list(state.findings)
    gold = state.transfer.labels >= 0
    metrics["transfer_set"] = {"texts": len(state.transfer), "gold_labelled": int(gold.sum()),
                               "augmented_or_unlabelled": int((~gold).sum())}
    metrics["training"] = {n: {"seconds": h["seconds"], "distilled": h["distilled"]}
                           for n, h in state.histories.items()}
    state.timings["evaluate_s"] = time.perf_counter() - started
    state.metrics = metrics
    writer.write_json("metrics.json", metrics)


def _teacher_findings(teacher_entry: dict, corpus) -> list[dict]:
    """A teacher that does no better than always answering the majority class is probably not the
    teacher meant (an untrained head, the wrong folder, labels that do not match): say so loudly."""
    from .labels import majority_accuracy

    found = []
    for split, key in (("dev", "dev_accuracy"), ("test", "accuracy")):
        data, accuracy = getattr(corpus, split, None), teacher_entry.get(key)
        if data is None or data.labels is None or accuracy is None:
            continue
        baseline = majority_accuracy(data.labels)
        if accuracy <= baseline:
            found.append({"level": "warning", "message": (
                f"The teacher's {split} accuracy ({accuracy:.3f}) is no better than always answering the most "
                f"frequent class ({baseline:.3f}): it is probably not the teacher you meant (untrained head, wrong "
                "folder, or labels that do not match its classes). Its students imitate that.")})
    return found


def _teacher_beaten_findings(models: dict) -> list[dict]:
    """A student trained on the gold labels alone that is clearly more accurate than the teacher (their
    95% intervals do not overlap) says the teacher is undertrained or not the one meant: its distilled
    students would faithfully copy the weaker model."""
    teacher = models.get("teacher", {})
    low_high = teacher.get("accuracy_ci")
    found = []
    for name, entry in models.items():
        ci = entry.get("accuracy_ci")
        if name == "teacher" or entry.get("role") != METRICS_ROLES[LABEL_TRAINED] or not ci or not low_high:
            continue
        if ci[0] > low_high[1]:
            found.append({"level": "warning", "check": "teacher_beaten", "message": (
                f"The label-trained student {name} is more accurate than the teacher on the test split "
                f"({entry['accuracy']:.3f} vs {teacher['accuracy']:.3f}; 95% intervals {ci[0]:.3f}–{ci[1]:.3f} and "
                f"{low_high[0]:.3f}–{low_high[1]:.3f}): the teacher is probably undertrained for this data (fine-tune "
                "it longer: --teacher-epochs) or not the teacher you meant. Its distilled students copy the weaker model.")})
    return found


def stage_explanations(writer, spec: RunSpec, state: BuildState) -> None:
    """Explanation agreement and faithfulness on the first ``explain_sample`` test texts (when asked)."""
    if not spec.explain_sample or ("explanations" in state.finished and "explanations" in state.metrics):
        return
    from .explain_metrics import evaluate_explanations, summary_table

    started = time.perf_counter()
    sample = list(state.corpus.test.texts[:spec.explain_sample])
    frame = evaluate_explanations(state.teacher, dict(state.students), sample, methods=tuple(spec.explain_methods),
                                  progress=state.progress)
    state.metrics["explanations"] = {"sample_size": len(sample), "methods": list(spec.explain_methods),
                                     "summary": summary_table(frame).to_dict(orient="records")}
    writer.write_jsonl("explanation_metrics.jsonl", frame.to_dict(orient="records"))
    writer.write_json("metrics.json", state.metrics)
    # metrics.json has always reported evaluation and explanation metrics as one "evaluate" time.
    state.timings["evaluate_s"] = state.timings.get("evaluate_s", 0.0) + (time.perf_counter() - started)


PIPELINE = (stage_teacher, stage_transfer_set, stage_labels, stage_students, stage_evaluation, stage_explanations)
assert len(PIPELINE) == len(PIPELINE_STAGES)


def build_run(spec: RunSpec, *, runs_dir: str | os.PathLike = "runs", progress: ProgressFn | None = None,
              corpus=None) -> Path:
    """Build (or resume) the run ``spec`` describes and return its folder.

    The stages (:data:`PIPELINE_STAGES`) run in order inside ``<runs_dir>/<spec.name>.partial``;
    each leaves its output there, so a killed build started again with the same spec resumes after
    the last finished stage (and, inside the students stage, after the last saved student). The run
    becomes visible only when complete. ``corpus`` (``train``, ``dev``, ``test`` and optional
    ``unlabelled`` TextDatasets) replaces ``spec.data`` for data already in memory.
    """
    from .runs import RunWriter, split_hashes

    if not isinstance(spec, RunSpec):
        raise TypeError(f"build_run takes a RunSpec (kdcore.config.RunSpec), got {type(spec).__name__}.")
    if spec.task == "token":
        from .token_pipeline import build_token_run

        return build_token_run(spec, runs_dir=runs_dir, progress=progress, corpus=corpus)
    configure_threads(spec.threads)
    # Read the data before creating the run folder, so a bad file leaves nothing behind.
    corpus_given = corpus is not None
    corpus, findings = check_corpus(spec, corpus if corpus_given else load_corpus(spec.data))
    writer = RunWriter(spec.name, runs_dir)
    writer.claim(spec.to_dict(), split_hashes(corpus))  # a resume must be the build that started the folder
    state = BuildState(corpus=corpus, device=str(default_device(spec.device)), progress=progress,
                       finished=writer.read_json(STAGES_FILE, {}) or {},
                       timings=writer.read_json("timings.json", {}) or {}, findings=findings)
    path = run_stages(writer, spec, state, zip(PIPELINE_STAGES, PIPELINE),
                      lambda w, s, st: _publish(w, s, st, corpus_given))
    emit(progress, stage="done", path=str(path))
    return path


def _publish(writer, spec: RunSpec, state: BuildState, corpus_given: bool) -> Path:
    """Write the last files and the manifest (each model's kind, role, twin), and make the run visible."""
    corpus, teacher, transfer = state.corpus, state.teacher, state.transfer
    state.metrics["timings"] = state.timings
    writer.write_json("timings.json", state.timings)
    writer.write_json("metrics.json", state.metrics)
    for split in ("dev", "test"):
        if getattr(corpus, split, None) is not None:
            _write_split(writer, split, getattr(corpus, split))
    manifest = RunManifest(
        run_id=spec.name, label_names=list(teacher.label_names),
        teacher={"name": teacher.name, "source": spec.teacher_source, "fingerprint": teacher.fingerprint(),
                 "config": spec.teacher.to_dict(), "parameters": teacher.n_parameters()},
        students=dict(state.entries), distill=spec.distill.to_dict(),
        datasets={split: {"size": len(getattr(corpus, split)), "hash": getattr(corpus, split).content_hash()}
                  for split in ("train", "dev", "test") if getattr(corpus, split, None) is not None},
        transfer_set={"size": len(transfer), "hash": transfer.content_hash()}, device=state.device,
        spec=spec.to_dict(), extra={"corpus_given": corpus_given},
    ).to_dict()
    # The run store adds these when it commits.
    for key in ("run_id", "created_at", "files", "package_versions", "format_version"):
        manifest.pop(key, None)
    return writer.commit(manifest)
