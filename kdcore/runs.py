"""The run store: one folder per run, atomic writes, hashes, safetensors only.

Layout of ``runs/<run-id>/``::

    manifest.json            written last: configs, hashes of every file, versions
    teacher/                 the teacher's weights (safetensors) and tokenizer
    teacher_logits.npy       teacher logits on the transfer set
    students/<name>/         config.json, model.safetensors, vocab.json
    data/<split>.jsonl       the evaluation texts (so a run is self-contained)
    metrics.json             every number the dashboard and report show

A run is built in ``runs/<run-id>.partial/`` and renamed into place after its manifest
is written, so a run killed midway is never visible, and can be resumed from its folder.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from filelock import Timeout

from .config import check_name
from .faults import fault_point
from .records import RunManifest
from .run_guard import PARTIAL_SUFFIX, RunError, new_lock, run_lock, spec_differences, split_hashes
from .tasks import DEFAULT_TASK, task_of
from .utils import (atomic_directory, atomic_save_npy, atomic_write_bytes, atomic_write_json, remove_temporaries,
                    sha256_file)

__all__ = [
    "RunError", "RunWriter", "Run", "load_run", "list_runs", "update_run_metrics", "update_run_file",
    "resolve_run_path", "package_versions", "run_lock", "spec_differences", "split_hashes",
    "DEFAULT_RUNS_DIR", "MANIFEST", "FORMAT_VERSION", "BUILD_RECORD",
]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_RUNS_DIR = Path(os.environ.get("KDLENS_RUNS_DIR", "runs"))
# What an unfinished build was started with (its spec and data hashes); under checkpoints/, dropped on commit.
BUILD_RECORD = "checkpoints/build.json"
# Spec fields that change how fast a build runs, not what it makes: a resume may change them.
RESUME_FREE_FIELDS = ("threads", "cache_dir")
# Files that could execute code when loaded are refused outright.
_PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npz"}
_PACKAGES = ("kd-lens", "torch", "transformers", "tokenizers", "safetensors", "captum", "numpy", "pandas",
             "streamlit", "plotly")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def resolve_run_path(name: str, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Path:
    """The folder of run ``name`` inside ``runs_dir``; names that could escape it, or that the store
    uses itself (``*.partial``, ``*.lock``), are refused."""
    try:
        check_name(name, "Run")
    except ValueError as err:
        raise RunError(str(err)) from None
    root = Path(runs_dir).resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise RunError(f"Run name {name!r} points outside the runs folder {root}.")
    return path


class RunWriter:
    """Builds a run in ``<runs_dir>/<name>.partial`` and publishes it with :meth:`commit`.

    Every file goes through a temporary name and an atomic rename; the manifest, which
    lists every file's sha256, is written last, then the folder is renamed into place.
    """

    def __init__(self, name: str, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR):
        self.final_path = resolve_run_path(name, runs_dir)
        self.name = name
        self.path = self.final_path.with_name(self.final_path.name + PARTIAL_SUFFIX)
        if self.final_path.exists():
            raise RunError(f"Run {name!r} already exists at {self.final_path}; choose another name or delete it.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One builder per run: a second process (another terminal, the dashboard's button)
        # gets a clear error instead of writing into the same folder.
        # Its own lock object (not the re-entrant one of run_lock): a second writer refuses even in this thread.
        self._lock = new_lock(self.final_path)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            self._lock = None
            raise RunError(f"Run {name!r} is being built by another process; wait for it to finish.") from None
        if self.final_path.exists():  # published by the process that held the lock until now
            self.release()
            raise RunError(f"Run {name!r} already exists at {self.final_path}; choose another name or delete it.")
        self.path.mkdir(parents=True, exist_ok=True)
        remove_temporaries(self.path)  # what a killed build was writing; never read

    def claim(self, spec: dict, data: dict) -> None:
        """Record what this build is made of (``spec``: the RunSpec's dict; ``data``: the hashes of its
        splits); on a resume, refuse a build made of anything else, naming each difference."""
        record = {"spec": {k: v for k, v in spec.items() if k not in RESUME_FREE_FIELDS}, "data": data}
        saved = self.read_json(BUILD_RECORD)
        if saved is None:
            self.write_json(BUILD_RECORD, record)
            return
        differences = spec_differences(saved.get("spec", {}), record["spec"])
        differences += [f"data {d}" for d in spec_differences(saved.get("data", {}), record["data"])]
        if differences:
            self.release()
            raise RunError(
                f"The unfinished run {self.name!r} was started with another spec or other data, so it cannot be "
                f"resumed with this one: {'; '.join(differences)}. Run it again as it was started, choose another "
                f"name, or delete {self.path} to start over.")

    def has_progress(self) -> bool:
        """True when a stage left anything in the folder (besides the build record) that a resume can use."""
        return any(f.is_file() and f.relative_to(self.path).as_posix() != BUILD_RECORD and not f.name.endswith(".tmp")
                   for f in self.path.rglob("*"))

    def file(self, relative: str) -> Path:
        target = (self.path / relative).resolve()
        if self.path.resolve() not in target.parents:
            raise RunError(f"{relative!r} is outside the run folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, relative: str, obj: Any) -> Path:
        target = self.file(relative)
        atomic_write_json(target, obj)
        return target

    @contextmanager
    def write_dir(self, relative: str) -> Iterator[Path]:
        """A folder of the run written as a whole (a model and its config): fill the yielded temporary
        folder; it replaces ``relative`` when the block ends (see :func:`kdcore.utils.atomic_directory`)."""
        with atomic_directory(self.file(relative)) as tmp:
            yield tmp

    def read_json(self, relative: str, default: Any = None) -> Any:
        target = self.path / relative
        return json.loads(target.read_text(encoding="utf-8")) if target.is_file() else default

    def write_array(self, relative: str, array: np.ndarray) -> Path:
        target = self.file(relative)
        atomic_save_npy(target, array)
        return target

    def write_jsonl(self, relative: str, rows: list[dict]) -> Path:
        target = self.file(relative)
        payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_bytes(target, payload.encode("utf-8"))
        return target

    def exists(self, relative: str) -> bool:
        return (self.path / relative).exists()

    def commit(self, manifest: dict) -> Path:
        """Hash every file, write the manifest last and make the run visible."""
        remove_temporaries(self.path)
        files = {}
        for file in sorted(self.path.rglob("*")):
            if file.is_file() and file.name != MANIFEST:
                rel = file.relative_to(self.path).as_posix()
                if rel.startswith("checkpoints/"):
                    continue
                files[rel] = sha256_file(file)
        shutil.rmtree(self.path / "checkpoints", ignore_errors=True)
        full = {
            "format_version": FORMAT_VERSION,
            "run_id": self.name,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "package_versions": package_versions(),
            **manifest,
            "files": files,
        }
        atomic_write_json(self.path / MANIFEST, full, kind="manifest")
        fault_point("write:commit")
        os.replace(self.path, self.final_path)
        self.release()
        return self.final_path

    def release(self, discard_unstarted: bool = False) -> None:
        """Let another process build this run (called on commit, abort and failure). With
        ``discard_unstarted`` a folder no stage has left anything in is removed first (a build
        refused at its start leaves no empty ``NAME.partial`` behind)."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        if discard_unstarted and self.path.is_dir() and not self.has_progress():
            shutil.rmtree(self.path, ignore_errors=True)
        self._lock = None
        lock.release()

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()


@dataclass
class Run:
    """A finished run read back from disk (models are loaded on first use).

    ``manifest`` is manifest.json as written (its hashes are checked against it); :attr:`info` is
    the same as a typed :class:`~kdcore.records.RunManifest`, with each student's role and twin.
    """

    path: Path
    manifest: dict
    metrics: dict = field(default_factory=dict)
    _teacher: Any = None
    _students: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.get("run_id", self.path.name)

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.get("label_names", []))

    @property
    def task(self) -> str:
        """The name of the run's task (every run written before tasks existed is a sequence run); the task
        itself is ``kdcore.tasks.task_of(run)``."""
        return self.manifest.get("task", DEFAULT_TASK)

    @property
    def info(self) -> RunManifest:
        """The manifest as a RunManifest (roles and twins derived once there for runs that predate them)."""
        return RunManifest.from_dict(self.manifest)

    @property
    def student_names(self) -> list[str]:
        return list(self.manifest.get("students", {}))

    def twins(self) -> dict[str, str]:
        """{distilled student: its label-trained twin}, from the manifest."""
        return self.info.twins()

    @property
    def teacher(self):
        """The teacher (loaded from the run's ``teacher/`` folder on first use)."""
        if self._teacher is None:
            from .config import TeacherConfig

            info = self.manifest["teacher"]
            config = TeacherConfig.from_dict(info["config"]) if info.get("config") else None
            self._teacher = task_of(self).teacher_class().from_pretrained(self.path / "teacher", label_names=self.label_names,
                                                    config=config, name=info.get("name", "teacher"))
            self._teacher.source = info.get("source", "")
        return self._teacher

    def student(self, name: str):
        """The student ``name`` (loaded on first use); RunError names the students when there is none."""
        if name not in self._students:
            if name not in self.manifest.get("students", {}):
                raise RunError(f"Run {self.name!r} has no student {name!r}; it has {', '.join(self.student_names)}.")
            from .students import load_student

            student = load_student(self.path / "students" / name)
            if hasattr(student, "use_teacher"):  # reads the teacher's view of unseen n-grams, loaded when needed
                student.use_teacher(lambda: self.teacher)
            self._students[name] = student
        return self._students[name]

    @property
    def students(self) -> dict:
        return {name: self.student(name) for name in self.student_names}

    def models(self) -> dict:
        """Teacher first, then every student, by name."""
        return {"teacher": self.teacher, **self.students}

    def split(self, name: str = "test"):
        """An evaluation split stored with the run, as the run's task reads it (a TextDataset, a TokenDataset)."""
        path = self.path / "data" / f"{name}.jsonl"
        if not path.is_file():
            raise RunError(f"Run {self.name!r} stores no {name!r} split.")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
        return task_of(self).read_split(rows, self.label_names, name)

    def array(self, relative: str) -> np.ndarray:
        return np.load(self.path / relative, allow_pickle=False)


def _verify(path: Path, manifest: dict) -> None:
    for file in path.rglob("*"):
        if file.is_file() and file.suffix.lower() in _PICKLE_SUFFIXES:
            raise RunError(
                f"Run {path.name!r} contains {file.relative_to(path)}, a format that can run code when loaded; "
                "kd-lens only loads safetensors, JSON and .npy. Remove the file or rebuild the run."
            )
    for rel, expected in manifest.get("files", {}).items():
        file = path / rel
        if not file.is_file():
            raise RunError(f"Run {path.name!r} is missing {rel}; rebuild it (python -m kdcore demo --force).")
        if sha256_file(file) != expected:
            raise RunError(
                f"Run {path.name!r}: {rel} does not match the hash in its manifest (modified or corrupt); "
                "refusing to load it. Rebuild the run or restore the original file."
            )


def load_run(path: str | os.PathLike, verify: bool = True) -> Run:
    """Read a finished run, checking every file against the manifest's sha256."""
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        raise RunError(f"{path} is an unfinished run; finish it with `python -m kdcore demo` (it resumes).")
    if not (path / MANIFEST).is_file():
        raise RunError(f"{path} is not a finished kd-lens run (no {MANIFEST}). Build one with `python -m kdcore demo`.")
    # Under the run's lock: a change being made to the run is read whole or not at all.
    with run_lock(path, required=False):
        manifest = _read_manifest(path)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise RunError(f"{path} has run format {manifest.get('format_version')!r}; this kd-lens reads "
                           f"{FORMAT_VERSION}.")
        if verify:
            _verify(path, manifest)
        metrics_path = path / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return Run(path=path, manifest=manifest, metrics=metrics)


def _read_manifest(path: Path) -> dict:
    manifest_path = path / MANIFEST
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{manifest_path} is not valid JSON ({err}); the run is corrupt, rebuild it.") from err


def update_run_file(run: Run, relative: str, content: dict | list | np.ndarray) -> Path:
    """Write (or replace) one file of a finished run, JSON for a dict or list (JSON lines, one per item,
    for a ``.jsonl`` name), ``.npy`` for an array, and record its hash in the manifest: each file
    written atomically, the two under the run's lock, the manifest read afresh inside it (so another
    process's change to the run is kept)."""
    target = (run.path / relative).resolve()
    if run.path.resolve() not in target.parents or target.name == MANIFEST:
        raise RunError(f"{relative!r} is not a file a run can be updated with.")
    with run_lock(run.path):
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, np.ndarray):
            atomic_save_npy(target, content)
        elif target.suffix == ".jsonl":
            lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in content)  # as RunWriter.write_jsonl
            atomic_write_bytes(target, lines.encode("utf-8"))
        else:
            atomic_write_json(target, content)
        manifest = _read_manifest(run.path)
        manifest["files"] = {**manifest.get("files", {}), target.relative_to(run.path.resolve()).as_posix():
                             sha256_file(target)}
        atomic_write_json(run.path / MANIFEST, manifest, kind="manifest")
    run.manifest = manifest
    return target


def update_run_metrics(run: Run, metrics: dict | Callable[[dict], dict]) -> dict:
    """Replace a finished run's metrics.json and its hash in the manifest. ``metrics`` may be a function
    of the metrics on disk (read under the run's lock) returning the new ones: a change made that way
    keeps what another process wrote meanwhile. Returns the metrics written."""
    with run_lock(run.path):
        if callable(metrics):
            current = run.path / "metrics.json"
            metrics = metrics(json.loads(current.read_text(encoding="utf-8")) if current.is_file() else {})
        update_run_file(run, "metrics.json", metrics)
    run.metrics = metrics
    return metrics


def list_runs(runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> list[Path]:
    """Finished runs (folders with a manifest), newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file() and not p.name.endswith(PARTIAL_SUFFIX)]
    return sorted(runs, key=lambda p: (p / MANIFEST).stat().st_mtime, reverse=True)
