"""Which students a run trains, in order, and how a build's stages are run, recorded for a resume, and
published (kdcore.pipeline runs them for every task)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from .faults import fault_point
from .records import DISTILLED, LABEL_TRAINED, LABEL_TWIN_SUFFIX, ModelEntry

if TYPE_CHECKING:
    from pathlib import Path

    from .config import RunSpec

__all__ = ["student_plan", "run_stages", "STAGES_FILE"]

# Which stages finished, with their seconds; under checkpoints/, which the run store drops on commit.
STAGES_FILE = "checkpoints/stages.json"


def student_plan(spec: RunSpec, has_labels: bool) -> list[ModelEntry]:
    """Every student a spec trains, in order: each distilled student, then (when the corpus has labels
    and the spec asks for baselines) its label-trained twin, named ``<student>-labels``."""
    plan = []
    for config in spec.students:
        plan.append(ModelEntry(config.name, config.kind, DISTILLED, None, config.to_dict()))
        if spec.distill.train_label_baseline and has_labels:
            twin = config.name + LABEL_TWIN_SUFFIX
            plan.append(ModelEntry(twin, config.kind, LABEL_TRAINED, config.name, {**config.to_dict(), "name": twin}))
    return plan


def run_stages(writer, spec, state, stages, publish: Callable) -> "Path":
    """Run ``stages`` (``(name, stage)`` pairs; each ``stage(writer, spec, state)``) in order, recording each
    finished one in ``state.finished`` and STAGES_FILE, then ``publish(writer, spec, state)``. On any failure
    the timings are saved and the run folder released, so the same build started again resumes; a build
    refused before any stage left anything (a teacher whose classes do not match) leaves no folder."""
    started = time.perf_counter()
    try:
        for name, stage in stages:
            fault_point(f"stage:{name}")
            stage_started = time.perf_counter()
            stage(writer, spec, state)
            if name not in state.finished:
                state.finished[name] = time.perf_counter() - stage_started
                writer.write_json(STAGES_FILE, state.finished)
        state.timings["total_s"] = state.timings.get("total_s", 0.0) + (time.perf_counter() - started)
        fault_point("stage:publish")
        return publish(writer, spec, state)
    except BaseException:
        if writer.has_progress():
            writer.write_json("timings.json", state.timings)
        writer.release(discard_unstarted=True)
        raise
