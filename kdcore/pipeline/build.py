"""One build for every task: :func:`build_run` turns a RunSpec into a run on disk through the stages
of :mod:`kdcore.pipeline.stages`, and :func:`refresh_metrics` measures a finished run again."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import RunSpec
from ..plan import STAGES_FILE, run_stages
from ..runs import RunWriter, split_hashes, update_run_metrics
from ..tasks import task_of
from ..utils import ProgressFn, configure_threads, default_device, emit, stage_events
from .stages import PIPELINE, PIPELINE_STAGES, STAGE_EVENTS, publish
from .state import BuildState

__all__ = ["build_run", "refresh_metrics"]


def build_run(spec: RunSpec, *, runs_dir: str | os.PathLike = "runs", progress: ProgressFn | None = None,
              corpus=None) -> Path:
    """Build (or resume) the run ``spec`` describes and return its folder.

    The stages (:data:`~kdcore.pipeline.stages.PIPELINE_STAGES`) run in order inside
    ``<runs_dir>/<spec.name>.partial``; each leaves its output there, so a killed build started again with
    the same spec resumes after the last finished stage (and, inside the students stage, after the last
    saved student). The run becomes visible only when complete. ``corpus`` (``train``, ``dev``, ``test``
    and, for texts, optional ``unlabelled`` splits of the spec's task) replaces ``spec.data`` for data
    already in memory.
    """
    if not isinstance(spec, RunSpec):
        raise TypeError(f"build_run takes a RunSpec (kdcore.config.RunSpec), got {type(spec).__name__}.")
    task = task_of(spec)
    configure_threads(spec.threads)
    # Read the data before creating the run folder, so a bad file leaves nothing behind.
    corpus_given = corpus is not None
    corpus, findings = task.check(spec, corpus if corpus_given else task.load_corpus(spec.data))
    writer = RunWriter(spec.name, runs_dir)
    writer.claim(spec.to_dict(), split_hashes(corpus))  # a resume must be the build that started the folder
    state = BuildState(corpus=corpus, device=str(default_device(spec.device)), task=task, progress=progress,
                       finished=writer.read_json(STAGES_FILE, {}) or {},
                       timings=writer.read_json("timings.json", {}) or {}, findings=findings)
    stages = [(name, _reported(name, stage)) for name, stage in zip(PIPELINE_STAGES, PIPELINE)]
    path = run_stages(writer, spec, state, stages, lambda w, s, st: publish(w, s, st, corpus_given))
    emit(progress, stage="done", path=str(path))
    return path


def _reported(name: str, stage):
    """``stage`` bracketed by its start and end progress events (under its progress stage's name; ``resumed``
    when an earlier build finished it and it only takes its output back)."""
    def run(writer, spec: RunSpec, state: BuildState) -> None:
        extra = {"resumed": True} if name in state.finished else {}
        with stage_events(state.progress, STAGE_EVENTS[name], pipeline_stage=name, **extra):
            stage(writer, spec, state)

    return run


def refresh_metrics(run, progress: ProgressFn | None = None) -> dict:
    """Measure a finished run's models again on its stored test split (the task's metrics with their
    intervals, twin margins, speed) and replace its metrics.json; what the build recorded besides
    (findings, transfer set, training, timings, explanation metrics) is kept, and the task recomputes
    what reads the new numbers. Returns the new metrics (merged, under the run's lock, into what is on
    disk then)."""
    task = task_of(run)
    info = run.info
    fresh = task.evaluate(run.teacher, run.students, run.split("test"), progress=progress,
                          student_dirs={n: run.path / "students" / n for n in run.student_names},
                          teacher_dir=run.path / "teacher", roles={n: e.role for n, e in info.students.items()},
                          twins=info.twins())

    def merged(old: dict) -> dict:  # with what is on disk when written (under the run's lock)
        models = {name: dict(entry) for name, entry in fresh["models"].items()}
        for name, entry in models.items():
            if task.dev_score_key in old.get("models", {}).get(name, {}):
                entry[task.dev_score_key] = old["models"][name][task.dev_score_key]
        return task.refreshed(run, old, {**old, **fresh, "models": models})

    return update_run_metrics(run, merged)
