"""Which students a run trains, in order: shared by the sequence pipeline (distill.py) and the token
pipeline (token_pipeline.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .records import DISTILLED, LABEL_TRAINED, LABEL_TWIN_SUFFIX, ModelEntry

if TYPE_CHECKING:
    from .config import RunSpec

__all__ = ["student_plan"]


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
