"""Distillation: the training of students over cached teacher outputs, and the whole pipeline
that turns a teacher and a corpus into a run (teacher, students, their label-trained twins,
metrics) on disk.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DistillConfig, StudentConfig, TeacherConfig
from .utils import ProgressFn, configure_threads, default_device, emit

__all__ = ["DistillResult", "distill", "build_transfer_set", "build_run", "evaluate_run", "DEFAULT_STUDENTS",
           "LABEL_TWIN_SUFFIX"]

logger = logging.getLogger(__name__)

LABEL_TWIN_SUFFIX = "-labels"
# attr_match needs teacher word attributions; integrated gradients (16 steps) on this many
# transfer texts keeps the cost to minutes on a CPU. The other texts train on outputs only.
ATTR_MATCH_TEXTS = 1000
# The MLP is kept small (16 hidden units over the 15,000 most frequent features) so that it
# stays >= 50x smaller than the MiniLM teacher on disk.
DEFAULT_STUDENTS = (StudentConfig(kind="linear", name="linear"),
                    StudentConfig(kind="mlp", name="mlp", hidden_size=16, max_features=15_000))


@dataclass
class DistillResult:
    """A trained student, its loss curves and how long training took."""

    student: object
    history: list = field(default_factory=list)
    seconds: float = 0.0
    distilled: bool = True


def _make_student(config: StudentConfig):
    from .students import make_student

    return make_student(config)


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
    student.fit(texts, teacher_logits=teacher_logits, labels=labels if config.alpha > 0 else None,
                label_names=list(teacher.label_names), distill=config, teacher_hidden=teacher_hidden,
                teacher_attributions=teacher_attributions, progress=progress, device=device)
    return DistillResult(student, getattr(student, "history_", []), time.perf_counter() - started, True)


def _fit_label_twin(config: StudentConfig, texts, labels, label_names, dev, progress, device):
    """The label-trained twin: the same student on gold labels only. A linear student with
    ``solver="auto"`` is trained with both solvers (L-BFGS to convergence, and Adam for
    ``epochs``, which stops early in effect) and the one with the higher dev accuracy is kept, so
    the baseline a distilled student is compared with is the stronger of the two."""
    from . import metrics as M

    if not (config.kind == "linear" and config.solver == "auto" and dev is not None and dev.has_labels):
        return _make_student(config).fit(texts, labels=labels, label_names=label_names, progress=progress,
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
                               swap_prob=config.swap_prob, ngram_prob=config.ngram_prob, seed=config.seed)
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
                 teacher_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None) -> dict:
    """Task metrics, fidelity and compression of the teacher and each student on ``test``."""
    from . import metrics as M

    label_names = list(teacher.label_names)
    if teacher_test_logits is None:
        teacher_test_logits = teacher.predict_logits(test.texts, progress=progress)
    speed_texts = list(speed_texts or test.texts[:500])
    out = {"test_size": len(test), "models": {}}
    emit(progress, stage="evaluate", model="teacher")
    teacher_speed = M.texts_per_second(lambda texts: teacher.predict_logits(texts, use_cache=False), speed_texts,
                                       min_seconds=0.5)
    teacher_entry = {"role": "teacher", "fidelity": 1.0, "mean_tvd": 0.0,
                     "parameters": int(teacher.n_parameters()),
                     "texts_per_second": teacher_speed, "latency_ms": 1000 / teacher_speed}
    if teacher_dir is not None:
        size = M.model_bytes(teacher_dir)
        teacher_entry.update(bytes=size, megabytes=size / 1e6)
    if test.labels is not None:
        teacher_entry.update(M.task_metrics(test.labels, teacher_test_logits, label_names))
    out["models"]["teacher"] = teacher_entry
    for name, student in students.items():
        emit(progress, stage="evaluate", model=name)
        logits = student.predict_logits(test.texts)
        entry = {"role": "label-trained student" if name.endswith(LABEL_TWIN_SUFFIX) else "distilled student",
                 "kind": student.config.kind}
        entry.update(M.fidelity(logits, teacher_test_logits))
        if test.labels is not None:
            entry.update(M.task_metrics(test.labels, logits, label_names))
        directory = (student_dirs or {}).get(name)
        entry.update(M.compression(student, speed_texts, directory=directory, min_seconds=0.5))
        entry["n_nonzero"] = int(getattr(student, "n_nonzero_", entry["parameters"]))
        entry["speedup_vs_teacher"] = entry["texts_per_second"] / teacher_speed
        if "bytes" in teacher_entry:
            entry["smaller_than_teacher"] = teacher_entry["bytes"] / max(entry["bytes"], 1)
        out["models"][name] = entry
    return out


def _write_split(writer, name: str, dataset) -> None:
    labels = dataset.labels if dataset.labels is not None else [None] * len(dataset)
    writer.write_jsonl(f"data/{name}.jsonl", [
        {"text": t, "label": (int(l) if l is not None else None)} for t, l in zip(dataset.texts, labels)
    ])


def build_run(name: str, *, runs_dir: str | os.PathLike = "runs", corpus=None,
              teacher_source: str = "embedded-minilm", teacher_is_encoder: bool = True,
              teacher_config: TeacherConfig | None = None, student_configs: Sequence[StudentConfig] = DEFAULT_STUDENTS,
              distill_config: DistillConfig | None = None, explain_sample: int = 0,
              explain_methods: Sequence[str] = ("integrated_gradients", "gradient_x_input", "occlusion"), extra_texts: Sequence[str] = (),
              cache_dir: str | os.PathLike | None = ".cache/teacher_logits", threads: int | None = None,
              device: str | None = None, progress: ProgressFn | None = None):
    """Build (or resume) a run: teacher, transfer set, students + label twins, metrics.

    ``corpus`` has ``train``, ``dev``, ``test`` and optional ``unlabelled`` TextDatasets
    (default: the embedded Rotten Tomatoes corpus). Every stage leaves its output in the
    run's ``.partial`` folder, so a killed build resumes where it stopped; the run becomes
    visible only once complete.
    """
    from .data import load_default_corpus
    from .runs import RunWriter
    from .students import load_student
    from .teacher import Teacher

    configure_threads(threads)
    teacher_config = teacher_config or TeacherConfig()
    distill_config = distill_config or DistillConfig()
    corpus = corpus if corpus is not None else load_default_corpus()
    writer = RunWriter(name, runs_dir)
    started = time.perf_counter()
    timings = writer.read_json("timings.json", {}) or {}
    try:
        # 1. Teacher ---------------------------------------------------------------
        t0 = time.perf_counter()
        device = str(default_device(device))
        if writer.exists("teacher/config.json"):
            teacher = Teacher.from_pretrained(writer.path / "teacher", config=teacher_config,
                                              label_names=corpus.train.label_names, device=device)
            emit(progress, stage="teacher_fit", step=1, total=1, resumed=True, note="teacher already trained")
        else:
            if teacher_is_encoder:
                teacher = Teacher.from_encoder(teacher_source, corpus.train.label_names, config=teacher_config,
                                               device=device)
            else:
                teacher = Teacher.from_pretrained(teacher_source, label_names=corpus.train.label_names,
                                                  config=teacher_config, device=device)
            if teacher_config.epochs > 0 and corpus.train.has_labels:
                teacher.fit(corpus.train, dev=corpus.dev, progress=progress,
                            checkpoint_dir=writer.path / "checkpoints" / "teacher")
                writer.write_json("teacher_history.json", getattr(teacher, "history_", []))
            teacher.save(writer.file("teacher/.keep").parent)
            (writer.path / "teacher" / ".keep").unlink(missing_ok=True)
            timings["teacher_fit_s"] = time.perf_counter() - t0
        teacher.name = "teacher"
        teacher.cache_dir = Path(cache_dir) if cache_dir else None

        # 2. Transfer set, labelled by the teacher -------------------------------------
        t0 = time.perf_counter()
        transfer = build_transfer_set(corpus.train, getattr(corpus, "unlabelled", None), distill_config, extra_texts)
        need_hidden = distill_config.feature_align > 0
        transfer_hash = transfer.content_hash()
        saved = writer.read_json("transfer_set.json", {}) or {}
        reuse = (writer.exists("teacher_logits.npy") and saved.get("hash") == transfer_hash
                 and (not need_hidden or writer.exists("teacher_hidden.npy")))
        if reuse:
            transfer_logits = np.load(writer.path / "teacher_logits.npy", allow_pickle=False)
            transfer_hidden = np.load(writer.path / "teacher_hidden.npy", allow_pickle=False) if need_hidden else None
        else:
            if need_hidden:
                transfer_logits, transfer_hidden = teacher.predict_logits(transfer.texts, return_pooled=True,
                                                                          progress=progress)
                writer.write_array("teacher_hidden.npy", transfer_hidden)
            else:
                transfer_logits, transfer_hidden = teacher.predict_logits(transfer.texts, progress=progress), None
            writer.write_array("teacher_logits.npy", transfer_logits)
            writer.write_jsonl("data/transfer.jsonl", [{"text": t, "label": int(l) if l >= 0 else None}
                                                       for t, l in zip(transfer.texts, transfer.labels)])
            writer.write_json("transfer_set.json", {"hash": transfer_hash, "size": len(transfer)})
            timings["transfer_label_s"] = time.perf_counter() - t0
        test_logits = teacher.predict_logits(corpus.test.texts, progress=progress)
        writer.write_array("teacher_test_logits.npy", test_logits)

        teacher_attributions = None
        if distill_config.attr_match > 0:
            if writer.exists("teacher_attributions.json"):
                cached = writer.read_json("teacher_attributions.json")
            else:
                from .attribution import explain

                chosen = transfer.texts[:ATTR_MATCH_TEXTS]
                emit(progress, stage="teacher_attributions", done=0, total=len(chosen))
                cached = [e.scores.tolist() for e in explain(teacher, chosen, n_steps=16)]
                writer.write_json("teacher_attributions.json", cached)
            teacher_attributions = [np.asarray(a) for a in cached] + [None] * (len(transfer) - len(cached))

        # 3. Students and their label-trained twins ----------------------------------
        t0 = time.perf_counter()
        students, dirs, histories = {}, {}, writer.read_json("student_histories.json", {}) or {}
        gold = transfer.labels >= 0
        for cfg in student_configs:
            plans = [(cfg.name, True)]
            if distill_config.train_label_baseline and corpus.train.has_labels:
                plans.append((cfg.name + LABEL_TWIN_SUFFIX, False))
            for student_name, distilled in plans:
                folder = writer.path / "students" / student_name
                if (folder / "model.safetensors").is_file():
                    students[student_name] = load_student(folder)
                else:
                    student_cfg = StudentConfig.from_dict({**cfg.to_dict(), "name": student_name})
                    student = _make_student(student_cfg)
                    emit(progress, stage="student_fit", student=student_name, distilled=distilled)
                    if distilled:
                        result = distill(teacher, student, transfer, distill_config, teacher_logits=transfer_logits,
                                         teacher_hidden=transfer_hidden, teacher_attributions=teacher_attributions,
                                         progress=progress, device=device)
                    else:
                        s0 = time.perf_counter()
                        student = _fit_label_twin(student_cfg, [t for t, g in zip(transfer.texts, gold) if g],
                                                  transfer.labels[gold], list(teacher.label_names), corpus.dev,
                                                  progress, device)
                        result = DistillResult(student, getattr(student, "history_", []),
                                               time.perf_counter() - s0, False)
                    student.save(folder)
                    histories[student_name] = {"history": result.history, "seconds": result.seconds,
                                               "distilled": distilled}
                    writer.write_json("student_histories.json", histories)
                    students[student_name] = student
                dirs[student_name] = folder
        timings["students_fit_s"] = timings.get("students_fit_s", 0.0) + (time.perf_counter() - t0)

        # 4. Evaluation ------------------------------------------------------------------
        t0 = time.perf_counter()
        metrics = evaluate_run(teacher, students, corpus.test, teacher_test_logits=test_logits,
                               student_dirs=dirs, teacher_dir=writer.path / "teacher", progress=progress)
        if corpus.dev is not None and corpus.dev.has_labels and getattr(teacher, "best_dev_accuracy_", None):
            metrics["models"]["teacher"]["dev_accuracy"] = teacher.best_dev_accuracy_
        metrics["transfer_set"] = {"texts": len(transfer), "gold_labelled": int(gold.sum()),
                                   "augmented_or_unlabelled": int((~gold).sum())}
        metrics["training"] = {n: {"seconds": h["seconds"], "distilled": h["distilled"]} for n, h in histories.items()}
        if explain_sample:
            from .explain_metrics import evaluate_explanations, summary_table

            sample = list(corpus.test.texts[:explain_sample])
            frame = evaluate_explanations(teacher, {n: s for n, s in students.items()}, sample,
                                          methods=tuple(explain_methods), progress=progress)
            metrics["explanations"] = {"sample_size": len(sample), "methods": list(explain_methods),
                                       "summary": summary_table(frame).to_dict(orient="records")}
            writer.write_jsonl("explanation_metrics.jsonl", frame.to_dict(orient="records"))
        timings["evaluate_s"] = time.perf_counter() - t0
        timings["total_s"] = timings.get("total_s", 0.0) + (time.perf_counter() - started)
        metrics["timings"] = timings
        writer.write_json("timings.json", timings)
        writer.write_json("metrics.json", metrics)
        for split in ("dev", "test"):
            if getattr(corpus, split, None) is not None:
                _write_split(writer, split, getattr(corpus, split))

        manifest = {
            "label_names": list(teacher.label_names),
            "teacher": {"name": teacher.name, "source": teacher_source, "fingerprint": teacher.fingerprint(),
                        "config": teacher_config.to_dict(), "parameters": teacher.n_parameters()},
            "students": {n: {"kind": s.config.kind, "distilled": not n.endswith(LABEL_TWIN_SUFFIX),
                             "config": s.config.to_dict()} for n, s in students.items()},
            "distill": distill_config.to_dict(),
            "datasets": {split: {"size": len(getattr(corpus, split)), "hash": getattr(corpus, split).content_hash()}
                         for split in ("train", "dev", "test") if getattr(corpus, split, None) is not None},
            "transfer_set": {"size": len(transfer), "hash": transfer.content_hash()},
            "device": device,
        }
        path = writer.commit(manifest)
        emit(progress, stage="done", path=str(path))
        return path
    except BaseException:
        writer.write_json("timings.json", timings)
        writer.release()
        raise
