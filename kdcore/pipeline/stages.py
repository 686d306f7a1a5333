"""The stages of a build, in order: teacher, transfer set, labels, students, evaluation, explanations,
then publish. Each is a function of (writer, spec, state): it reads what earlier stages left in
``state``, leaves its own output there and in the run's .partial folder, and on a resumed build takes
its output back from that folder instead of recomputing it. What differs between tasks each stage asks
``state.task``.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..config import RunSpec, StudentConfig
from ..plan import student_plan
from ..records import ModelEntry, RunManifest
from ..utils import emit, stage_events
from .state import BuildState

__all__ = ["PIPELINE_STAGES", "PIPELINE", "stage_teacher", "stage_transfer_set", "stage_labels", "stage_students",
           "stage_evaluation", "stage_explanations", "publish", "TEACHER_DEV_FILE", "STAGE_EVENTS"]

# The teacher's best dev score from fine-tuning (under the task's name for it), kept for a resumed build.
TEACHER_DEV_FILE = "teacher_dev.json"


def stage_teacher(writer, spec: RunSpec, state: BuildState) -> None:
    """Load the teacher, fine-tune it when asked and save it into the run (or load the saved one).

    A pretrained teacher's classes are matched to the data's by name (or through the spec's label
    map); the data is then re-indexed to the teacher's output order, so no metric is scrambled.
    """
    teacher_class = state.task.teacher_class()
    train = state.corpus.train
    label_names = train.label_names if train.has_labels else None
    if writer.exists("teacher/config.json"):
        state.teacher = teacher_class.from_pretrained(writer.path / "teacher", config=spec.teacher,
                                                      label_names=label_names, device=state.device)
        # Its best dev score in fine-tuning comes back with it (the evaluation reports it from the same file).
        state.teacher.best_dev_score_ = (writer.read_json(TEACHER_DEV_FILE, {}) or {}).get(state.task.dev_score_key)
        emit(state.progress, stage="teacher_fit", step=1, total=1, resumed=True, note="teacher already trained")
    else:
        started = time.perf_counter()
        if spec.teacher_is_encoder:
            state.teacher = teacher_class.from_encoder(spec.teacher_source, label_names=label_names,
                                                       config=spec.teacher, device=state.device)
        else:
            state.teacher = teacher_class.from_pretrained(spec.teacher_source, label_names=label_names,
                                                          config=spec.teacher, label_map=spec.label_map,
                                                          labels_by_index=spec.labels_by_index, device=state.device)
        if label_names is not None:  # before fine-tuning, which trains on the ids
            state.corpus = state.corpus.with_label_order(state.teacher.label_names)
        if spec.teacher.epochs > 0 and state.corpus.train.has_labels:
            state.teacher.fit(state.corpus.train, dev=state.corpus.dev, progress=state.progress,
                              checkpoint_dir=writer.path / "checkpoints" / "teacher")
            writer.write_json("teacher_history.json", getattr(state.teacher, "history_", []))
            writer.write_json(TEACHER_DEV_FILE, {state.task.dev_score_key: state.teacher.best_dev_score_})
        with writer.write_dir("teacher") as folder:  # weights, config and tokenizer replaced as one
            state.teacher.save(folder)
        state.timings["teacher_fit_s"] = time.perf_counter() - started
    if label_names is not None:  # also on resume: the saved teacher keeps its own order
        state.corpus = state.corpus.with_label_order(state.teacher.label_names)
    state.teacher.name = "teacher"
    state.teacher.cache_dir = Path(spec.cache_dir) if spec.cache_dir else None


def stage_transfer_set(writer, spec: RunSpec, state: BuildState) -> None:
    """The examples the students learn from (the task's): rebuilt on every build (it is deterministic and
    takes seconds) and written into the run."""
    state.transfer = state.task.transfer_set(spec, state.corpus)
    state.task.save_transfer(writer, state.transfer)


def stage_labels(writer, spec: RunSpec, state: BuildState) -> None:
    """The teacher's outputs on the transfer set and on the test split (the task says which, and what it
    reuses from an earlier build)."""
    state.task.teacher_outputs(writer, spec, state)


def stage_students(writer, spec: RunSpec, state: BuildState) -> None:
    """Train each planned student; one already saved in the run is loaded instead (per-student resume)."""
    from ..students import load_student

    started = time.perf_counter()
    state.histories = writer.read_json("student_histories.json", {}) or {}
    for entry in student_plan(spec, state.corpus.train.has_labels):
        folder = writer.path / "students" / entry.name
        if writer.exists(f"students/{entry.name}/config.json"):  # each student folder is written as a whole
            student = load_student(folder)
            if hasattr(student, "use_teacher"):  # reads the teacher's view of words it never saw (as a run's do)
                student.use_teacher(state.teacher)
        else:
            emit(state.progress, stage="student_fit", student=entry.name, distilled=entry.distilled)
            result = state.task.fit_student(spec, state, StudentConfig.from_dict(entry.config), entry.distilled)
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


def stage_evaluation(writer, spec: RunSpec, state: BuildState) -> None:
    """Every model's metrics on the test split (metrics.json, without explanations yet), the teacher's dev
    score, and what the task adds (findings, the trust curve, the transfer set's figures)."""
    if "evaluation" in state.finished and writer.exists("metrics.json"):
        state.metrics = writer.read_json("metrics.json")
        return
    started = time.perf_counter()
    roles = {name: entry.role for name, entry in state.entries.items()}
    twins = {entry.twin_of: name for name, entry in state.entries.items() if entry.twin_of}
    metrics = state.task.evaluate(state.teacher, state.students, state.corpus.test,
                                  teacher_test_logits=state.test_logits, student_dirs=state.dirs,
                                  teacher_dir=writer.path / "teacher", progress=state.progress, roles=roles,
                                  twins=twins)
    dev_score = (writer.read_json(TEACHER_DEV_FILE, {}) or {}).get(state.task.dev_score_key)
    if dev_score is not None:
        metrics["models"]["teacher"][state.task.dev_score_key] = dev_score
    with stage_events(state.progress, "trust"):  # the trust curves, calibration and their intervals
        state.task.after_evaluation(writer, spec, state, metrics)
    metrics["training"] = {n: {"seconds": h["seconds"], "distilled": h["distilled"]}
                           for n, h in state.histories.items()}
    state.timings["evaluate_s"] = time.perf_counter() - started
    state.metrics = metrics
    writer.write_json("metrics.json", metrics)


def stage_explanations(writer, spec: RunSpec, state: BuildState) -> None:
    """Explanation agreement (and, where the task measures it, faithfulness) on the first
    ``explain_sample`` test examples (when asked)."""
    if not spec.explain_sample or ("explanations" in state.finished and "explanations" in state.metrics):
        return
    started = time.perf_counter()
    records, state.metrics["explanations"] = state.task.explanation_metrics(
        state.teacher, state.students, state.corpus.test, spec.explain_sample, methods=spec.explain_methods,
        test_logits=state.test_logits, progress=state.progress)
    writer.write_jsonl("explanation_metrics.jsonl", records)
    writer.write_json("metrics.json", state.metrics)
    # metrics.json has always reported evaluation and explanation metrics as one "evaluate" time.
    state.timings["evaluate_s"] = state.timings.get("evaluate_s", 0.0) + (time.perf_counter() - started)


PIPELINE = (stage_teacher, stage_transfer_set, stage_labels, stage_students, stage_evaluation, stage_explanations)
PIPELINE_STAGES = tuple(stage.__name__.removeprefix("stage_") for stage in PIPELINE)
# The progress stage (kdcore.records.STAGES) each pipeline stage's start and end events name.
STAGE_EVENTS = {"teacher": "teacher_fit", "transfer_set": "transfer_set", "labels": "teacher_predict",
                "students": "student_fit", "evaluation": "evaluate", "explanations": "explain_eval"}


def publish(writer, spec: RunSpec, state: BuildState, corpus_given: bool) -> Path:
    """Write the last files and the manifest (the task, each model's kind, role, twin), and make the run visible."""
    corpus, teacher, task = state.corpus, state.teacher, state.task
    state.metrics["timings"] = state.timings
    writer.write_json("timings.json", state.timings)
    writer.write_json("metrics.json", state.metrics)
    for split in ("dev", "test"):
        if getattr(corpus, split, None) is not None:
            writer.write_jsonl(f"data/{split}.jsonl", task.split_rows(getattr(corpus, split)))
    manifest = RunManifest(
        run_id=spec.name, task=task.name, label_names=list(teacher.label_names),
        teacher={"name": teacher.name, "source": spec.teacher_source, "fingerprint": teacher.fingerprint(),
                 "config": spec.teacher.to_dict(), "parameters": teacher.n_parameters()},
        students=dict(state.entries), distill=spec.distill.to_dict(),
        datasets={split: task.dataset_entry(getattr(corpus, split))
                  for split in ("train", "dev", "test") if getattr(corpus, split, None) is not None},
        transfer_set=task.transfer_entry(state.transfer), device=state.device, spec=spec.to_dict(),
        extra={"corpus_given": corpus_given},
    ).to_dict()
    # The run store adds these when it commits.
    for key in ("run_id", "created_at", "files", "package_versions", "format_version"):
        manifest.pop(key, None)
    return writer.commit(manifest)
