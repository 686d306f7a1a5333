"""The token classification run: a RunSpec with ``task="token"`` turned into a run on disk.

The same run store (:class:`~kdcore.runs.RunWriter`), manifest (:class:`~kdcore.records.RunManifest`,
``task="token"``), progress events and student roles as the sequence pipeline in
:mod:`kdcore.distill`; the stages differ in what they hold: sentences of words, a teacher that labels
words (:class:`~kdcore.token_teacher.TokenTeacher`), window-feature students, per-word and
per-entity metrics (:mod:`kdcore.token_metrics`). A killed build resumes after its saved teacher and
its saved students.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import DataSource, RunSpec, StudentConfig
from .plan import STAGES_FILE, run_stages
from .records import DISTILLED, METRICS_ROLES, MetricsRow, RunManifest
from .utils import ProgressFn, configure_threads, default_device, emit

__all__ = ["build_token_run", "load_token_corpus", "augment_sentences", "evaluate_token_run", "explanation_metrics",
           "refresh_token_metrics",
           "token_demo_spec",
           "token_teacher_config", "token_spec_from_args"]

# How many of the teacher's test entities the explanation metrics explain by default.
EXPLAIN_ENTITIES = 60


def load_token_corpus(source: DataSource):
    """The train/dev/test token corpus a DataSource names: a CoNLL / JSONL file, or an embedded corpus."""
    from .token_data import TOKEN_CORPORA, read_tokens, split_token_dataset

    if source.path is None:
        return TOKEN_CORPORA[source.corpus](seed=source.seed)
    return split_token_dataset(read_tokens(source.path), seed=source.seed)


def augment_sentences(sentences: Sequence[Sequence[str]], copies: int, swap_prob: float, seed: int = 0) -> list[list[str]]:
    """``copies`` variants of each sentence in which each word is, with probability ``swap_prob``, replaced by
    a word drawn from all the sentences' words (the teacher labels the variants; they carry no gold tags).
    Variants equal to a sentence already present are left out."""
    rng = np.random.default_rng(seed)
    pool = [w for words in sentences for w in words]
    seen = {tuple(words) for words in sentences}
    out = []
    for _ in range(copies):
        for words in sentences:
            swap = rng.random(len(words)) < swap_prob
            variant = [pool[int(rng.integers(len(pool)))] if s else w for w, s in zip(words, swap)]
            if tuple(variant) not in seen:
                seen.add(tuple(variant))
                out.append(variant)
    return out


@dataclass
class TokenBuild:
    """What the stages of one token build hand to each other."""

    corpus: Any
    device: str
    progress: ProgressFn | None = None
    finished: dict = field(default_factory=dict)  # stage name -> seconds (checkpoints/stages.json)
    timings: dict = field(default_factory=dict)
    teacher: Any = None
    transfer: list = field(default_factory=list)        # sentences: the training ones first, then variants
    transfer_logits: list = field(default_factory=list)
    test_logits: list = field(default_factory=list)
    students: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)
    dirs: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    metrics: dict | None = None


def _stage_teacher(writer, spec: RunSpec, state: TokenBuild) -> None:
    from .token_teacher import TokenTeacher

    train = state.corpus.train
    label_names = train.label_names if train.has_labels else None
    if writer.exists("teacher/config.json"):
        state.teacher = TokenTeacher.from_pretrained(writer.path / "teacher", label_names=label_names,
                                                     config=spec.teacher, device=state.device)
        emit(state.progress, stage="teacher_fit", step=1, total=1, resumed=True)
    else:
        started = time.perf_counter()
        if spec.teacher_is_encoder:
            state.teacher = TokenTeacher.from_encoder(spec.teacher_source, label_names=label_names,
                                                      config=spec.teacher, device=state.device)
        else:
            state.teacher = TokenTeacher.from_pretrained(spec.teacher_source, label_names=label_names,
                                                         config=spec.teacher, label_map=spec.label_map,
                                                         labels_by_index=spec.labels_by_index, device=state.device)
        if label_names is not None:
            state.corpus = state.corpus.with_label_order(state.teacher.label_names)
        if spec.teacher.epochs > 0 and state.corpus.train.has_labels:
            state.teacher.fit(state.corpus.train, dev=state.corpus.dev, progress=state.progress)
            writer.write_json("teacher_history.json", getattr(state.teacher, "history_", []))
            writer.write_json("teacher_dev.json", {"dev_entity_f1": state.teacher.best_dev_entity_f1_})
        with writer.write_dir("teacher") as folder:  # weights, config and tokenizer replaced as one
            state.teacher.save(folder)
        state.timings["teacher_fit_s"] = time.perf_counter() - started
    if label_names is not None:
        state.corpus = state.corpus.with_label_order(state.teacher.label_names)
    state.teacher.name = "teacher"
    state.teacher.cache_dir = Path(spec.cache_dir) if spec.cache_dir else None


def _stage_labels(writer, spec: RunSpec, state: TokenBuild) -> None:
    """The transfer set (training sentences + word-swap variants) and the teacher's word logits on it and on test."""
    started = time.perf_counter()
    train = state.corpus.train.sentences
    state.transfer = [list(s) for s in train] + augment_sentences(train, spec.distill.augment_copies,
                                                                  spec.distill.swap_prob, spec.distill.seed)
    writer.write_jsonl("data/transfer.jsonl", [{"tokens": s} for s in state.transfer])
    state.transfer_logits = state.teacher.predict_word_logits(state.transfer, progress=state.progress)
    writer.write_array("teacher_logits.npy", np.concatenate(state.transfer_logits))
    state.test_logits = state.teacher.predict_word_logits(state.corpus.test.sentences, progress=state.progress)
    writer.write_array("teacher_test_logits.npy", np.concatenate(state.test_logits))
    state.timings["transfer_label_s"] = time.perf_counter() - started


def _stage_students(writer, spec: RunSpec, state: TokenBuild) -> None:
    """Each distilled student on the teacher's soft labels of the transfer set, then its label-trained twin on
    the gold tags of the training sentences; a student already saved in the run is loaded instead."""
    from .plan import student_plan
    from .students import load_student, make_student

    started = time.perf_counter()
    state.histories = writer.read_json("student_histories.json", {}) or {}
    corpus, teacher = state.corpus, state.teacher
    for entry in student_plan(spec, corpus.train.has_labels):
        folder = writer.path / "students" / entry.name
        if writer.exists(f"students/{entry.name}/config.json"):  # each student folder is written as a whole
            student = load_student(folder)
        else:
            emit(state.progress, stage="student_fit", student=entry.name, distilled=entry.distilled)
            fit_started = time.perf_counter()
            student = make_student(StudentConfig.from_dict(entry.config))
            options = {"label_names": list(teacher.label_names), "progress": state.progress, "device": state.device}
            if entry.distilled:
                gold = None
                if spec.distill.alpha > 0 and corpus.train.has_labels:  # gold where there is, -1 on the variants
                    gold = list(corpus.train.tags) + [np.full(len(s), -1) for s in state.transfer[len(corpus.train):]]
                student.fit_sentences(state.transfer, teacher_logits=state.transfer_logits, tags=gold,
                                      distill=spec.distill, **options)
            else:
                student = _fit_token_twin(StudentConfig.from_dict(entry.config), corpus, options)
            with writer.write_dir(f"students/{entry.name}") as tmp:
                student.save(tmp)
            state.histories[entry.name] = {"history": getattr(student, "history_", []), "distilled": entry.distilled,
                                           "seconds": time.perf_counter() - fit_started}
            writer.write_json("student_histories.json", state.histories)
        state.students[entry.name], state.dirs[entry.name] = student, folder
        state.entries[entry.name] = type(entry)(entry.name, student.config.kind, entry.role, entry.twin_of,
                                                student.config.to_dict())
    state.timings["students_fit_s"] = state.timings.get("students_fit_s", 0.0) + (time.perf_counter() - started)


# The L2 penalties a linear twin is tried with; the one with the best gold dev entity F1 is kept.
TWIN_L2_GRID = (0.03, 0.1, 0.3, 1.0)


def _fit_token_twin(config: StudentConfig, corpus, options: dict):
    """The label-trained twin on the gold tags of the training sentences. A linear twin is fitted with each L2
    penalty of TWIN_L2_GRID (its own setting among them) and the one with the best gold entity F1 on the dev
    sentences is kept, so the baseline a distilled student is compared with is a tuned one."""
    from .students import make_student
    from .token_metrics import entity_scores

    grid = [config.l2]
    if config.kind == "token_linear" and corpus.dev is not None and corpus.dev.has_labels:
        grid = sorted({config.l2, *TWIN_L2_GRID})
    best, best_f1 = None, -1.0
    for l2 in grid:
        candidate = make_student(StudentConfig.from_dict({**config.to_dict(), "l2": l2}))
        candidate.fit_sentences(corpus.train.sentences, tags=corpus.train.tags, **options)
        f1 = entity_scores(corpus.dev.gold_entities(), candidate.tag(corpus.dev.sentences))["f1"] if len(grid) > 1 else 0.0
        if f1 > best_f1:
            best, best_f1 = candidate, f1
    return best


def _speed(predict, sentences) -> float:
    from .metrics import texts_per_second

    return texts_per_second(predict, sentences, min_seconds=0.5)


def evaluate_token_run(teacher, students: dict, test, teacher_test_logits=None, roles: dict | None = None,
                       twins: dict | None = None, student_dirs: dict | None = None, teacher_dir=None,
                       progress: ProgressFn | None = None, n_boot: int = 2000) -> dict:
    """Every model's metrics on the test sentences (see :mod:`kdcore.token_metrics` for the definitions):
    word fidelity and entity agreement with the teacher, gold per-type P/R/F1, size and speed; and for each
    distilled student with a label-trained twin (``twins``: {student: twin}, the manifest's), the entity
    agreement F1 margin with a bootstrap interval over the test sentences."""
    from .metrics import model_bytes
    from .token_metrics import (bootstrap_f1_difference, decode, entity_counts, entity_scores, f1_interval,
                                per_type_report, share_interval, word_fidelity)

    names = list(teacher.label_names)
    if teacher_test_logits is None:
        teacher_test_logits = teacher.predict_word_logits(test.sentences)
    teacher_tags = decode(teacher_test_logits, names)
    gold = [test.tag_names(i) for i in range(len(test))] if test.has_labels else None
    sentences = test.sentences[:200]
    emit(progress, stage="evaluate", model="teacher")
    teacher_speed = _speed(lambda s: teacher.predict_word_logits(s, use_cache=False), sentences)
    rows = {"teacher": MetricsRow("teacher", METRICS_ROLES["teacher"], fidelity=1.0, mean_tvd=0.0,
                                  parameters=int(teacher.n_parameters()), texts_per_second=teacher_speed,
                                  latency_ms=1000 / teacher_speed)}
    rows["teacher"].update({"entity_agreement_f1": 1.0})
    if teacher_dir is not None:
        size = model_bytes(teacher_dir)
        rows["teacher"].update({"bytes": size, "megabytes": size / 1e6})
    tags_of, counts_of = {"teacher": teacher_tags}, {}
    for name, student in students.items():
        emit(progress, stage="evaluate", model=name)
        logits = student.predict_word_logits(test.sentences)
        tags_of[name] = decode(logits, names)
        counts_of[name] = entity_counts(teacher_tags, tags_of[name])
        agreement = entity_scores(teacher_tags, tags_of[name])
        fidelity = word_fidelity(tags_of[name], teacher_tags, logits, teacher_test_logits)
        same = [sum(a == b for a, b in zip(s, t)) for s, t in zip(tags_of[name], teacher_tags)]
        row = MetricsRow(name, METRICS_ROLES[(roles or {}).get(name, DISTILLED)], kind=student.config.kind,
                         fidelity=fidelity["word_fidelity"], mean_tvd=fidelity["mean_tvd"],
                         parameters=int(student.n_parameters()),
                         n_nonzero=int(getattr(student, "n_nonzero_", 0)))
        row.update({"entity_agreement_f1": agreement["f1"], "entity_agreement_precision": agreement["precision"],
                    "entity_agreement_recall": agreement["recall"],
                    "entity_agreement_f1_ci": f1_interval(counts_of[name], n_boot=n_boot),
                    "fidelity_ci": share_interval(same, [len(t) for t in teacher_tags], n_boot=n_boot)})
        speed = _speed(student.predict_word_logits, sentences)
        row.update({"texts_per_second": speed, "latency_ms": 1000 / speed, "speedup_vs_teacher": speed / teacher_speed})
        if student_dirs and name in student_dirs:
            size = model_bytes(student_dirs[name])
            row.update({"bytes": size, "megabytes": size / 1e6})
            if rows["teacher"].bytes:
                row.smaller_than_teacher = rows["teacher"].bytes / max(size, 1)
        rows[name] = row
    if gold is not None:
        for name, row in rows.items():
            per_type = per_type_report(gold, tags_of[name])
            micro = next(r for r in per_type if r["type"] == "micro avg")
            correct = [a == b for g, p in zip(gold, tags_of[name]) for a, b in zip(g, p)]
            row.update({"per_type": per_type, "entity_f1": micro["f1"], "entity_precision": micro["precision"],
                        "entity_recall": micro["recall"], "word_accuracy": float(np.mean(correct)),
                        "entity_f1_ci": f1_interval(entity_counts(gold, tags_of[name]), n_boot=n_boot)})
    margins = {}
    for name, twin in (twins or {}).items():
        if name in counts_of and twin in counts_of:
            margins[name] = {"twin": twin, **bootstrap_f1_difference(counts_of[name], counts_of[twin], n_boot=n_boot),
                             "word_fidelity_difference": rows[name].fidelity - rows[twin].fidelity}
    return {"task": "token", "decoding": "bio_viterbi", "test_size": len(test), "test_words": test.n_words,
            "models": {name: row.to_dict() for name, row in rows.items()}, "margins": margins}


def _stage_evaluation(writer, spec: RunSpec, state: TokenBuild) -> None:
    started = time.perf_counter()
    roles = {name: entry.role for name, entry in state.entries.items()}
    twins = {entry.twin_of: name for name, entry in state.entries.items() if entry.twin_of}
    metrics = evaluate_token_run(state.teacher, state.students, state.corpus.test, state.test_logits, roles=roles,
                                 twins=twins, student_dirs=state.dirs, teacher_dir=writer.path / "teacher",
                                 progress=state.progress)
    dev = writer.read_json("teacher_dev.json", {}) or {}
    if dev.get("dev_entity_f1") is not None:
        metrics["models"]["teacher"]["dev_entity_f1"] = dev["dev_entity_f1"]
    metrics["transfer_set"] = {"sentences": len(state.transfer), "gold_tagged": len(state.corpus.train),
                               "word_swap_variants": len(state.transfer) - len(state.corpus.train),
                               "words": int(sum(len(s) for s in state.transfer))}
    metrics["training"] = {n: {"seconds": h["seconds"], "distilled": h["distilled"]} for n, h in state.histories.items()}
    state.timings["evaluate_s"] = time.perf_counter() - started
    state.metrics = metrics
    writer.write_json("metrics.json", metrics)


def refresh_token_metrics(run) -> dict:
    """Measure a finished token run's models again on its stored test split (same definitions; newer numbers
    such as intervals included) and replace its metrics.json; what the build recorded besides (transfer set,
    training, timings, explanation metrics) is kept."""
    from .runs import update_run_metrics

    info = run.info
    roles = {name: entry.role for name, entry in info.students.items()}
    metrics = evaluate_token_run(run.teacher, run.students, run.split("test"), roles=roles, twins=info.twins(),
                                 student_dirs={n: run.path / "students" / n for n in run.student_names},
                                 teacher_dir=run.path / "teacher")
    def merged(old: dict) -> dict:  # with what is on disk when written (under the run's lock)
        out = {**metrics, "models": {name: dict(row) for name, row in metrics["models"].items()}}
        if "dev_entity_f1" in old.get("models", {}).get("teacher", {}):
            out["models"]["teacher"]["dev_entity_f1"] = old["models"]["teacher"]["dev_entity_f1"]
        for key in ("transfer_set", "training", "timings", "explanations"):
            if key in old:
                out[key] = old[key]
        return out

    return update_run_metrics(run, merged)


def _stage_explanations(writer, spec: RunSpec, state: TokenBuild) -> None:
    """Agreement between the teacher's IG and each student's contributions on the teacher's first
    ``explain_sample`` test entities (their first word, the teacher's tag)."""
    if not spec.explain_sample:
        return
    started = time.perf_counter()
    records, state.metrics["explanations"] = explanation_metrics(
        state.teacher, state.students, state.corpus.test.sentences, state.test_logits, spec.explain_sample,
        progress=state.progress)
    writer.write_jsonl("explanation_metrics.jsonl", records)
    writer.write_json("metrics.json", state.metrics)
    state.timings["evaluate_s"] = state.timings.get("evaluate_s", 0.0) + (time.perf_counter() - started)


def explanation_metrics(teacher, students: dict, sentences, teacher_logits, n_entities: int,
                        progress: ProgressFn | None = None) -> tuple[list[dict], dict]:
    """Explanation agreement on the teacher's first ``n_entities`` entities of ``sentences``: the records (one
    per entity and student) and the ``metrics.json`` block (mean and std of each metric per student)."""
    import pandas as pd

    from .token_explain import entity_agreement_records
    from .token_metrics import decode

    tags = decode(teacher_logits, teacher.label_names)
    records = entity_agreement_records(teacher, students, sentences, tags, max_entities=n_entities, progress=progress)
    frame = pd.DataFrame(records)
    summary = []
    for name, group in frame.groupby("model", sort=False) if len(frame) else []:
        row = {"model": name, "method": "integrated_gradients", "n_entities": int(len(group))}
        for metric in ("spearman", "kendall", "top_k_overlap", "sign_agreement"):
            values = pd.to_numeric(group[metric], errors="coerce")
            row[f"{metric}_mean"] = float(values.mean()) if values.notna().any() else float("nan")
            row[f"{metric}_std"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else float("nan")
        summary.append(row)
    block = {"unit": "entity", "sample_size": len(records) // max(len(students), 1),
             "methods": ["integrated_gradients"], "summary": summary}
    return records, block


TOKEN_PIPELINE = (("teacher", _stage_teacher), ("labels", _stage_labels), ("students", _stage_students),
                  ("evaluation", _stage_evaluation), ("explanations", _stage_explanations))


def build_token_run(spec: RunSpec, *, runs_dir: str | os.PathLike = "runs", progress: ProgressFn | None = None,
                    corpus=None) -> Path:
    """Build (or resume) the token run ``spec`` describes (``spec.task == "token"``) and return its folder.
    ``corpus`` (a :class:`~kdcore.token_data.TokenCorpus`) replaces ``spec.data`` for data in memory."""
    from .data import DataError
    from .runs import RunWriter, split_hashes

    if spec.task != "token":
        raise ValueError(f"build_token_run builds token runs; this spec's task is {spec.task!r} (use build_run).")
    configure_threads(spec.threads)
    corpus_given = corpus is not None
    corpus = corpus if corpus_given else load_token_corpus(spec.data)
    if spec.teacher_is_encoder and not corpus.train.has_labels:
        raise DataError("These sentences have no tags, so a bare encoder's new token head cannot be trained. Give a "
                        "trained token classifier as the teacher (--teacher FOLDER), or tag the training sentences.")
    writer = RunWriter(spec.name, runs_dir)
    writer.claim(spec.to_dict(), split_hashes(corpus))  # a resume must be the build that started the folder
    state = TokenBuild(corpus=corpus, device=str(default_device(spec.device)), progress=progress,
                       finished=writer.read_json(STAGES_FILE, {}) or {},
                       timings=writer.read_json("timings.json", {}) or {})
    path = run_stages(writer, spec, state, TOKEN_PIPELINE, lambda w, s, st: _publish(w, s, st, corpus_given))
    emit(progress, stage="done", path=str(path))
    return path


def _publish(writer, spec: RunSpec, state: TokenBuild, corpus_given: bool) -> Path:
    corpus, teacher = state.corpus, state.teacher
    state.metrics["timings"] = state.timings
    writer.write_json("timings.json", state.timings)
    writer.write_json("metrics.json", state.metrics)
    for split in ("dev", "test"):
        writer.write_jsonl(f"data/{split}.jsonl", getattr(corpus, split).to_rows())
    manifest = RunManifest(
        run_id=spec.name, task="token", label_names=list(teacher.label_names),
        teacher={"name": teacher.name, "source": spec.teacher_source, "fingerprint": teacher.fingerprint(),
                 "config": spec.teacher.to_dict(), "parameters": teacher.n_parameters()},
        students=dict(state.entries), distill=spec.distill.to_dict(),
        datasets={split: {"size": len(getattr(corpus, split)), "words": getattr(corpus, split).n_words,
                          "hash": getattr(corpus, split).content_hash()} for split in ("train", "dev", "test")},
        transfer_set={"size": len(state.transfer)}, device=state.device, spec=spec.to_dict(),
        extra={"corpus_given": corpus_given},
    ).to_dict()
    for key in ("run_id", "created_at", "files", "package_versions", "format_version"):
        manifest.pop(key, None)
    return writer.commit(manifest)


# ------------------------------------------------------------------------------ specs of the CLI
def token_teacher_config(**overrides):
    """The embedded MiniLM's fine-tuning for token classification: a fresh token head needs more steps and a
    larger step size than the sequence task's. On the WNUT-16 dev split (8 epochs = 376 steps at 2e-4) the
    entity F1 rose to 0.477 at step 250 and fell after it, so the steps are capped at 300."""
    from .config import TeacherConfig

    return TeacherConfig(**{"epochs": 8.0, "max_steps": 300, "eval_every": 50, "learning_rate": 2e-4, "batch_size": 32,
                            "patience": 3, **overrides})


def token_demo_spec(name: str, threads: int | None = None, augment_copies: int = 2,
                    explain_sample: int = EXPLAIN_ENTITIES) -> RunSpec:
    """The RunSpec of ``python -m kdcore demo --task ner``: MiniLM fine-tuned on WNUT-16, the token students."""
    from .config import DistillConfig

    return RunSpec(name, task="token", teacher=token_teacher_config(),
                   distill=DistillConfig(augment_copies=augment_copies), explain_sample=explain_sample,
                   threads=threads)


def token_spec_from_args(args, kinds, encoder: bool) -> RunSpec:
    """The token RunSpec ``python -m kdcore distill`` options describe."""
    from .config import DistillConfig, default_students

    overrides = {"max_steps": args.teacher_steps} if args.teacher_steps else {}
    epochs = args.teacher_epochs if args.teacher_epochs is not None else (None if encoder else 0.0)
    if epochs is not None:
        overrides["epochs"] = epochs
    if args.text_column or args.label_column:
        raise ValueError("--text-column and --label-column name columns of a text table; a token file holds words "
                         "and tags (CoNLL lines, or JSONL with tokens / tags).")
    return RunSpec(
        args.name, task="token", teacher_source=args.teacher or "embedded-minilm", teacher_is_encoder=encoder,
        teacher=token_teacher_config(**overrides), label_map=args.label_map or {},
        labels_by_index=args.labels_by_index, students=default_students(kinds, args.student_steps, task="token"),
        distill=DistillConfig(loss=args.loss, temperature=args.temperature, alpha=args.alpha,
                              augment_copies=args.augment_copies),
        data=DataSource(path=args.data, seed=args.seed, corpus=args.corpus if args.corpus != "rotten_tomatoes" else "wnut16"),
        explain_sample=args.explain_sample, threads=args.threads)
