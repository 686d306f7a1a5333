"""Typed records that cross module borders: the run manifest, one model's metrics, a progress event.

They are plain dataclasses with ``from_dict`` / ``to_dict``: JSON on disk and on the wire
(manifest.json, metrics.json, the progress file a background build appends to), typed in
code. This module imports nothing from the rest of kdcore, so every module can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "ROLES", "DISTILLED", "LABEL_TRAINED", "LABEL_TWIN_SUFFIX", "ModelEntry", "RunManifest", "MetricsRow",
    "ProgressEvent", "STAGES", "STAGE_LABELS", "STAGE_SPANS", "METRICS_ROLES",
]

DISTILLED = "distilled"
LABEL_TRAINED = "label-trained"
ROLES = (DISTILLED, LABEL_TRAINED)
# The name a label-trained twin gets: "<student>-labels". Only the builder names twins with it;
# readers learn who is whose twin from ModelEntry.twin_of (old manifests: see RunManifest.from_dict).
LABEL_TWIN_SUFFIX = "-labels"
# How metrics.json (and so the model card and report) words each role; unchanged since format 1.
METRICS_ROLES = {"teacher": "teacher", DISTILLED: "distilled student", LABEL_TRAINED: "label-trained student"}


# ------------------------------------------------------------------------------ manifest
@dataclass
class ModelEntry:
    """One student of a run: its kind, whether it learned from the teacher or from gold labels only,
    and, for a label-trained twin, the distilled student it mirrors."""

    name: str
    kind: str
    role: str = DISTILLED
    twin_of: str | None = None
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role={self.role!r} is not valid; choose one of {', '.join(ROLES)}.")
        if self.twin_of is not None and self.role != LABEL_TRAINED:
            raise ValueError(f"{self.name}: only a label-trained student is the twin of another (role {self.role!r}).")

    @property
    def distilled(self) -> bool:
        return self.role == DISTILLED

    def to_dict(self) -> dict:
        # "distilled" is kept beside "role" so that readers written for format 1 still work.
        return {"kind": self.kind, "role": self.role, "twin_of": self.twin_of, "distilled": self.distilled,
                "config": dict(self.config)}


@dataclass
class RunManifest:
    """What manifest.json says about a run (written last by the run store, so a run with one is complete)."""

    run_id: str
    label_names: list
    teacher: dict
    students: dict  # name -> ModelEntry, in training order
    task: str = "sequence"  # "sequence" (one label a text; every run written before tasks) or "token"
    created_at: str = ""
    distill: dict = field(default_factory=dict)
    datasets: dict = field(default_factory=dict)
    transfer_set: dict = field(default_factory=dict)
    device: str | None = None
    files: dict = field(default_factory=dict)
    package_versions: dict = field(default_factory=dict)
    format_version: int = 1
    spec: dict | None = None
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept for to_dict

    @classmethod
    def from_dict(cls, data: dict) -> "RunManifest":
        """Read a manifest; one written before roles were recorded gets them derived here, and only here
        (old rule: ``<student>-labels`` beside a student ``<student>`` is that student's label-trained twin)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        raw_students = data.get("students", {}) or {}
        students = {}
        for name, info in raw_students.items():
            role, twin_of = info.get("role"), info.get("twin_of")
            if role is None:
                stem = name[: -len(LABEL_TWIN_SUFFIX)] if name.endswith(LABEL_TWIN_SUFFIX) else None
                if stem is not None and stem in raw_students:
                    role, twin_of = LABEL_TRAINED, stem
                else:
                    role = DISTILLED if info.get("distilled", True) else LABEL_TRAINED
            students[name] = ModelEntry(name=name, kind=info.get("kind", info.get("config", {}).get("kind", "")),
                                        role=role, twin_of=twin_of, config=dict(info.get("config", {})))
        values = {key: data[key] for key in known if key in data and key != "students"}
        values.setdefault("run_id", "")
        values.setdefault("label_names", [])
        values.setdefault("teacher", {})
        return cls(students=students, extra={k: v for k, v in data.items() if k not in known}, **values)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("students", "extra", "spec")}
        out["students"] = {name: entry.to_dict() for name, entry in self.students.items()}
        if self.spec is not None:
            out["spec"] = self.spec
        return {**self.extra, **out}

    @property
    def student_names(self) -> list[str]:
        return list(self.students)

    def twins(self) -> dict[str, str]:
        """{distilled student: its label-trained twin}."""
        return {entry.twin_of: name for name, entry in self.students.items() if entry.twin_of}

    def role(self, name: str) -> str:
        """``"teacher"``, ``"distilled"`` or ``"label-trained"``."""
        return "teacher" if name == "teacher" else self.students[name].role

    def family(self, name: str) -> str:
        """The distilled student a model belongs with: itself, or the student it is the twin of."""
        entry = self.students.get(name)
        return entry.twin_of if entry is not None and entry.twin_of else name


# ------------------------------------------------------------------------------ metrics
@dataclass
class MetricsRow:
    """One model's numbers in metrics.json (``models[name]``). Absent numbers stay None and are
    left out of :meth:`to_dict`, so metrics.json holds exactly what was measured."""

    name: str
    role: str  # as worded in metrics.json: a value of METRICS_ROLES
    kind: str | None = None
    accuracy: float | None = None
    accuracy_ci: list | None = None   # [low, high], 95% (kdcore.intervals)
    macro_f1: float | None = None
    macro_f1_ci: list | None = None
    per_class: Any = None
    confusion_matrix: list | None = None
    fidelity: float | None = None
    fidelity_ci: list | None = None
    # A distilled student's fidelity minus its label-trained twin's, on the same texts:
    # {"twin": name, "difference": d, "ci": [low, high]} (paired bootstrap).
    fidelity_over_twin: dict | None = None
    mean_tvd: float | None = None
    parameters: int | None = None
    n_nonzero: int | None = None
    bytes: int | None = None
    megabytes: float | None = None
    texts_per_second: float | None = None
    latency_ms: float | None = None
    speedup_vs_teacher: float | None = None
    smaller_than_teacher: float | None = None
    dev_accuracy: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: dict) -> "MetricsRow":
        known = {f.name for f in fields(cls)} - {"name", "extra"}
        return cls(name=name, role=data.get("role", ""), **{k: v for k, v in data.items() if k in known and k != "role"},
                   extra={k: v for k, v in data.items() if k not in known})

    def update(self, numbers: dict) -> "MetricsRow":
        """Set the fields named in ``numbers`` (a metrics.* result); unknown keys go to ``extra``."""
        known = {f.name for f in fields(self)} - {"name", "extra"}
        for key, value in numbers.items():
            if key in known:
                setattr(self, key, value)
            else:
                self.extra[key] = value
        return self

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "extra")}
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}


# ------------------------------------------------------------------------------ progress
# Every stage a progress event can name, in the order a build passes through them, with the words
# the CLI's bars and the dashboard show, and the share of a whole build spent before and at the end
# of each (for one progress bar over all stages). The only list of stage names in kd-lens.
_STAGE_TABLE = (
    ("teacher_fit", "fine-tuning the teacher", (0.0, 0.55)),
    ("transfer_set", "building the transfer set", (0.55, 0.55)),
    ("teacher_predict", "labelling texts with the teacher", (0.55, 0.7)),
    ("label", "labelling a collection on Ray", (0.55, 0.7)),
    ("teacher_attributions", "teacher attributions for attr_match", (0.7, 0.7)),
    ("student_featurize", "featurizing the transfer set from shards", (0.7, 0.7)),
    ("student_fit", "training the students", (0.7, 0.85)),
    ("ngram_features", "the teacher's view of each n-gram", (0.7, 0.7)),
    ("evaluate", "evaluating", (0.85, 0.89)),
    ("evaluate_intervals", "evaluating: bootstrap intervals of the twin margins", (0.89, 0.9)),
    ("trust", "evaluating: trust curves, calibration and their bootstrap intervals", (0.9, 0.93)),
    ("explain", "explaining", (0.93, 0.99)),
    ("explain_eval", "explanation metrics", (0.93, 0.99)),
    ("done", "done", (1.0, 1.0)),
    ("error", "failed", (0.0, 0.0)),
)
STAGES = tuple(name for name, _, _ in _STAGE_TABLE)
STAGE_LABELS = {name: label for name, label, _ in _STAGE_TABLE}
STAGE_SPANS = {name: span for name, _, span in _STAGE_TABLE}


@dataclass
class ProgressEvent:
    """One progress event: a stage from :data:`STAGES` and how far it has got.

    Engine code emits plain dicts (``utils.emit``) so that callbacks and the JSON-lines progress
    file stay simple; readers turn them into ProgressEvents with :meth:`from_dict`.
    """

    stage: str
    step: int | None = None
    done: int | None = None
    total: int | None = None
    epoch: int | None = None
    loss: float | None = None
    student: str | None = None
    model: str | None = None
    resumed: bool = False
    path: str | None = None
    message: str | None = None
    time: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "ProgressEvent":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None and not (k == "resumed" and v is False)}
        return {**out, **self.extra}

    @property
    def label(self) -> str:
        """The stage in words (the stage's own name when kd-lens does not know it)."""
        return STAGE_LABELS.get(self.stage, self.stage or "starting")

    @property
    def text(self) -> str:
        """The stage in words with how far it has got (``3/7``) and the model it is at, when the event says."""
        done = self.step if self.step is not None else self.done
        words = self.label + (f" {done}/{self.total}" if done is not None and self.total else "")
        who = self.model or self.student
        return f"{words} ({who})" if who else words

    @property
    def fraction(self) -> float:
        """Rough share of a whole build done when this event was emitted (0 to 1)."""
        if self.stage == "done":
            return 1.0
        start, end = STAGE_SPANS.get(self.stage, (0.0, 0.0))
        done = self.step if self.step is not None else self.done if self.done is not None else self.epoch
        inner = min(1.0, float(done) / float(self.total)) if isinstance(done, (int, float)) and self.total else 0.0
        return max(0.0, min(1.0, start + (end - start) * inner))
