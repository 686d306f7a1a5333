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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import RUN_NAME_PATTERN
from .records import RunManifest
from .tasks import DEFAULT_TASK, task_of
from .utils import atomic_save_npy, atomic_write_bytes, atomic_write_json, sha256_file

__all__ = [
    "RunError", "RunWriter", "Run", "load_run", "list_runs", "update_run_metrics", "update_run_file",
    "resolve_run_path", "package_versions",
    "DEFAULT_RUNS_DIR", "MANIFEST", "FORMAT_VERSION",
]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_RUNS_DIR = Path(os.environ.get("KDLENS_RUNS_DIR", "runs"))
PARTIAL_SUFFIX = ".partial"
# Files that could execute code when loaded are refused outright.
_PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npz"}
_PACKAGES = ("kd-lens", "torch", "transformers", "tokenizers", "safetensors", "captum", "numpy", "pandas",
             "streamlit", "plotly")


class RunError(ValueError):
    """A run folder is missing, incomplete, tampered with, or its name is not allowed."""


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def resolve_run_path(name: str, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Path:
    """The folder of run ``name`` inside ``runs_dir``; names that could escape it are refused."""
    if not isinstance(name, str) or not RUN_NAME_PATTERN.match(name) or ".." in name:
        raise RunError(
            f"Run name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
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
        self._lock = open(self.final_path.with_name(self.final_path.name + ".lock"), "a+")
        try:
            import fcntl

            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RunError(f"Run {name!r} is being built by another process; wait for it to finish.") from None
        except ImportError:  # pragma: no cover - platforms without fcntl build without the lock
            pass
        self.path.mkdir(parents=True, exist_ok=True)

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
        files = {}
        for file in sorted(self.path.rglob("*")):
            if file.is_file() and file.name != MANIFEST and not file.name.endswith(".tmp"):
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
        atomic_write_json(self.path / MANIFEST, full)
        os.replace(self.path, self.final_path)
        self.release()
        return self.final_path

    def release(self) -> None:
        """Let another process build this run (called on commit, abort and failure)."""
        lock = getattr(self, "_lock", None)
        if lock is not None and not lock.closed:
            lock.close()
            Path(lock.name).unlink(missing_ok=True)

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
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise RunError(f"{path} is not a finished kd-lens run (no {MANIFEST}). Build one with `python -m kdcore demo`.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{manifest_path} is not valid JSON ({err}); the run is corrupt, rebuild it.") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RunError(f"{path} has run format {manifest.get('format_version')!r}; this kd-lens reads {FORMAT_VERSION}.")
    if verify:
        _verify(path, manifest)
    metrics_path = path / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return Run(path=path, manifest=manifest, metrics=metrics)


def update_run_file(run: Run, relative: str, content: dict | list | np.ndarray) -> Path:
    """Write (or replace) one file of a finished run, JSON for a dict or list (JSON lines, one per item,
    for a ``.jsonl`` name), ``.npy`` for an array, and record its hash in the manifest (both atomically)."""
    target = (run.path / relative).resolve()
    if run.path.resolve() not in target.parents or target.name == MANIFEST:
        raise RunError(f"{relative!r} is not a file a run can be updated with.")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, np.ndarray):
        atomic_save_npy(target, content)
    elif target.suffix == ".jsonl":
        lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in content)  # as RunWriter.write_jsonl
        atomic_write_bytes(target, lines.encode("utf-8"))
    else:
        atomic_write_json(target, content)
    manifest = dict(run.manifest)
    manifest["files"] = {**manifest.get("files", {}), target.relative_to(run.path.resolve()).as_posix():
                         sha256_file(target)}
    atomic_write_json(run.path / MANIFEST, manifest)
    run.manifest = manifest
    return target


def update_run_metrics(run: Run, metrics: dict) -> None:
    """Replace a finished run's metrics.json and its hash in the manifest (both atomically)."""
    update_run_file(run, "metrics.json", metrics)
    run.metrics = metrics


def list_runs(runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> list[Path]:
    """Finished runs (folders with a manifest), newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file() and not p.name.endswith(PARTIAL_SUFFIX)]
    return sorted(runs, key=lambda p: (p / MANIFEST).stat().st_mtime, reverse=True)
